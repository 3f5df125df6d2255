// The engine layer itself, in every engine and cookie mode, one browser at a time: a partner page
// with a cross-site iframe of a third site and the real broker's iframe, a real click to another
// partner site, frameEval across origins, and errors collected from the page and both frames.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { CELLS, scheme, startWorlds, withEngine } from "./index.mjs";

/** @typedef {import("./sites.mjs").World} World */

/** @type {import("./sites.mjs").Worlds} one set of sites per scheme */
let worlds;

before(async () => {
  worlds = await startWorlds(({ partners, broker }) => {
    partners.page(
      "shop",
      "/a",
      `<!doctype html><meta charset="utf-8"><title>A</title>
<script>throw new Error("smoke: page A at load");</script>
<script>console.error("smoke: page A console"); Promise.reject(new Error("smoke: page A rejection"));</script>
<iframe id="third" src="${partners.url("third", "/frame")}"></iframe>
<iframe id="broker" src="${broker.iframeUrl}"></iframe>
<button id="probe" onclick="window.trusted = event.isTrusted">probe</button>
<a id="to-b" href="${partners.url("support", "/b")}">to B</a>`,
    );
    partners.page("third", "/frame", `<!doctype html><title>third</title><script>window.answer = 42; throw new Error("smoke: third frame at load");</script>`);
    partners.page("support", "/b", `<!doctype html><meta charset="utf-8"><title>B</title><h1>B</h1>`);
  });
});
after(async () => worlds?.stop());

for (const [engine, mode] of CELLS) {
  test(`${engine} ${mode}: navigation, a real click, frameEval and errors of page and frames`, () =>
    withEngine(engine, mode, async (b) => {
      const { partners, broker } = /** @type {World} */ (worlds[scheme(engine)]);
      const page = await b.open(partners.url("shop", "/a"));
      assert.equal(await page.url(), partners.url("shop", "/a"));
      assert.deepEqual(await page.evaluate((/** @type {unknown} */ x) => [document.title, x], { n: 1 }), ["A", { n: 1 }]);
      assert.equal(await page.evaluate("location.hostname"), "shop.localhost");
      assert.equal(await page.evaluate(() => new Promise((r) => setTimeout(() => r("later"), 10))), "later");
      await assert.rejects(page.evaluate(() => Promise.reject(new Error("nope"))), /nope/);

      assert.deepEqual(await page.frameEval("third.localhost", (/** @type {number} */ n) => [location.origin, /** @type {any} */ (window).answer + n], 1), [partners.origin("third"), 43]);
      // The broker's real iframe, cross-site (under its CSP: its own inline script by hash).
      assert.deepEqual(await page.frameEval("/iframe.html", () => [location.origin, document.getElementById("baton-config") !== null]), [broker.origin, true]);
      await page.frameEval("/iframe.html", () => void setTimeout(() => { throw new Error("smoke: broker frame"); }));
      await until(async () => (await page.errors()).includes("Error: smoke: broker frame"), "the broker frame's error");

      await page.click("#probe");
      assert.equal(await page.evaluate("window.trusted"), true, "a trusted click");
      await page.reload();

      // A second tab, then back to the first one.
      const other = await b.open(partners.url("support", "/b"));
      assert.equal(await other.evaluate("document.title"), "B");
      assert.equal(await page.evaluate("document.title"), "A");

      await page.click("#to-b");
      await page.waitForURL((u) => u.hostname === "support.localhost" && u.pathname === "/b");
      assert.equal(await page.url(), partners.url("support", "/b"));
      assert.equal(await page.evaluate(() => document.title), "B");

      // Page A's errors, twice (before and after the reload), and the one provoked in the broker's iframe.
      const pageA = ["Error: smoke: page A at load", "smoke: page A console", "Error: smoke: page A rejection", "Error: smoke: third frame at load"];
      assert.deepEqual((await page.errors()).sort(), [...pageA, ...pageA, "Error: smoke: broker frame"].sort());
      assert.deepEqual(await other.errors(), []);
    }));
}

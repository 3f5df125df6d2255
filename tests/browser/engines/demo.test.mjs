// `baton-demo` as a newcomer uses it, in Firefox ESR and WebKitGTK in each of their cookie modes
// (Chromium's two modes: ../demo.test.mjs): the bar names the mode the browser really gives, the
// widget says "Saved" only when the other site will see the chat, the chat follows a link to
// support, and "End chat" ends it on both sites.
//
// The demo serves plain http. WebKit refuses every `Secure` cookie over http, so there the broker
// keeps no cookie in any mode and the demo runs in page mode: what a newcomer sees in Epiphany.
// Its pages carry no test error collector (the demo serves them itself), so in WebKit `errors()`
// can only report that it has none; Firefox reports every frame's errors by itself.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startDemo, until } from "../harness.mjs";
import { CELLS, withEngine } from "./index.mjs";

/** @type {Record<string, Record<string, string>>} */
const EXPECTED_MODE = {
  firefox: { default: "partitioned", allowed: "unpartitioned", blocked: "page", strict: "partitioned" },
  webkit: { default: "page", always: "page", itp: "page" },
};

/** @type {Awaited<ReturnType<typeof startDemo>>} */
let demo;
before(async () => (demo = await startDemo()));
after(async () => demo?.stop());

/** The chat's transcript lines. */
const transcript = "[...document.querySelectorAll('.chat-log li')].map((li) => li.textContent)";
/** Resolves once the widget restored (the launcher or the panel shows). */
const restored = "!document.querySelector('.chat-launch').hidden || !document.querySelector('.chat-panel').hidden";

for (const [engine, mode] of CELLS.filter(([e]) => e !== "chromium")) {
  test(`${engine} ${mode}: the demo's chat follows from shop to support, says what it saved, ends everywhere`, () =>
    withEngine(engine, mode, async (b) => {
      const expected = EXPECTED_MODE[engine][mode];
      const page = await b.open(`${demo.shop}/`);
      const wait = (/** @type {string} */ expr, /** @type {string} */ what) => until(() => page.evaluate(expr), what);
      await wait(restored, "the widget");
      await wait(`document.getElementById("demo-mode").dataset.mode === ${JSON.stringify(expected)}`, `mode ${expected}`);

      await page.click(".chat-launch");
      await page.evaluate(() => void (/** @type {HTMLInputElement} */ (document.querySelector(".chat-form input")).value = "Where is my teapot?"));
      await page.click(".chat-form button");
      await wait(`${transcript}.includes("Agent Echo: Where is my teapot?")`, "the echo");
      await wait(`document.querySelector(".chat-sync").dataset.state === "saved"`, "saved");
      assert.equal(await page.evaluate(`document.querySelector(".chat-sync").textContent`), "Saved: the other site will see this chat.");
      const onShop = await page.evaluate(transcript);

      await page.click(`a[href="${demo.support}/"]`);
      await page.waitForURL((u) => u.hostname === "support.localhost");
      await wait(restored, "the widget on support");
      assert.deepEqual(await page.evaluate(transcript), onShop, "the chat crossed to support");
      assert.equal(await page.evaluate("document.getElementById('demo-mode').dataset.mode"), expected);

      await page.click(".chat-end");
      await wait(`!document.querySelector(".chat-launch").hidden`, "the chat to end");
      await wait(`Baton.connect(document.body.dataset.iframeUrl).get("demo-chat-session").then((v) => v === null)`, "the broker to forget it");
      await page.click(`a[href="${demo.shop}/"]`);
      await page.waitForURL((u) => u.hostname === "shop.localhost");
      await wait(restored, "the widget on shop");
      assert.deepEqual(await page.evaluate(transcript), [], "the ended chat stays ended on shop");

      const errors = await page.errors();
      if (engine === "webkit") assert.ok(errors.every((e) => e.startsWith("[no error collector")), errors.join("\n"));
      else assert.deepEqual(errors, []);
    }));
}

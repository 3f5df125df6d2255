// The restore path in one round trip (issue 23), in every engine and cookie mode: where the
// broker's iframe keeps a cookie, the broker renders the session into the iframe page and the
// page's first read is answered from it, with no `GET /v1/session`; in page mode (no cookie
// comes with the iframe's request) the iframe reads by `fetch` as before. In every cell the value
// read after a write by the frame, or after a change in another tab, is the new one.
// Chromium's own suite (../restore.test.mjs) adds the arrival by a link.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { CELLS, scheme, startWorlds, withEngine } from "./index.mjs";

/** Where each cell keeps the session (as cells.test.mjs): cookie modes render the session. */
const PAGE_MODE = new Set(["firefox blocked", "webkit default", "webkit itp"]);

/** @typedef {import("./sites.mjs").World} World */
/** @type {import("./sites.mjs").Worlds} */
let worlds;

before(async () => {
  worlds = await startWorlds(({ partners, broker }) =>
    partners.page(
      "shop",
      "/",
      `<!doctype html><meta charset="utf-8"><title>shop</title>
<script src="${broker.scriptUrl}"></script>
<script>
  window.client = Baton.connect(${JSON.stringify(broker.iframeUrl)});
  window.changes = 0;
  client.on("change", () => window.changes++);
</script>
<body><h1>shop</h1></body>`,
    ),
  );
});
after(async () => worlds?.stop());

/** How many `GET /v1/session` the broker of `w` has answered. */
const reads = async (/** @type {World} */ w) => {
  const line = (await w.broker.metrics())
    .split("\n")
    .find((l) => l.startsWith("baton_http_request_duration_seconds_count{") && l.includes('method="GET"') && l.includes('route="/v1/session"'));
  return Number(line?.split(" ").pop() ?? 0);
};

const get = (/** @type {string} */ key) => `client.get(${JSON.stringify(key)})`;
const set = (/** @type {string} */ key, /** @type {string} */ value) => `client.set(${JSON.stringify(key)}, ${JSON.stringify(value)})`;
/** What the broker rendered into the page's iframe: the snapshot's text, or null. */
const rendered = () => document.getElementById("baton-session")?.textContent ?? null;

for (const [engine, mode] of CELLS) {
  const cookies = !PAGE_MODE.has(`${engine} ${mode}`);
  test(`${engine} ${mode}: ${cookies ? "restored from the iframe page without a read" : "page mode reads by fetch"}; never stale after a write or a change`, () =>
    withEngine(engine, mode, async (b) => {
      const w = /** @type {World} */ (worlds[scheme(engine)]);
      const url = w.partners.url("shop", "/");
      const first = await b.open(url);
      assert.equal(await first.evaluate(get("chat")), null, "a first visit has nothing");
      assert.equal(await first.evaluate(set("chat", "v1")), null);

      // A new tab: the saved value, read from the page (cookie modes) or by fetch (page mode).
      const page = await b.open(url);
      const before = await reads(w);
      assert.equal(await page.evaluate(get("chat")), "v1");
      assert.equal(await reads(w), cookies ? before : before + 1, cookies ? "no GET /v1/session" : "page mode reads");
      const block = await page.frameEval("/iframe.html", rendered);
      assert.deepEqual(block && JSON.parse(block), cookies ? { chat: "v1" } : null, "what the broker rendered");

      // A write by this frame: the new value, not the page's.
      assert.equal(await page.evaluate(set("chat", "v2")), null);
      assert.equal(await page.evaluate(get("chat")), "v2", "after a write");

      // A change in another tab (where the browser lets the iframe tell other tabs at all:
      // Firefox refuses BroadcastChannel to a frame when it blocks every third-party cookie).
      const reader = await b.open(url);
      assert.equal(await reader.evaluate(get("chat")), "v2");
      if (!(engine === "firefox" && mode === "blocked")) {
        assert.equal(await page.evaluate(set("chat", "v3")), null);
        const end = Date.now() + 5000;
        while ((await reader.evaluate("window.changes")) < 1) {
          if (Date.now() > end) throw new Error("no change event in the other tab");
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(await reader.evaluate(get("chat")), "v3", "after a change in another tab");
      }
      assert.deepEqual(await page.errors(), []);
      assert.deepEqual(await reader.errors(), []);
    }));
}

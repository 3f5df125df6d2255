// The fast embed, in every engine and cookie mode: the partner page writes the broker's iframe
// itself (`<iframe src=".../iframe.html" hidden>`), so that its load starts with the page's and
// not after the library's own `<script src>`, and the library adopts that frame instead of
// creating one. In each case the chat is restored, the document holds exactly one iframe (the
// page's, hidden) and the broker served exactly one iframe page for it (the frame not loaded
// again), whatever state the frame is in when the library first asks for it:
// - still loading: the library right after the iframe, inline (its document has not committed
//   yet: a message posted to it now is dropped, and only its `load` brings the handshake), and by
//   `<script src>` (as the docs show it: loading or loaded, whichever the network made it);
// - loaded: the library added after the window's `load`, which waits for the frame's (no `load`
//   comes again: the handshake must go at once).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { CELLS, scheme, startWorlds, withEngine } from "./index.mjs";

const NAME = "customer-defined-session-cookie";
const VALUE = "%7B%22chatId%22%3A%22chat-embed%22%7D";
/** The library as the broker serves it (check-js keeps static/ what the build makes). */
const LIBRARY = readFileSync(new URL("../../../static/cookie-provider.js", import.meta.url), "utf8");

/** @typedef {import("./sites.mjs").World} World */
/** @type {import("./sites.mjs").Worlds} */
let worlds;

/** Partner pages of one world: `/save` (the library makes its own iframe) and the three embeds. */
function addPages(/** @type {World} */ { partners, broker }) {
  const iframeUrl = JSON.stringify(broker.iframeUrl);
  // The page's own frame, and the page's count of its `load` events, from before any can fire.
  const frame = `<iframe id="broker" src="${broker.iframeUrl}" hidden></iframe>
<script>
  window.frameLoads = 0;
  document.getElementById("broker").addEventListener("load", () => window.frameLoads++);
</script>`;
  const restore = `window.loaded = new CookieProvider(${JSON.stringify(NAME)}, ${iframeUrl}).loadCookie();`;
  partners.page(
    "shop",
    "/save",
    `<!doctype html><meta charset="utf-8"><title>save</title>
<script src="${broker.scriptUrl}"></script>
<script>window.client = Baton.connect(${iframeUrl});</script>`,
  );
  partners.page(
    "shop",
    "/inline",
    `<!doctype html><meta charset="utf-8"><title>inline</title>
<body>
${frame}
<script>${LIBRARY}</script>
<script>${restore}</script>
<h1>shop</h1>
</body>`,
  );
  partners.page(
    "shop",
    "/sync",
    `<!doctype html><meta charset="utf-8"><title>sync</title>
<body>
${frame}
<script src="${broker.scriptUrl}"></script>
<script>${restore}</script>
<h1>shop</h1>
</body>`,
  );
  partners.page(
    "shop",
    "/late",
    `<!doctype html><meta charset="utf-8"><title>late</title>
<body>
${frame}
<h1>shop</h1>
<script>
  window.loaded = new Promise((resolve, reject) =>
    addEventListener("load", () => {
      window.loadsBefore = window.frameLoads;
      const s = document.createElement("script");
      s.src = ${JSON.stringify(broker.scriptUrl)};
      s.onload = () => resolve(Baton.connect(${iframeUrl}).get(${JSON.stringify(NAME)}));
      s.onerror = reject;
      document.head.append(s);
    }),
  );
</script>
</body>`,
  );
}

before(async () => (worlds = await startWorlds(addPages)));
after(async () => worlds?.stop());

/** How many iframe pages the broker of `w` has served (200 or 304). */
const iframePages = async (/** @type {World} */ w) =>
  (await w.broker.metrics())
    .split("\n")
    .filter((l) => l.startsWith("baton_http_request_duration_seconds_count{") && l.includes('route="/iframe.html"'))
    .reduce((n, l) => n + Number(l.split(" ").pop()), 0);

/** The page's iframes: how many, and whether the one is the page's own, hidden and not rendered. */
const frames = () => {
  const all = document.getElementsByTagName("iframe");
  const f = all[0];
  return { count: all.length, own: f?.id === "broker", hidden: f?.hidden, display: f && getComputedStyle(f).display };
};

for (const [engine, mode] of CELLS) {
  test(`${engine} ${mode}: a page that writes the iframe itself restores the chat with that one frame, loaded once`, () =>
    withEngine(engine, mode, async (b) => {
      const w = /** @type {World} */ (worlds[scheme(engine)]);
      const save = await b.open(w.partners.url("shop", "/save"));
      assert.equal(await save.evaluate(`client.set(${JSON.stringify(NAME)}, ${JSON.stringify(VALUE)})`), null);

      for (const [path, what] of [
        ["/inline", "still loading: the library inline right after the frame"],
        ["/sync", "the library by <script src> right after the frame"],
        ["/late", "loaded: the library added after the window's load"],
      ]) {
        const before = await iframePages(w);
        const page = await b.open(w.partners.url("shop", path));
        assert.equal(await page.evaluate("window.loaded"), VALUE, `${what}: the chat restored`);
        // The document is complete: every load of the frame the library could have started
        // before the value came is over (the handshake waits for one).
        assert.equal(await page.evaluate("document.readyState"), "complete");
        assert.deepEqual(await page.evaluate(frames), { count: 1, own: true, hidden: true, display: "none" }, `${what}: one frame, the page's`);
        assert.equal(await page.evaluate("window.frameLoads"), 1, `${what}: the frame loaded once`);
        if (path === "/late") assert.equal(await page.evaluate("window.loadsBefore"), 1, "the frame had loaded before the library came");
        assert.equal((await iframePages(w)) - before, 1, `${what}: one iframe page served`);
        // The page's cookie, as loadCookie() writes it.
        if (path !== "/late") assert.ok(await page.evaluate(`document.cookie.includes(${JSON.stringify(`${NAME}=${VALUE}`)})`), `${what}: the page's cookie`);
        assert.deepEqual(await page.errors(), [], what);
      }
      assert.deepEqual(await save.errors(), []);
    }));
}

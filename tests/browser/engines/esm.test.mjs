// The library as an ES module, imported by its package name through an import map, as a partner
// developer with a bundler-free page would: the session is saved on shop, carried by a real link
// click to support (a module page too) and read there, in each engine's default cookie mode.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { scheme, startWorlds, withEngine } from "./index.mjs";

/** @typedef {import("./sites.mjs").World} World */
/** @type {import("./sites.mjs").Worlds} */
let worlds;

before(async () => {
  worlds = await startWorlds(({ partners, broker }) => {
    for (const [name, other] of [["shop", "support"], ["support", "shop"]]) {
      partners.page(
        name,
        "/",
        `<!doctype html><meta charset="utf-8"><title>${name}</title>
<script type="importmap">${JSON.stringify({ imports: { "@baton-broker/client": `${broker.origin}/baton.mjs` } })}</script>
<script type="module">
  import { connect, BatonError } from "@baton-broker/client";
  window.client = connect(${JSON.stringify(broker.iframeUrl)});
  window.BatonError = BatonError;
  window.imported = true;
</script>
<body><a id="to-other" href="${partners.url(other, "/")}">${other}</a></body>`,
      );
    }
  });
});
after(async () => worlds?.stop());

for (const [engine, mode] of /** @type {const} */ ([["chromium", "blocked"], ["firefox", "default"], ["webkit", "default"]])) {
  test(`${engine} ${mode}: import { connect } from the package, save on shop, a link click, read on support`, () =>
    withEngine(engine, mode, async (b) => {
      const { partners } = /** @type {World} */ (worlds[scheme(engine)]);
      const page = await b.open(partners.url("shop", "/"));
      const ready = "(async () => { while (!window.imported) await new Promise((r) => setTimeout(r, 20)); await client.ready; return true; })()";
      assert.equal(await page.evaluate(ready), true);
      assert.equal(await page.evaluate(`client.set("cart", "[1,2]")`), null);
      assert.equal(await page.evaluate(`client.set("cart", 42).catch((e) => e instanceof BatonError && e.code)`), "bad_request");
      await page.click("#to-other");
      await page.waitForURL((u) => u.hostname === "support.localhost");
      assert.equal(await page.evaluate(ready), true);
      assert.equal(await page.evaluate(`client.get("cart")`), "[1,2]");
      assert.deepEqual(await page.errors(), []);
    }));
}

// A partner developer's first look: a clean visit (no session yet, a Genesys page loading its
// cookie, a link to the other site) leaves no red line in the browser's console, in the page or
// the broker's iframe. Having no session is the normal state of a first visit, so the broker
// answers it with 204, not 404 (Chromium logs every 4xx and 5xx a frame fetches as an error).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startWorld, withBrowser } from "./harness.mjs";

let world;
before(async () => (world = await startWorld()));
after(async () => world?.stop());

for (const mode of ["blocked", "allowed"]) {
  test(`3PC ${mode}: a clean visit shows no error in the console, network errors included`, () =>
    withBrowser(world, mode, async (b) => {
      const { partners, broker } = world;
      /** Every console message of type error, from any frame of the tab (the iframe too). */
      const lines = [];
      const page = await b.newPage();
      page.on("console", (m) => m.type() === "error" && lines.push(m.text()));
      page.on("pageerror", (e) => lines.push(e.message));
      partners.page(
        "shop",
        "/genesys",
        `<!doctype html><meta charset="utf-8"><title>shop</title>
<script src="${broker.scriptUrl}"></script>
<script>
  const cookieProvider = new CookieProvider("chat", ${JSON.stringify(broker.iframeUrl)});
  window.loaded = cookieProvider.loadCookie();
</script>
<body><a id="go" href="${partners.url("support", "/bare")}">support</a></body>`,
      );
      await page.goto(partners.url("shop", "/genesys"));
      assert.equal(await page.evaluate(() => window.loaded), null, "no chat yet");
      await page.click("#go");
      await page.waitForURL((u) => u.host.startsWith("support.localhost:"));
      await page.waitForLoadState("load");
      assert.equal(await page.evaluate((url) => new CookieProvider("chat", url).loadCookie(), broker.iframeUrl), null);
      assert.deepEqual(lines, [], "no red line");
    }));
}

// The iframe failing to load: requests reject (never hang) and the page keeps working.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { freePort, startBrowser, startWorld } from "./harness.mjs";

let world;
before(async () => {
  world = await startWorld();
  world.partners.page("shop", "/plain", `<!doctype html><title>shop</title><script src="${world.broker.scriptUrl}"></script><body><button onclick="this.textContent='clicked'">click</button></body>`);
});
after(async () => world?.stop());

test("iframe failing to load: rejects with iframe_error or timeout within the timeout, page keeps working", async () => {
  const b = await startBrowser({ thirdPartyCookies: "blocked" });
  try {
    const page = await b.newPage();
    await page.goto(world.partners.url("shop", "/plain"));
    const dead = `http://broker.localhost:${await freePort()}/iframe.html`;
    for (const url of [dead, `${world.broker.origin}/healthz`]) {
      const r = await page.evaluate(async (url) => {
        const t0 = performance.now();
        const c = Baton.connect(url, { timeout: 3000 });
        const results = await Promise.all([
          c.get("k").then(() => "resolved", (e) => e instanceof Baton.BatonError && e.code),
          c.set("k", "v").then(() => "resolved", (e) => e.code),
          c.ready.then(() => "resolved", (e) => e.code),
          new CookieProvider("chat", url).cookieTest(),
        ]);
        return { results, ms: performance.now() - t0 };
      }, url);
      assert.ok(["iframe_error", "timeout"].includes(r.results[0]), `${url}: ${JSON.stringify(r)}`);
      assert.ok(["iframe_error", "timeout"].includes(r.results[1]), `${url}: ${JSON.stringify(r)}`);
      assert.equal(r.results[3], false, "cookieTest says no");
      // Rejected by the 3 s timeout, not hung: three times it leaves room for a slow machine.
      assert.ok(r.ms < 9000, `${url}: took ${r.ms} ms`);
      if (url.endsWith("/healthz")) assert.equal(r.results[0], "iframe_error", "a frame that loads but never answers fails fast");
    }
    await page.click("button");
    assert.equal(await page.textContent("button"), "clicked");
  } finally {
    await b.stop();
  }
});

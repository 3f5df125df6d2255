// Change events: a change in one tab of a site reaches the other tabs of that site.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { call, open, startBrowser, startWorld } from "./harness.mjs";

let world;
before(async () => (world = await startWorld()));
after(async () => world?.stop());

test("change event: a set in one tab of shop fires change in the other, unsubscribe stops it", async () => {
  const b = await startBrowser({ thirdPartyCookies: "blocked" });
  try {
    const a = await open(b, world.partners.url("shop"));
    const other = await open(b, world.partners.url("shop", "/other"));
    await a.evaluate(() => {
      window.changes = 0;
      window.off = client.on("change", () => changes++);
    });
    await call(other, "set", "k", "v");
    await a.waitForFunction(() => changes === 1, null, { timeout: 5000 });
    assert.equal((await call(a, "get", "k")).value, "v");
    await call(other, "end");
    await a.waitForFunction(() => changes === 2, null, { timeout: 5000 });
    // Unsubscribed, and a second handler in its place: once that one has seen the next change,
    // the event has reached this tab, and the first handler, had it stayed, would have run too.
    await a.evaluate(() => {
      off();
      window.seen = 0;
      client.on("change", () => seen++);
    });
    await call(other, "set", "k", "w");
    await a.waitForFunction(() => seen === 1, null, { timeout: 5000 });
    assert.equal(await a.evaluate(() => changes), 2);
    assert.equal(await other.evaluate(() => window.changes), undefined);
  } finally {
    await b.stop();
  }
});

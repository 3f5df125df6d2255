// A hostile site: it cannot frame the broker iframe, gets no answer when it posts to one, and
// cannot store anything.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { call, get, open, sleep, startBrowser, startWorld, withBrowser as harnessWithBrowser } from "./harness.mjs";

let world;
before(async () => {
  world = await startWorld();
  const { partners, broker } = world;
  // An "ad" that a trusted page frames: it can reach the page's broker iframe through
  // `parent.frames` and posts requests to it, each with a port as the library sends them, then
  // records every answer it gets, on those ports or on its window.
  partners.page(
    "evil",
    "/ad",
    `<!doctype html><title>ad</title><script>
window.replies = [];
addEventListener("message", (e) => e.source !== window && replies.push(e.data));
window.attack = () => {
  for (let i = 0; i < parent.frames.length; i++) {
    if (parent.frames[i] === window) continue;
    for (const m of [{ op: "get", key: "k" }, { op: "set", key: "k", value: "evil" }, { op: "end" }, { op: "mode" }, { op: "trusted" }])
      for (const c of [new MessageChannel()]) {
        c.port1.onmessage = (e) => replies.push(e.data);
        parent.frames[i].postMessage({ baton: 1, ...m }, "*", [c.port2]);
      }
  }
  return parent.frames.length;
};
</script>`,
  );
  partners.page(
    "shop",
    "/with-ad",
    `<!doctype html><title>shop</title><script src="${broker.scriptUrl}"></script>
<script>window.IFRAME = ${JSON.stringify(broker.iframeUrl)}; window.client = Baton.connect(IFRAME);</script>
<body><iframe id="ad" src="${partners.url("evil", "/ad")}"></iframe></body>`,
  );
  // A trusted page that opens the broker iframe page as a top-level window and posts to it, as a
  // phishing page could run it first-party; it also frames the broker as usual, for a control.
  partners.page("shop", "/opener", `<!doctype html><title>shop</title><script src="${broker.scriptUrl}"></script>
<script>window.client = Baton.connect(${JSON.stringify(broker.iframeUrl)});
window.replies = [];
window.post = (w) => {
  for (const op of ["get", "mode"]) {
    const c = new MessageChannel();
    c.port1.onmessage = (e) => replies.push(e.data);
    w.postMessage({ baton: 1, op, key: "k" }, ${JSON.stringify(broker.origin)}, [c.port2]);
  }
};
window.attack = (url) => { window.w = open(url); };
</script>`);
});
after(async () => world?.stop());

/** Runs `fn(browser)` in a fresh profile (see harness `withBrowser`). */
const withBrowser = (mode, fn) => harnessWithBrowser(world, mode, fn);

/** Whether any frame of `page` holds the broker's iframe document. */
async function hasBrokerFrame(page) {
  for (const f of page.frames()) {
    if (await f.evaluate(() => !!document.getElementById("baton-config")).catch(() => false)) return true;
  }
  return false;
}

test("hostile: evil.localhost cannot frame the broker iframe (CSP frame-ancestors)", () =>
  withBrowser("allowed", async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop"));
    assert.equal(await hasBrokerFrame(shop), true, "control: a trusted site can frame it");

    const evil = await b.newPage();
    await evil.goto(partners.url("evil"));
    const r = await evil.evaluate(() => client.get("k").then(() => "answered", (e) => e.code));
    assert.equal(r, "iframe_error");
    assert.equal(await hasBrokerFrame(evil), false);
  }));

test("hostile: a frame of evil on a trusted page gets no answer and stores nothing", () =>
  withBrowser("allowed", async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop", "/with-ad"));
    await call(shop, "set", "k", "mine");
    const ad = shop.frame({ url: /evil\.localhost/ });
    assert.ok(ad, "the ad frame");
    await ad.waitForFunction(() => window.attack);
    assert.equal(await ad.evaluate(() => attack()), 2, "the ad sees itself and the broker iframe");

    // Control: the same messages from the page itself are answered.
    const control = await shop.evaluate(
      (brokerOrigin) =>
        new Promise((resolve) => {
          const c = new MessageChannel();
          c.port1.onmessage = (e) => resolve(e.data);
          document.querySelector("iframe[src*='broker']").contentWindow.postMessage({ baton: 1, op: "get", key: "k" }, brokerOrigin, [c.port2]);
        }),
      world.broker.origin,
    );
    assert.deepEqual(control, { result: "mine" });

    // Nor can the ad forge the iframe's messages to the page: the library takes only its
    // iframe's. (Answers and events come only on ports the library made; it has no listener for
    // messages posted to its window.)
    await shop.evaluate(() => {
      window.changes = 0;
      client.on("change", () => changes++);
    });
    await ad.evaluate(() => parent.postMessage({ baton: 1, event: "change" }, "*"));

    await sleep(1500);
    assert.deepEqual(await ad.evaluate(() => replies), []);
    assert.equal(await shop.evaluate(() => changes), 0, "forged change event ignored");
    assert.equal(await get(shop, "k"), "mine", "the ad's set and end did nothing");
  }));

test("hostile: the broker iframe opened top-level does not answer, even a trusted opener", () =>
  withBrowser("allowed", async (b) => {
    const { partners, broker } = world;
    const shop = await open(b, partners.url("shop", "/opener"));
    await call(shop, "set", "k", "mine");
    // Control: the same messages, from the same trusted page, to its framed broker are answered.
    await shop.evaluate(() => post(document.querySelector("iframe[src*='broker']").contentWindow));
    await shop.waitForFunction(() => replies.length === 2);
    assert.deepEqual(await shop.evaluate(() => replies.map((r) => "result" in r)), [true, true], "control: the framed broker answers");
    await shop.evaluate(() => (replies.length = 0));

    const [popup] = await Promise.all([b.context.waitForEvent("page"), shop.evaluate((u) => attack(u), broker.iframeUrl)]);
    await popup.waitForLoadState("load");
    assert.equal(await popup.evaluate(() => !!document.getElementById("baton-config")), true, "the broker page did load");
    await shop.evaluate(() => post(w));
    await sleep(1500);
    assert.deepEqual(await shop.evaluate(() => replies), [], "a top-level broker page answers nobody");
  }));

test("hostile: evil's own credentialed requests to the API store nothing", () =>
  withBrowser("allowed", async (b) => {
    const { partners, broker } = world;
    const shop = await open(b, partners.url("shop"));
    await call(shop, "set", "k", "mine");
    const evil = await open(b, partners.url("evil", "/landing"));
    const results = await evil.evaluate(async (origin) => {
      const out = [];
      for (const [method, path, body, mode] of [
        // A "simple" request (text/plain, no preflight) is sent with the cookies: refused by the broker.
        ["POST", "/v1/handoff", JSON.stringify({ audience: location.origin }), "no-cors"],
        ["POST", "/v1/handoff/redeem", JSON.stringify({ token: "x", origin: location.origin }), "no-cors"],
        // Anything else needs a preflight, which the broker refuses, so the browser never sends it.
        ["PUT", "/v1/session/k", JSON.stringify({ value: "evil" }), "cors"],
        ["DELETE", "/v1/session", undefined, "cors"],
        ["GET", "/v1/session", undefined, "cors"],
      ]) {
        const headers = { "content-type": mode === "cors" ? "application/json" : "text/plain" };
        out.push(await fetch(origin + path, { method, body, credentials: "include", mode, headers }).then((r) => r.type, () => "network error"));
      }
      return out;
    }, broker.origin);
    assert.deepEqual(results, ["opaque", "opaque", "network error", "network error", "network error"]);
    assert.equal(await get(shop, "k"), "mine");
  }));

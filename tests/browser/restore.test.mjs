// The restore path in one round trip (issue 23): in cookie modes the broker renders the session
// into the iframe page, and the iframe answers the page's first read from it, with no
// `GET /v1/session` of its own. It falls back to the API, and so never shows a stale value,
// after a write by the frame, a change in another tab, and an arrival by a link (the handshake's
// redeem); with no cookie (a first visit) it reads as before. Chromium, third-party cookies
// allowed and blocked; Firefox and WebKit: engines/restore.test.mjs.
import http from "node:http";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { call, get, onFreePort, open, runBroker, startBrowser, startPartners, startWorld, withBrowser } from "./harness.mjs";

let world;
before(async () => (world = await startWorld()));
after(async () => world?.stop());

/** How many `GET /v1/session` the broker has answered. */
async function reads() {
  const text = await world.broker.metrics();
  const line = text
    .split("\n")
    .find((l) => l.startsWith("baton_http_request_duration_seconds_count{") && l.includes('method="GET"') && l.includes('route="/v1/session"'));
  return Number(line?.split(" ").pop() ?? 0);
}

/** What the broker rendered into `page`'s iframe: the snapshot's text, or null. */
const rendered = async (page, iframeUrl = world.broker.iframeUrl) => {
  const frame = page.frames().find((f) => f.url().startsWith(iframeUrl));
  assert.ok(frame, "the broker's iframe");
  return frame.evaluate(() => document.getElementById("baton-session")?.textContent ?? null);
};

for (const mode of ["allowed", "blocked"]) {
  test(`3PC ${mode}: a saved session is restored from the iframe page itself, without a read; a first visit reads`, () =>
    withBrowser(world, mode, async (b) => {
      const url = world.partners.url("shop");
      const first = await open(b, url);
      let before = await reads();
      assert.equal(await get(first, "chat"), null, "a first visit has nothing");
      assert.equal(await reads(), before + 1, "no cookie came: the iframe asked the API");
      assert.equal(await rendered(first), null);
      assert.deepEqual(await call(first, "set", "chat", "c-1"), { ok: true, value: null });

      for (const how of ["a new tab", "a reload"]) {
        const page = how === "a reload" ? first : await open(b, url);
        if (how === "a reload") {
          await page.reload();
          await page.evaluate(() => window.client.ready);
        }
        before = await reads();
        assert.equal(await get(page, "chat"), "c-1", how);
        assert.equal(await get(page, "other"), null, `${how}: a key the session lacks`);
        assert.equal(await reads(), before, `${how}: no GET /v1/session`);
        assert.deepEqual(JSON.parse(await rendered(page)), { chat: "c-1" });
      }
    }));

  test(`3PC ${mode}: after a write by the frame, the snapshot no longer answers`, () =>
    withBrowser(world, mode, async (b) => {
      const url = world.partners.url("shop");
      const setup = await open(b, url);
      assert.equal((await call(setup, "set", "chat", "v1")).ok, true);
      const page = await open(b, url);
      assert.deepEqual(JSON.parse(await rendered(page)), { chat: "v1" }, "the page came with v1");
      assert.equal((await call(page, "set", "chat", "v2")).ok, true);
      assert.equal(await get(page, "chat"), "v2", "after set");
      assert.equal((await call(page, "delete", "chat")).ok, true);
      assert.equal(await get(page, "chat"), null, "after delete");

      const other = await open(b, url);
      assert.deepEqual(JSON.parse(await rendered(other)), {}, "an empty session is rendered too");
      assert.equal((await call(other, "set", "chat", "v3")).ok, true);
      const ended = await open(b, url);
      assert.deepEqual(JSON.parse(await rendered(ended)), { chat: "v3" });
      assert.equal((await call(ended, "end")).ok, true);
      assert.equal(await get(ended, "chat"), null, "after end");
    }));

  test(`3PC ${mode}: after a change in another tab, the snapshot no longer answers`, () =>
    withBrowser(world, mode, async (b) => {
      const url = world.partners.url("shop");
      const writer = await open(b, url);
      assert.equal((await call(writer, "set", "chat", "v1")).ok, true);
      const reader = await open(b, url);
      assert.deepEqual(JSON.parse(await rendered(reader)), { chat: "v1" });
      await reader.evaluate(() => {
        window.changes = 0;
        window.client.on("change", () => window.changes++);
      });
      assert.equal((await call(writer, "set", "chat", "v2")).ok, true);
      await reader.waitForFunction(() => window.changes === 1, null, { timeout: 5000 });
      assert.equal(await get(reader, "chat"), "v2");
    }));
}

test("3PC blocked: after an arrival by a link, the destination's own earlier session is not what it reads", () =>
  withBrowser(world, "blocked", async (b) => {
    const { partners } = world;
    // support has a session of its own, empty (an empty session is replaced by a redeem).
    const support = await open(b, partners.url("support"));
    assert.equal((await call(support, "set", "tmp", "x")).ok, true);
    assert.equal((await call(support, "delete", "tmp")).ok, true);
    const shop = await open(b, partners.url("shop"));
    assert.equal((await call(shop, "set", "chat", "carried")).ok, true);
    await shop.click("#to-support");
    await shop.waitForURL((u) => u.hostname === "support.localhost");
    await shop.evaluate(() => window.client.ready);
    // The page was requested with support's cookie, so the broker rendered support's session…
    assert.deepEqual(JSON.parse(await rendered(shop)), {});
    // …but the handshake redeemed the link's token first: the carried chat is what it reads.
    assert.equal(await get(shop, "chat"), "carried");
  }));

/**
 * An HTTP proxy in front of the broker on 127.0.0.1:`target` that can hold one answer of
 * `/iframe.html` once the broker has rendered it, until released: the window in which a write
 * by another tab lands after the page was rendered and before its iframe listens for changes.
 */
async function startGate(/** @type {number} */ target) {
  /** @type {{held: () => void, release: Promise<void>} | null} */
  let gate = null;
  const server = http.createServer((req, res) => {
    const up = http.request({ host: "127.0.0.1", port: target, method: req.method, path: req.url, headers: req.headers }, async (upRes) => {
      const g = req.url?.startsWith("/iframe.html") ? gate : null;
      if (g) {
        gate = null;
        const chunks = [];
        for await (const c of upRes) chunks.push(c);
        g.held();
        await g.release;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers).end(Buffer.concat(chunks));
      } else {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      }
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: /** @type {import("node:net").AddressInfo} */ (server.address()).port,
    /** Holds the next iframe page: resolves `held` once rendered; sent when `release` resolves. */
    arm: (/** @type {Promise<void>} */ release) => new Promise((held) => (gate = { held: () => held(undefined), release })),
    stop: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

test("3PC blocked: a write another tab finishes while the page loads is not hidden by the page's older snapshot", async () => {
  const partners = await startPartners();
  let gate;
  let broker;
  let b;
  try {
    [gate, broker] = await onFreePort(async (plain) => {
      const g = await startGate(plain);
      const origin = `http://broker.localhost:${g.port}`;
      const r = await runBroker(plain, origin, [partners.origin("shop")], "").catch(async (e) => {
        await g.stop();
        throw e;
      });
      return [g, { ...r, iframeUrl: `${origin}/iframe.html`, origin }];
    });
    partners.page(
      "shop",
      "/",
      `<!doctype html><meta charset="utf-8"><title>shop</title>
<script src="${broker.origin}/cookie-provider.js"></script>
<script>window.client = Baton.connect(${JSON.stringify(broker.iframeUrl)});</script>`,
    );
    b = await startBrowser({ thirdPartyCookies: "blocked" });
    const url = partners.url("shop");
    const writer = await open(b, url);
    assert.deepEqual(await call(writer, "set", "chat", "v1"), { ok: true, value: null });
    // Another tab of shop loads; its iframe page is rendered with v1, then held.
    let release;
    const held = gate.arm(new Promise((r) => (release = r)));
    const reader = await b.newPage();
    const loading = reader.goto(url);
    await held;
    // Meanwhile the first tab writes: its change event goes before the held frame can hear it.
    assert.deepEqual(await call(writer, "set", "chat", "v2"), { ok: true, value: null });
    release();
    await loading;
    await reader.evaluate(() => window.client.ready);
    assert.deepEqual(JSON.parse(await rendered(reader, broker.iframeUrl)), { chat: "v1" }, "the page was rendered before the write");
    assert.equal(await get(reader, "chat"), "v2", "the read is the write's, not the page's");
  } finally {
    await b?.stop();
    await broker?.stop();
    await gate?.stop();
    await partners.stop();
  }
});

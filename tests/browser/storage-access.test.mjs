// Storage Access API, third-party cookies blocked: where the browser holds a storage-access grant
// for the broker under a partner site, the broker iframe activates it (the broker's
// `Activate-Storage-Access: load` answer to `Sec-Fetch-Storage-Access: inactive`, or iframe.js's
// own `requestStorageAccess()`), so the unpartitioned cookie works again and the session crosses
// sites with no handoff at all.
//
// Headless Chromium denies every permission prompt, so the grant is given through CDP
// (`Browser.setPermission`): `origin` is the top-level partner page, `embeddedOrigin` the broker.
// Swapped, Chromium accepts the call and grants nothing.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { call, get, open, partitionSite, startBrowser, startWorld, withBrowser as harnessWithBrowser, PART_COOKIE, PLAIN_COOKIE } from "./harness.mjs";

let world;
before(async () => (world = await startWorld()));
after(async () => world?.stop());

/** Runs `fn(browser)` in a fresh profile (see harness `withBrowser`). */
const withBrowser = (fn) => harnessWithBrowser(world, "blocked", fn);

/**
 * Grants the broker storage access under each partner site of `names`, as a user's "Allow" would.
 * The CDP session stays open: Chromium drops its permission overrides when it detaches.
 */
async function grant(b, names) {
  const cdp = await b.browser.newBrowserCDPSession();
  for (const name of names)
    await cdp.send("Browser.setPermission", {
      permission: { name: "storage-access" },
      setting: "granted",
      origin: world.partners.origin(name), // the top-level page
      embeddedOrigin: world.broker.origin, // the iframe
    });
  return cdp;
}

/**
 * Records what the browser exchanged with the broker: `/v1` calls as "METHOD /path STATUS", and
 * the `Activate-Storage-Access` answer of each iframe.html load (null when absent).
 */
function watch(b) {
  const seen = { api: [], activate: [] };
  b.context.on("response", async (res) => {
    const u = new URL(res.url());
    if (!u.host.startsWith("broker.localhost:")) return;
    if (u.pathname.startsWith("/v1/")) seen.api.push(`${res.request().method()} ${u.pathname} ${res.status()}`);
    if (u.pathname === "/iframe.html") seen.activate.push((await res.allHeaders())["activate-storage-access"] ?? null);
  });
  return seen;
}

/** The broker's cookies as [name, partition site or undefined] pairs, sorted. */
const brokerCookies = async (b) =>
  (await b.cookies())
    .filter((c) => c.domain === "broker.localhost")
    .map((c) => [c.name, partitionSite(c)])
    .sort((x, y) => `${x}`.localeCompare(`${y}`));

/** Whether the broker iframe in `page` currently has storage access. */
const frameAccess = (page) => page.frames().find((f) => f.url().startsWith(world.broker.iframeUrl)).evaluate(() => document.hasStorageAccess());

test("storage access granted (3PC blocked): mode is unpartitioned and a value set on shop is on support after a direct navigation, no handoff", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    await grant(b, ["shop", "support"]);
    const seen = watch(b);

    const shop = await open(b, partners.url("shop"));
    assert.deepEqual(await call(shop, "mode"), { ok: true, value: "unpartitioned" });
    assert.equal(await frameAccess(shop), true, "the iframe has storage access");
    assert.deepEqual(await call(shop, "set", "k", "via-storage-access"), { ok: true, value: null });

    const cookies = (await b.cookies()).filter((c) => c.domain === "broker.localhost");
    const plain = cookies.find((c) => c.name === PLAIN_COOKIE);
    assert.ok(plain, `${PLAIN_COOKIE} missing: ${JSON.stringify(cookies)}`);
    assert.equal(plain.partitionKey, undefined, `${PLAIN_COOKIE} is unpartitioned: ${JSON.stringify(plain)}`);
    assert.ok(plain.httpOnly && plain.secure && plain.sameSite === "None" && plain.path === "/", JSON.stringify(plain));

    // A direct navigation (typed URL, bookmark): no link click, no token.
    await shop.goto(partners.url("support", "/other"));
    await shop.evaluate(() => client.ready);
    assert.equal(shop.url(), partners.url("support", "/other"));
    assert.deepEqual(await call(shop, "mode"), { ok: true, value: "unpartitioned" });
    assert.equal(await get(shop, "k"), "via-storage-access", "the value is on support without a handoff");
    // ... and both ways: a change on support is seen on shop.
    assert.deepEqual(await call(shop, "set", "k", "changed-on-support"), { ok: true, value: null });
    await shop.goto(partners.url("shop", "/other"));
    await shop.evaluate(() => client.ready);
    assert.equal(await get(shop, "k"), "changed-on-support");

    assert.deepEqual(seen.api.filter((c) => c.includes("/v1/handoff")), [], "no handoff token minted or redeemed");
    assert.deepEqual(seen.activate, ["load", "load", "load"], "the broker asks the browser to activate the grant on every iframe load");
    assert.equal((await brokerCookies(b)).filter(([n, p]) => n === PLAIN_COOKIE && p === undefined).length, 1);
  }));

test("storage access granted, Activate-Storage-Access header stripped: iframe.js's requestStorageAccess() activates it", () =>
  withBrowser(async (b) => {
    const { partners, broker } = world;
    await grant(b, ["shop", "support"]);
    // A proxy that drops the response header: only the script path is left.
    await b.context.route(`${broker.iframeUrl}`, async (route) => {
      // (Node does not resolve *.localhost: fetch it from the broker's loopback address.)
      const res = await route.fetch({ url: `http://127.0.0.1:${broker.port}/iframe.html` });
      const headers = { ...res.headers() };
      for (const h of ["activate-storage-access", "content-encoding", "content-length"]) delete headers[h];
      await route.fulfill({ status: res.status(), headers, body: await res.body() });
    });
    const seen = watch(b);

    const shop = await open(b, partners.url("shop"));
    assert.deepEqual(await call(shop, "mode"), { ok: true, value: "unpartitioned" });
    assert.equal(await frameAccess(shop), true);
    await call(shop, "set", "k", "via-script");
    await shop.goto(partners.url("support"));
    await shop.evaluate(() => client.ready);
    assert.equal(await get(shop, "k"), "via-script");
    assert.deepEqual(seen.activate, [null, null], "the header really was stripped");
    assert.deepEqual(seen.api.filter((c) => c.includes("/v1/handoff")), []);
    assert.ok((await brokerCookies(b)).some(([n, p]) => n === PLAIN_COOKIE && p === undefined));
  }));

test("no grant (control): mode is partitioned, no unpartitioned cookie, the value is not on support after a direct navigation", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const seen = watch(b);
    const shop = await open(b, partners.url("shop"));
    assert.deepEqual(await call(shop, "mode"), { ok: true, value: "partitioned" });
    assert.equal(await frameAccess(shop), false);
    await call(shop, "set", "k", "stays-on-shop");
    await shop.goto(partners.url("support", "/other"));
    await shop.evaluate(() => client.ready);
    assert.deepEqual(await call(shop, "mode"), { ok: true, value: "partitioned" });
    assert.equal(await get(shop, "k"), null, "support has no session without a handoff");
    assert.deepEqual(await brokerCookies(b), [[PART_COOKIE, "http://shop.localhost"]]);
    assert.deepEqual(seen.activate, [null, null], "nothing to activate without a grant");
  }));

test("grant under shop only: shop is unpartitioned, support stays partitioned and a link click still carries the session", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    await grant(b, ["shop"]);
    const shop = await open(b, partners.url("shop"));
    assert.deepEqual(await call(shop, "mode"), { ok: true, value: "unpartitioned" });
    await call(shop, "set", "k", "one-grant");

    const direct = await open(b, partners.url("support"));
    assert.deepEqual(await call(direct, "mode"), { ok: true, value: "partitioned" }, "a grant is per top-level site");
    assert.equal(await get(direct, "k"), null, "no grant under support: the unpartitioned cookie is not sent there");
    await direct.close();

    await shop.click("#to-support");
    await shop.waitForURL((u) => u.host.startsWith("support.localhost:"));
    await shop.waitForLoadState("load");
    await shop.evaluate(() => client.ready);
    assert.equal(shop.url(), partners.url("support", "/landing#section"), "token removed from the address bar");
    assert.equal(await get(shop, "k"), "one-grant", "the handoff carried it");
    const sites = (await brokerCookies(b)).filter(([n]) => n === PART_COOKIE).map(([, p]) => p);
    assert.ok(sites.includes("http://support.localhost"), JSON.stringify(sites));
  }));

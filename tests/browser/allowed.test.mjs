// Third-party cookies allowed: the unpartitioned cookie carries the session across sites by itself.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { call, get, open, partitionSite, startBrowser, startWorld, until, withBrowser as harnessWithBrowser, PART_COOKIE, PLAIN_COOKIE } from "./harness.mjs";

let world;
before(async () => (world = await startWorld()));
after(async () => world?.stop());

/** Runs `fn(browser)` in a fresh profile (see harness `withBrowser`). */
const withBrowser = (fn) => harnessWithBrowser(world, "allowed", fn);

test("3PC allowed: Genesys CookieProvider saves on shop and loads on support", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop", "/bare"));
    const saved = await shop.evaluate(async () => {
      const seen = [];
      const p = new CookieProvider("chat-session", IFRAME, (ok) => seen.push(ok));
      const none = await p.saveCookie(); // no first-party cookie yet: nothing stored
      document.cookie = "chat-session=abc%7C123; path=/";
      const value = await p.saveCookie();
      const enabled = await p.cookieTest();
      return { none, value, enabled, seen, frames: document.querySelectorAll("iframe").length };
    });
    assert.deepEqual(saved, { none: null, value: "abc%7C123", enabled: true, seen: [true], frames: 1 });

    const support = await open(b, partners.url("support", "/bare"));
    const loaded = await support.evaluate(async () => {
      const before = document.cookie;
      const p = new CookieProvider("chat-session", IFRAME);
      const value = await p.loadCookie();
      return { before, value, after: document.cookie };
    });
    assert.deepEqual(loaded, { before: "", value: "abc%7C123", after: "chat-session=abc%7C123" });

    const cookies = await b.cookies();
    const broker = cookies.filter((c) => c.domain === "broker.localhost");
    const plain = broker.find((c) => c.name === PLAIN_COOKIE);
    assert.ok(plain, `${PLAIN_COOKIE} missing: ${JSON.stringify(broker)}`);
    assert.equal(partitionSite(plain), undefined, `${PLAIN_COOKIE} is unpartitioned`);
    assert.ok(plain.httpOnly && plain.secure && plain.sameSite === "None", JSON.stringify(plain));
  }));

test("3PC allowed: Baton.connect set on shop, get on support; mode is unpartitioned; one iframe per URL", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop"));
    assert.deepEqual(await call(shop, "mode"), { ok: true, value: "unpartitioned" });
    assert.deepEqual(await call(shop, "set", "greeting", "hello, world ✓"), { ok: true, value: null });
    assert.equal(await get(shop, "greeting"), "hello, world ✓");
    // A CookieProvider for the same iframe URL joins the page's iframe.
    assert.equal(await shop.evaluate(() => (new CookieProvider("x", IFRAME), document.querySelectorAll("iframe").length)), 1);

    const support = await open(b, partners.url("support"));
    assert.equal(await get(support, "greeting"), "hello, world ✓");
    assert.equal(await get(support, "missing"), null);
    const bad = await call(support, "get", "no/slash");
    assert.equal(bad.code, "bad_request");
    assert.equal(bad.name, "BatonError");
  }));

test("3PC allowed: end() removes the session everywhere", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop"));
    await call(shop, "set", "k", "v");
    const support = await open(b, partners.url("support"));
    assert.equal(await get(support, "k"), "v");
    assert.deepEqual(await call(support, "end"), { ok: true, value: null });
    assert.equal(await get(support, "k"), null);
    assert.equal(await get(shop, "k"), null);
    await shop.reload();
    await shop.evaluate(() => client.ready);
    assert.equal(await get(shop, "k"), null);
    // end() on support expired the shared cookie and support's partitioned one; shop's partitioned
    // cookie is out of support's reach but names the ended session (checked above: no value).
    const left = (await b.cookies()).filter((c) => c.domain === "broker.localhost");
    assert.deepEqual(left.map((c) => [c.name, partitionSite(c)]), [[PART_COOKIE, "http://shop.localhost"]]);
  }));

test("3PC allowed: initCookieProviderExtension follows WebChat.started / WebChat.ended", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop"));
    // A stand-in for Genesys's CXBus: records the plugin's subscriptions so the test can publish.
    await shop.evaluate(() => {
      window.handlers = {};
      window.tested = [];
      const bus = { registerPlugin: (name) => ((window.pluginName = name), { subscribe: (e, fn) => (window.handlers[e] = fn) }) };
      initCookieProviderExtension("chat-session", IFRAME, (ok) => tested.push(ok))(null, bus, null);
    });
    await shop.waitForFunction(() => tested.length === 1);
    assert.deepEqual(await shop.evaluate(() => [pluginName, Object.keys(handlers).sort(), tested]), [
      "CookieProvider",
      ["WebChat.ended", "WebChat.started"],
      [true],
    ]);
    await shop.evaluate(() => {
      document.cookie = "chat-session=s-42; path=/";
      handlers["WebChat.started"]({});
    });
    await until(async () => (await get(shop, "chat-session")) === "s-42", "the extension to save the cookie");
    const support = await open(b, partners.url("support"));
    await support.evaluate(() => {
      const bus = { registerPlugin: () => ({ subscribe: (e, fn) => ((window.handlers ??= {})[e] = fn) }) };
      initCookieProviderExtension("chat-session", IFRAME)(null, bus, null);
    });
    await support.waitForFunction(() => document.cookie.includes("chat-session=s-42"), null, { timeout: 5000 });

    await support.evaluate(() => handlers["WebChat.ended"]({}));
    await support.waitForFunction(() => !document.cookie.includes("chat-session"), null, { timeout: 5000 });
    // The chat is over on every site.
    await until(async () => (await get(shop, "chat-session")) === null, "the value to be gone on shop");
  }));

test("3PC allowed: a chat ended on support is not brought back on shop by its stale page cookie", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop", "/bare"));
    await shop.evaluate(async () => {
      document.cookie = "chat-session=live-chat; path=/";
      await new CookieProvider("chat-session", IFRAME).saveCookie();
    });
    const support = await open(b, partners.url("support", "/bare"));
    await support.evaluate(async () => {
      const p = new CookieProvider("chat-session", IFRAME);
      await p.loadCookie();
      await p.deleteCookie();
    });
    await shop.reload();
    const after = await shop.evaluate(async () => {
      const before = document.cookie;
      const loaded = [];
      const bus = {
        registerPlugin: () => ({ subscribe() {}, publish: (e, v) => loaded.push([e, v]) }),
      };
      initCookieProviderExtension("chat-session", IFRAME)(null, bus, null);
      const deadline = Date.now() + 5000;
      while (!loaded.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      return { before, loaded, after: document.cookie };
    });
    assert.deepEqual(after, {
      before: "chat-session=live-chat",
      loaded: [["loaded", null]],
      after: "",
    });
  }));

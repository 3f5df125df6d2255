// The page's own cookie as CookieProvider writes it (issue 20): a value the broker holds can never
// add cookie attributes, comes back exactly, and a value a Genesys page wrote before baton (raw,
// js-cookie style) passes through unchanged. Cookies are read from Chromium's store (CDP
// `Storage.getCookies`), not only from `document.cookie`, so that an attribute the library did not
// set (a Domain, an expiry, another path) shows.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { call, open, startWorld, withBrowser as harnessWithBrowser } from "./harness.mjs";

let world;
before(async () => (world = await startWorld()));
after(async () => world?.stop());

/** Third-party cookies allowed: one broker session on both sites, so support loads what shop saved. */
const withBrowser = (fn) => harnessWithBrowser(world, "allowed", fn);

/** Broker values that are not cookie octets: attributes, CR LF, comma, quotes, non-ASCII. */
const HOSTILE = [
  // Chromium takes this Domain on shop (its own host): the old loadCookie() made it a ten-year
  // cookie of every *.shop.localhost host, at path /x.
  "x; Domain=shop.localhost; Max-Age=315360000; Path=/x",
  "x; Domain=localhost; Max-Age=315360000; Path=/x",
  "line\r\nSet-Cookie: other=1",
  "a,b, c",
  '"quoted"',
  "é ü 中 😀",
  '%3B "100%" %zz; Expires=Fri, 01 Jan 2100 00:00:00 GMT',
];

/** The chat widget's reader (js-cookie 3, what Genesys's sample hands `setSessionData`). */
const JS_COOKIE_READ = `(v) => (v[0] === '"' ? v.slice(1, -1) : v).replace(/(%[\\dA-F]{2})+/gi, decodeURIComponent)`;

/**
 * What a page sees of cookie `name`: CookieProvider's loadCookie() result, the widget's reading
 * of `document.cookie`, and every cookie of that name in the browser's store.
 */
async function load(b, page, name) {
  const seen = await page.evaluate(
    async ([name, read]) => {
      const value = await new CookieProvider(name, IFRAME).loadCookie();
      const raw = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
      return { value, widget: raw === undefined ? null : (0, eval)(read)(raw.slice(name.length + 1)) };
    },
    [name, JS_COOKIE_READ],
  );
  return { ...seen, jar: (await b.cookies()).filter((c) => c.name === name) };
}

/** Asserts the page cookies `jar` are one per host of `hosts`, each with only the library's attributes. */
function onlyLibraryAttributes(jar, hosts) {
  assert.deepEqual(jar.map((c) => c.domain).sort(), hosts, `one host-only cookie per page host: ${JSON.stringify(jar)}`);
  for (const c of jar) {
    const attrs = { path: c.path, session: c.session, expires: c.expires, sameSite: c.sameSite, secure: c.secure, httpOnly: c.httpOnly, partitionKey: c.partitionKey };
    assert.deepEqual(attrs, { path: "/", session: true, expires: -1, sameSite: "Lax", secure: false, httpOnly: false, partitionKey: undefined }, JSON.stringify(c));
  }
}

test("cookie value: a broker value carrying cookie attributes, CR LF, comma, quotes or non-ASCII round trips exactly and adds no attribute", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop"));
    const support = await open(b, partners.url("support"));
    for (const [i, value] of HOSTILE.entries()) {
      const name = `chat${i}`;
      const what = JSON.stringify(value);
      assert.deepEqual(await call(shop, "set", name, value), { ok: true, value: null });
      // shop: the broker's value into the page's cookie, then that cookie back into the broker.
      const onShop = await load(b, shop, name);
      assert.equal(onShop.value, value, `loadCookie() on shop, ${what}`);
      assert.equal(onShop.widget, value, `the widget reads the page cookie on shop, ${what}: ${JSON.stringify(onShop.jar)}`);
      assert.equal(await shop.evaluate((n) => new CookieProvider(n, IFRAME).saveCookie(), name), value, `saveCookie() on shop, ${what}`);
      assert.deepEqual(await call(shop, "get", name), { ok: true, value }, `the broker after saveCookie(), ${what}`);
      // support, another page load: the same value, and still only the library's attributes.
      await support.reload();
      const onSupport = await load(b, support, name);
      assert.equal(onSupport.value, value, `loadCookie() on support, ${what}`);
      assert.equal(onSupport.widget, value, `the widget reads the page cookie on support, ${what}`);
      onlyLibraryAttributes(onSupport.jar, ["shop.localhost", "support.localhost"]);
    }
  }));

test("cookie value: a raw value written by the Genesys widget before baton passes through byte for byte", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop", "/bare"));
    // js-cookie 3's writer, as the widget's `Cookie.set`: every cookie octet it produces (`%XX`
    // runs included) must be kept as it is, for readers that decode and for readers that do not.
    const raw = await shop.evaluate(() => {
      const session = JSON.stringify({ chatId: "c-1", alias: "José, \"cx\"; 100%", at: "2026-12-07T10:00:00Z" });
      const v = encodeURIComponent(session).replace(/%(2[346BF]|3[AC-F]|40|5[BDE]|60|7[BCD])/g, decodeURIComponent);
      document.cookie = "genesys=" + v + "; path=/";
      return v;
    });
    assert.match(raw, /%22.*%2C.*%3B.*%25/, "the value has the %XX runs js-cookie writes");
    assert.equal(await shop.evaluate(() => new CookieProvider("genesys", IFRAME).saveCookie()), raw);

    const support = await open(b, partners.url("support"));
    assert.deepEqual(await call(support, "get", "genesys"), { ok: true, value: raw }, "the broker holds the raw value");
    const onSupport = await load(b, support, "genesys");
    assert.equal(onSupport.value, raw);
    assert.deepEqual(
      onSupport.jar.filter((c) => c.domain === "support.localhost").map((c) => c.value),
      [raw],
      "support's cookie is the raw value, byte for byte",
    );
    assert.equal(onSupport.widget, JSON.stringify({ chatId: "c-1", alias: "José, \"cx\"; 100%", at: "2026-12-07T10:00:00Z" }));
    // (shop's cookie is the one the page wrote, with its own attributes.)
    onlyLibraryAttributes(onSupport.jar.filter((c) => c.domain === "support.localhost"), ["support.localhost"]);
  }));

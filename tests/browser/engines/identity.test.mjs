// Identity binding in real browsers (issue 19), in the cells where each site of a browser holds a
// session of its own: Chromium with third-party cookies blocked, Firefox by default and blocking
// every third-party cookie, WebKitGTK by default. Genesys pages (the extension form on shop, the
// instance form on support) render `<meta name="baton-identity">` as a partner's backend would:
// (a) an identified customer's chat is found after a typed-URL arrival on another site, (b) in a
// second browser profile, (c) not with another customer's assertion nor a refused one (and an
// assertion meeting another chat on the site is a conflict the page hears of), (d) nowhere
// in the browser after forget(), while the other profile finds it again with its assertion; then,
// without identity, (f) Back after End shows no chat (the page restored from the back/forward
// cache) and (e) a link carrying another chat to a site that has one of its own tells the page.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { until } from "../harness.mjs";
import { scheme, startWorlds, withEngine, launch } from "./index.mjs";

/** The cells where a site's session stays on that site: identity is what joins them. */
const CELLS = /** @type {const} */ ([
  ["chromium", "blocked"],
  ["firefox", "default"],
  ["firefox", "blocked"],
  ["webkit", "default"],
]);

const NAME = "customer-defined-session-cookie";
const KID = "partner-test";
const SECRET = randomBytes(32).toString("base64url");
/** What the broker's config adds: one HS256 partner key and the subject secret. */
const IDENTITY_TOML = `[identity]
subject_secret = "${randomBytes(32).toString("base64url")}"
[[identity.keys]]
kid = "${KID}"
secret = "${SECRET}"
`;

const b64 = (/** @type {unknown} */ v) => Buffer.from(JSON.stringify(v)).toString("base64url");

/**
 * An HS256 assertion as a partner's backend signs it (docs/identity.md).
 * @param {{iss: string, aud: string, sub: string, iat?: number, exp?: number}} claims
 */
function sign({ iat = Math.floor(Date.now() / 1000), exp = iat + 300, ...claims }) {
  const input = `${b64({ alg: "HS256", typ: "JWT", kid: KID })}.${b64({ ...claims, iat, exp })}`;
  return `${input}.${createHmac("sha256", Buffer.from(SECRET, "base64url")).update(input).digest("base64url")}`;
}

/** @typedef {import("./sites.mjs").World} World */
/** @type {import("./sites.mjs").Worlds} partner sites and a broker with identity keys */
let worlds;
let pageCount = 0;

before(async () => {
  worlds = await startWorlds((w) => {
    // Where the pages' links go.
    for (const site of /** @type {const} */ (["shop", "support"])) page(w, site, undefined, "/landing");
  }, { toml: IDENTITY_TOML });
});
after(async () => worlds?.stop());

/**
 * A new Genesys page on `site` (shop: the extension form, support: the instance form) carrying
 * `assertion` in its meta tag (none when undefined), served so that the back/forward cache may
 * keep it; returns its URL. `window.shown` is what the page shows: the chat the library loaded
 * (every `CookieProvider.loaded`), `window.conflicts` the conflict notices it got.
 * @param {World} w
 * @param {"shop" | "support"} site
 * @param {string} [assertion]
 * @param {string} [path] default: a new one
 */
function page({ partners, broker }, site, assertion, path = `/page-${++pageCount}`) {
  const meta = assertion === undefined ? "" : `<meta name="baton-identity" content="${assertion}">`;
  const provider =
    site === "shop"
      ? `const subscribers = {};
  const CXBus = {
    registerPlugin: (name) => ({
      subscribe: (event, fn) => (subscribers[event] = [...(subscribers[event] || []), fn]),
      publish: (event, data) => (subscribers[name + "." + event] || []).forEach((fn) => fn({ data })),
    }),
  };
  window.loaded = new Promise((resolve) => CXBus.registerPlugin("Test").subscribe("CookieProvider.loaded", (e) => resolve((window.shown = e.data))));
  initCookieProviderExtension(SESSION_COOKIE_NAME, IFRAME_URL)(null, CXBus);
  window.startChat = (id) => {
    document.cookie = SESSION_COOKIE_NAME + "=" + id + "; path=/";
    window.shown = id;
    CXBus.registerPlugin("WebChat").publish("started", {});
  };`
      : `window.cookieProvider = new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL);
  window.loaded = cookieProvider.loadCookie().then((v) => (window.shown = v));
  window.startChat = (id) => {
    document.cookie = SESSION_COOKIE_NAME + "=" + id + "; path=/";
    window.shown = id;
    return cookieProvider.saveCookie();
  };`;
  partners.page(
    site,
    path,
    `<!doctype html><meta charset="utf-8"><title>${site}</title>${meta}
<script src="${broker.scriptUrl}"></script>
<script>
  const IFRAME_URL = ${JSON.stringify(broker.iframeUrl)};
  const SESSION_COOKIE_NAME = ${JSON.stringify(NAME)};
  window.conflicts = [];
  window.restored = 0;
  addEventListener("baton:conflict", () => conflicts.push("window event"));
  Baton.connect(IFRAME_URL).on("conflict", () => conflicts.push("on"));
  addEventListener("pageshow", (e) => e.persisted && restored++);
  ${provider}
</script>
<body><h1>${site}</h1>
<a id="to-support" href="${partners.url("support", "/landing")}">support</a>
<a id="to-shop" href="${partners.url("shop", "/landing")}">shop</a></body>`,
    { bfcache: true },
  );
  return partners.url(site, path);
}

/** The page's own chat cookie, or null. */
const chatCookie = `(document.cookie.split("; ").find((c) => c.startsWith(${JSON.stringify(NAME + "=")})) || "").slice(${NAME.length + 1}) || null`;
/** The chat the broker holds for this page, read through a client of its own. */
const brokerChat = "Baton.connect(IFRAME_URL).get(SESSION_COOKIE_NAME)";

for (const [engine, mode] of CELLS) {
  test(`${engine} ${mode}: an identified chat is found on another site and in another profile, not by other or refused assertions, nowhere after forget; a conflicting identify is told`, () =>
    withEngine(engine, mode, async (a) => {
      const w = worlds[scheme(engine)];
      const { partners, broker } = w;
      const aud = broker.origin;
      // Customers of this cell only: the broker is shared by the cells of one scheme.
      const as = (/** @type {"shop" | "support"} */ site, /** @type {string} */ who, extra = {}) =>
        sign({ iss: partners.origin(site), aud, sub: `${who}-${engine}-${mode}`, ...extra });
      const chat = `chat-${engine}-${mode}`;

      // (a) Customer X starts a chat on shop; typing support's address (no link, no token) finds it.
      const tab = await a.open(page(w, "shop", as("shop", "x")));
      assert.equal(await tab.evaluate("window.loaded"), null, "X has no chat yet");
      await tab.evaluate(`startChat(${JSON.stringify(chat)})`);
      await until(async () => (await tab.evaluate(brokerChat)) === chat, "the chat saved in the broker");
      await tab.goto(page(w, "support", as("support", "x")));
      assert.equal(await tab.evaluate("window.loaded"), chat, "typed-URL arrival on support, identified as X");
      assert.equal(await tab.evaluate(chatCookie), chat, "in support's own cookie");

      // (b) A second browser profile, identified as X on support, finds it too.
      const b = await launch(engine, mode);
      try {
        const other = await b.open(page(w, "support", as("support", "x")));
        assert.equal(await other.evaluate("window.loaded"), chat, "a second profile, identified as X");

        // (c) A refused assertion for X, and customer Y, find nothing.
        await other.goto(page(w, "shop", as("shop", "x", { iat: Math.floor(Date.now() / 1000) - 400, exp: Math.floor(Date.now() / 1000) - 100 })));
        assert.equal(await other.evaluate("window.loaded"), null, "an expired assertion for X");
        await other.goto(page(w, "shop", as("shop", "x", { aud: partners.origin("shop") })));
        assert.equal(await other.evaluate("window.loaded"), null, "an assertion for X for another audience");
        const refused = `Baton.connect(IFRAME_URL).identify(${JSON.stringify(as("support", "x"))}).then(() => "joined", (e) => e.code)`;
        assert.equal(await other.evaluate(refused), "identity_issuer", "identify() on shop with support's assertion");
        assert.equal(await other.evaluate(brokerChat), null, "still nothing on shop");
        await other.goto(page(w, "shop", as("shop", "y")));
        assert.equal(await other.evaluate("window.loaded"), null, "customer Y");
        // Y's chat on this site, then X's assertion: both sessions hold values, so the broker keeps
        // both, identify() rejects, and the page is told.
        await other.evaluate(`startChat("y-chat")`);
        await until(async () => (await other.evaluate(brokerChat)) === "y-chat", "Y's chat saved");
        const conflicting = `Baton.connect(IFRAME_URL).identify(${JSON.stringify(as("shop", "x"))}).then(() => "joined", (e) => e.code)`;
        assert.equal(await other.evaluate(conflicting), "session_conflict");
        assert.deepEqual((await other.evaluate("window.conflicts")).sort(), ["on", "window event"]);
        assert.equal(await other.evaluate(brokerChat), "y-chat", "the page keeps its own chat");

        // (d) forget() on support: no page of this browser reaches the chat without an assertion.
        assert.equal(await tab.evaluate("cookieProvider.forget()"), null);
        assert.equal(await tab.evaluate(chatCookie), null, "forget() removed support's cookie");
        await tab.goto(page(w, "shop"));
        assert.equal(await tab.evaluate("window.loaded"), null, "shop, after forget");
        await tab.goto(page(w, "support"));
        assert.equal(await tab.evaluate("window.loaded"), null, "support, after forget");
        // The other profile, with its assertion, finds it on its next identify.
        await other.goto(page(w, "support", as("support", "x")));
        assert.equal(await other.evaluate("window.loaded"), chat, "the other profile, identified again");
      } finally {
        await b.stop();
      }
      assert.deepEqual(await tab.errors(), [], "no error in the pages or the broker's iframe");
    }));

  test(`${engine} ${mode}: Back after End shows no chat; a link carrying a chat to a site holding another tells the page`, () =>
    withEngine(engine, mode, async (a) => {
      const w = worlds[scheme(engine)];
      // (f) A chat carried from shop to support by a link, ended there: Back to shop (restored from
      // the back/forward cache) shows no chat, and shop's cookie is gone.
      const tab = await a.open(page(w, "shop"));
      assert.equal(await tab.evaluate("window.loaded"), null);
      await tab.evaluate(`startChat("to-end")`);
      await until(async () => (await tab.evaluate(brokerChat)) === "to-end", "the new chat saved");
      assert.equal(await tab.evaluate("window.shown"), "to-end", "the page shows its chat");
      await tab.evaluate("window.before = 'left'");
      await tab.click("#to-support");
      await tab.waitForURL((u) => u.hostname === "support.localhost");
      assert.equal(await tab.evaluate("window.loaded"), "to-end", "carried to support");
      assert.equal(await tab.evaluate("Baton.connect(IFRAME_URL).end()"), null, "End chat");
      await tab.evaluate("history.back()");
      // The document's own address: puppeteer's page.url() (Firefox) misses a restore from the
      // back/forward cache.
      await until(async () => (await tab.evaluate("location.hostname + document.readyState")) === "shop.localhostcomplete", "Back on shop");
      assert.deepEqual(await tab.evaluate("[window.before, window.restored]"), ["left", 1], "restored from the back/forward cache");
      await until(async () => (await tab.evaluate("window.shown")) === null, "the ended chat gone from the restored page");
      assert.equal(await tab.evaluate(chatCookie), null, "and shop's cookie");

      // (e) A chat on shop; a typed URL to support and another chat there; a link back to shop
      // carries that one to a site holding its own: shop keeps its chat, and is told. In a new tab:
      // puppeteer (Firefox) loses track of a tab's navigations after a back/forward cache restore.
      const next = await a.open(page(w, "shop"));
      assert.equal(await next.evaluate("window.loaded"), null);
      await next.evaluate(`startChat("old")`);
      await until(async () => (await next.evaluate(brokerChat)) === "old", "shop's chat saved");
      await next.goto(page(w, "support"));
      assert.equal(await next.evaluate("window.loaded"), null, "support has no chat");
      await next.evaluate(`startChat("new")`);
      await next.click("#to-shop");
      await next.waitForURL((u) => u.hostname === "shop.localhost");
      await until(async () => (await next.evaluate("window.conflicts.length")) === 2, "the conflict told to the page");
      assert.deepEqual((await next.evaluate("window.conflicts")).sort(), ["on", "window event"]);
      assert.equal(await next.evaluate("window.loaded"), "old", "shop kept its own chat");
      assert.deepEqual([...(await tab.errors()), ...(await next.errors())], [], "no error in the pages or the broker's iframe");
    }));
}

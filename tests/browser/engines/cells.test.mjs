// The same Genesys-style chat in every engine and cookie mode (Chromium, Firefox ESR, WebKitGTK),
// one fresh browser at a time, against the real broker on real different sites (*.localhost):
// saved on shop, a real link click, the chat on support, a reload keeps it, a replayed token is
// refused, End removes it on every site, an untrusted site gets nothing, and no page error in the
// pages or the broker's iframe.
//
// The partner pages are written from the Genesys guide "Persistent Chat across Different
// Domains": shop uses the Widgets extension form (`initCookieProviderExtension` on a CXBus),
// support the instance form (`new CookieProvider(...)` and `loadCookie()`).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { CELLS, scheme, startWorlds, withEngine } from "./index.mjs";

/** Where each cell keeps the session: the mode `Baton.connect(...).mode()` must report. */
/** @type {Record<string, Record<string, string>>} */
const EXPECTED_MODE = {
  chromium: { allowed: "unpartitioned", blocked: "partitioned" },
  // Total Cookie Protection (default, strict) partitions even the unpartitioned cookie.
  firefox: { default: "partitioned", allowed: "unpartitioned", blocked: "page", strict: "partitioned" },
  // No CHIPS: with third-party cookies blocked the iframe keeps no cookie at all.
  webkit: { default: "page", always: "unpartitioned", itp: "page" },
};

const NAME = "customer-defined-session-cookie";

/** @typedef {import("./sites.mjs").World} World */
/** @type {import("./sites.mjs").Worlds} */
let worlds;
/** The same, with the broker's page keys turned off (`session.page_keys = false`). */
/** @type {import("./sites.mjs").Worlds} */
let offWorlds;

/** Genesys pages on shop, support and evil for one world. */
function addPages(/** @type {World} */ { partners, broker }) {
  const head = (/** @type {string} */ title) => `<!doctype html><meta charset="utf-8"><title>${title}</title>
<script>window.arrivedHash = location.hash;</script>
<script src="${broker.scriptUrl}"></script>
<script>
  const IFRAME_URL = ${JSON.stringify(broker.iframeUrl)};
  const SESSION_COOKIE_NAME = ${JSON.stringify(NAME)};
</script>`;
  const links = `<a id="to-support" href="${partners.url("support", "/landing")}">support</a>
<a id="to-shop" href="${partners.url("shop", "/")}">shop</a>
<a id="to-evil" href="${partners.url("evil", "/landing")}">evil</a>`;
  // The Widgets extension form, with the smallest CXBus that does what widgets-core does for it.
  partners.page(
    "shop",
    "/",
    `${head("shop")}
<script>
  const subscribers = {};
  const CXBus = {
    registerPlugin: (name) => ({
      subscribe: (event, fn) => (subscribers[event] = [...(subscribers[event] || []), fn]),
      publish: (event, data) => (subscribers[name + "." + event] || []).forEach((fn) => fn({ data })),
    }),
  };
  window.loaded = new Promise((resolve) => CXBus.registerPlugin("Test").subscribe("CookieProvider.loaded", (e) => resolve(e.data)));
  window._genesys = { widgets: { bus: CXBus, extensions: {} } };
  window._genesys.widgets.extensions["CookieProviderExtension"] = initCookieProviderExtension(SESSION_COOKIE_NAME, IFRAME_URL);
  window._genesys.widgets.extensions.CookieProviderExtension(null, CXBus);
  // What the chat widget does when a chat starts: its session cookie, then WebChat.started.
  window.startChat = (id) => {
    document.cookie = SESSION_COOKIE_NAME + "=" + id + "; path=/";
    CXBus.registerPlugin("WebChat").publish("started", {});
  };
</script>
<body><h1>shop</h1>${links}</body>`,
  );
  // The instance form.
  partners.page(
    "support",
    "/landing",
    `${head("support")}
<script>
  let cookieProvider = new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL);
  window.loaded = cookieProvider.loadCookie();
</script>
<body><h1>support</h1>${links}</body>`,
  );
  partners.page(
    "evil",
    "/landing",
    `${head("evil")}
<script>window.stolen = Baton.connect(IFRAME_URL, { timeout: 3000 }).get(SESSION_COOKIE_NAME).then((v) => "got " + v, (e) => e.code);</script>
<body><h1>evil</h1></body>`,
  );
}

before(async () => {
  worlds = await startWorlds(addPages);
  offWorlds = await startWorlds(addPages, { toml: "[session]\npage_keys = false\n" });
});
after(async () => {
  const ends = await Promise.allSettled([worlds?.stop(), offWorlds?.stop()]);
  for (const e of ends) if (e.status === "rejected") throw e.reason;
});

/** The value of counter `name` in the broker's /metrics. */
const counter = async (/** @type {World} */ w, /** @type {string} */ name) => {
  const line = (await w.broker.metrics()).split("\n").find((l) => l.startsWith(name + " "));
  return Number(line?.split(" ")[1] ?? NaN);
};

/** The page's own chat cookie, or null. */
const chatCookie = `(document.cookie.split("; ").find((c) => c.startsWith(${JSON.stringify(NAME + "=")})) || "").slice(${NAME.length + 1}) || null`;

for (const [engine, mode] of CELLS) {
  test(`${engine} ${mode}: a Genesys chat saved on shop carries to support by a link click, survives a reload, ends everywhere`, () =>
    withEngine(engine, mode, async (b) => {
      const w = /** @type {World} */ (worlds[scheme(engine)]);
      const { partners } = w;
      const chat = `chat-${engine}-${mode}`;

      const page = await b.open(partners.url("shop", "/"));
      assert.equal(await page.evaluate("window.loaded"), null, "a first visit has no chat");
      const expected = EXPECTED_MODE[engine][mode];
      assert.equal(await page.evaluate("Baton.connect(IFRAME_URL).mode()"), expected, "mode");
      await page.evaluate(`startChat(${JSON.stringify(chat)})`);
      // WebChat.started saved it: the broker has it for this site.
      await until(async () => (await page.evaluate(`Baton.connect(IFRAME_URL).get(SESSION_COOKIE_NAME)`)) === chat, "the saved chat in the broker");

      // A real click on a plain link to the other site, hovered first as a customer's pointer
      // reaches a link before it clicks: the token is minted then, ready at the click. (A click
      // with no token ready waits at most 600 ms for one, a bound a loaded test machine can miss;
      // arrival.test.mjs covers that path.) The hover is a dispatched `pointerover`: a real one,
      // or a focus, reaches no listener in a tab that is not the active one (Firefox), as this
      // one is not once a second tab opened below.
      /** Hovers `selector` and waits until the token for its link was minted. */
      const premint = async (/** @type {string} */ selector) => {
        const issued = await counter(w, "baton_handoffs_issued_total");
        await page.evaluate(
          `document.querySelector(${JSON.stringify(selector)}).dispatchEvent(new PointerEvent("pointerover", { bubbles: true, composed: true }))`,
        );
        await until(async () => (await counter(w, "baton_handoffs_issued_total")) > issued, `a token minted for ${selector}`);
      };
      await premint("#to-support");
      await page.click("#to-support");
      await page.waitForURL((u) => u.hostname === "support.localhost");
      assert.equal(await page.evaluate("window.loaded"), chat, "the chat is on support");
      assert.equal(await page.evaluate(chatCookie), chat, "in support's own cookie");
      assert.equal(await page.evaluate("location.href"), partners.url("support", "/landing"), "the token left the address bar");
      const arrived = await page.evaluate("window.arrivedHash");
      assert.match(arrived, /^#baton=[\w.-]+$/, "the link carried a token");

      await page.reload();
      assert.equal(await page.evaluate("window.loaded"), chat, "a reload keeps it");
      const tab = await b.open(partners.url("support", "/landing"));
      assert.equal(await tab.evaluate("window.loaded"), chat, "a new tab of support has it");
      assert.deepEqual(await tab.errors(), []);

      // The same token again (a new document: a path change, not a fragment change): refused.
      const refused = await counter(w, "baton_handoffs_refused_total");
      await page.goto(partners.url("support", `/landing?again${arrived}`));
      assert.equal(await page.evaluate("window.loaded"), chat, "support keeps its own session");
      await until(async () => (await counter(w, "baton_handoffs_refused_total")) === refused + 1, "the replay refused by the broker");

      // Back on shop by a link: the same chat.
      await premint("#to-shop");
      await page.click("#to-shop");
      await page.waitForURL((u) => u.hostname === "shop.localhost");
      assert.equal(await page.evaluate("window.loaded"), chat, "still on shop");

      // End the chat on shop: gone on both sites, stale page cookies included.
      assert.equal(await page.evaluate("Baton.connect(IFRAME_URL).end()"), null);
      await page.goto(partners.url("support", "/landing"));
      assert.equal(await page.evaluate("window.loaded"), null, "ended on support");
      assert.equal(await page.evaluate(chatCookie), null, "support's stale cookie removed");
      await page.goto(partners.url("shop", "/"));
      assert.equal(await page.evaluate("window.loaded"), null, "ended on shop");
      assert.deepEqual(await page.errors(), [], "no error in the pages or the broker's iframe");

      // An untrusted site: no token in the link, no answer from the broker.
      await page.evaluate(`startChat("secret")`);
      await until(async () => (await page.evaluate(`Baton.connect(IFRAME_URL).get(SESSION_COOKIE_NAME)`)) === "secret", "a new chat");
      await page.click("#to-evil");
      await page.waitForURL((u) => u.hostname === "evil.localhost");
      assert.equal(await page.evaluate("window.arrivedHash"), "", "no token for an untrusted site");
      assert.match(await page.evaluate("window.stolen"), /^(iframe_error|timeout)$/, "the broker's iframe does not serve evil");
    }));
}

// Where the browser keeps no broker cookie and the operator turned page keys off, nothing carries
// the chat, and the library says so rather than pretending: mode "none", cookieTest false, and the
// page's own chat cookie is left alone (the broker's "nothing" is no news of an ended chat).
for (const [engine, mode] of CELLS.filter(([e, m]) => EXPECTED_MODE[e][m] === "page")) {
  test(`${engine} ${mode}, page keys off: mode none, cookieTest false, nothing carried and nothing claimed`, () =>
    withEngine(engine, mode, async (b) => {
      const { partners } = /** @type {World} */ (offWorlds[scheme(engine)]);
      const page = await b.open(partners.url("shop", "/"));
      assert.equal(await page.evaluate("window.loaded"), null);
      assert.equal(await page.evaluate("Baton.connect(IFRAME_URL).mode()"), "none");
      assert.equal(await page.evaluate("new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL).cookieTest()"), false);
      await page.evaluate(`startChat("here-only")`);
      await page.reload();
      assert.equal(await page.evaluate("window.loaded"), null, "the broker kept nothing");
      assert.equal(await page.evaluate(chatCookie), "here-only", "the page's own cookie stays");
      await page.click("#to-support");
      await page.waitForURL((u) => u.hostname === "support.localhost");
      assert.equal(await page.evaluate("window.loaded"), null, "nothing on support");
      assert.deepEqual(await page.errors(), []);
    }));
}

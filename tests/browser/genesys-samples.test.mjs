// Partner pages written literally against Genesys's "Persistent Chat across Different Domains"
// samples (the Genesys Digital Channels guide), only the script's src pointing at baton: the
// `new CookieProvider(...)` instance with `loadCookie()` / `saveCookie()` on "WebChat.started", and
// the `initCookieProviderExtension(...)` widget extension. Genesys's widget itself is replaced by a
// minimal fake CXBus (`/widgets/cxbus.min.js`) that calls extensions with `($, CXBus, Common)`,
// supports `registerPlugin(name).subscribe/publish`, and whose chat writes its session cookie
// through the sample's `getSessionData` and reads it back through `setSessionData`.
//
// In both cookie modes: a chat started on shop is restored on support after the customer clicks a
// plain link (blocked: the library decorates the link with a handoff token; allowed: the
// unpartitioned cookie, with the token redundant). Plus cookieTest, a page that calls loadCookie()
// from <head>, a proactive chat started while the page's first loadCookie() is still in flight
// (its cookie must survive loadCookie's stale-cookie cleanup). How long loadCookie() takes is
// measured by bench/browser.mjs, not here.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { partitionSite, startBrowser, startWorld, until, withBrowser as harnessWithBrowser, PART_COOKIE, PLAIN_COOKIE } from "./harness.mjs";

const NAME = "customer-defined-session-cookie";
let world;

/** The stand-in for Genesys's cxbus.min.js + widgets-core + WebChat. */
const FAKE_CXBUS = `(() => {
  const subscribers = {};
  const bus = {
    subscriptions: [], // "plugin: event", for the tests
    published: [], // [event, data]
    registerPlugin(name) {
      return {
        subscribe(event, fn) {
          bus.subscriptions.push(name + ": " + event);
          (subscribers[event] = subscribers[event] || []).push(fn);
          return event;
        },
        publish(event, data) {
          const full = name + "." + event;
          bus.published.push([full, data]);
          (subscribers[full] || []).slice().forEach((fn) => fn({ event: full, data }));
        },
      };
    },
    configure: async (options) => void (bus.options = options),
    command: async (command) => {
      if (command !== "WebChat.open") return;
      // The widget's session storage, as Genesys hands it to the transport's async callbacks.
      const transport = window._genesys.widgets.webchat.transport.async;
      const existing = transport.setSessionData(true, Cookie, CookieOptions);
      if (existing) return webchat.publish("restored", JSON.parse(existing));
      const session = { chatId: "chat-" + Math.random().toString(16).slice(2), alias: "cx 1" };
      transport.getSessionData(JSON.stringify(session), Cookie, CookieOptions);
      webchat.publish("started", session);
    },
    loadPlugin: async (plugin) => {
      if (plugin !== "widgets-core") return;
      const widgets = window._genesys.widgets;
      widgets.bus = bus;
      for (const extension of Object.values(widgets.extensions || {})) extension($, bus, Common);
      // Genesys restores an ongoing chat when the widget loads: what would it find right now?
      window.sessionAtWidgetLoad = widgets.webchat.transport.async.setSessionData(false, Cookie, CookieOptions) || null;
      const button = document.createElement("button");
      button.id = "start-chat";
      button.textContent = "Chat with us";
      button.onclick = () => bus.command("WebChat.open");
      document.body.appendChild(button);
    },
  };
  // js-cookie-like, as the widget passes it to getSessionData / setSessionData.
  const Cookie = {
    set: (name, value, o) => (document.cookie = name + "=" + encodeURIComponent(value) + "; path=" + ((o && o.path) || "/")),
    get: (name) => {
      const c = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
      return c ? decodeURIComponent(c.slice(name.length + 1)) : undefined;
    },
  };
  const CookieOptions = { path: "/" };
  const $ = (selector) => document.querySelector(selector); // jQuery stand-in
  const Common = { log: () => {} };
  const webchat = bus.registerPlugin("WebChat");
  bus.Cookie = Cookie; // for the tests
  bus.CookieOptions = CookieOptions;
  window.CXBus = bus;
})();`;

/** The sample's transport config and widget loading, shared by both page forms. */
const genesysConfig = (extensions) => `window._genesys = {
  widgets: {
    webchat: {
      transport: {
        type: "purecloud-v2-sockets",
        dataURL: "https://api.example.invalid",
        endpoint: "https://webchat.example.invalid",
        headers: {
          "x-api-key": "test",
        },
        async: {
          enabled: true,
          getSessionData: function (sessionData, Cookie, CookieOptions) {
            // Note: You don't have to use Cookies. You can, instead, store in a secured location like a database.
            Cookie.set(SESSION_COOKIE_NAME, sessionData, CookieOptions);
          },
          setSessionData: function (Open, Cookie, CookieOptions) {
            // Retrieve from your secured location.
            return Cookie.get(SESSION_COOKIE_NAME);
          },
        },
      },
    },${extensions}
  },
};`;

const notification = `// EXAMPLE of function to show notification for third-party cookies
function showThirdPartyCookieNotification(isEnable) {
  notifications.push(isEnable);
  if (!isEnable) {
    alert("please enable your third-party cookies");
  }
}`;

/** Links to the other site's pages: plain <a href>, nothing of baton in them. */
const links = (partners, other) =>
  ["chat", "chat-ext", "chat-head"].map((p) => `<a id="to-${other}-${p}" href="${partners.url(other, "/" + p)}">${other} ${p}</a>`).join("\n");

function addPages(partners, broker) {
  const script = `${broker.origin}/cookie-provider.min.js`;
  const iframe = JSON.stringify(broker.iframeUrl);
  for (const [site, other] of [["shop", "support"], ["support", "shop"]]) {
    const widgetBaseUrl = JSON.stringify(partners.url(site, "/widgets/"));
    const loadWidget = (subscribe) => `const widgetScriptElement = document.createElement("script");
const widgetBaseUrl = ${widgetBaseUrl};
${subscribe ? "" : "// (extension form: the extension subscribes itself)\n"}widgetScriptElement.setAttribute("src", widgetBaseUrl + "cxbus.min.js");
widgetScriptElement.addEventListener("load", async function () {
  await CXBus.configure({
    debug: true,
    pluginsPath: widgetBaseUrl + "plugins/",
  });
  await CXBus.loadPlugin("widgets-core");${
    subscribe
      ? `
  // set cookie to iframe when chat started
  var cookieProviderPlugin = window._genesys.widgets.bus.registerPlugin("CookieProvider");
  cookieProviderPlugin.subscribe("WebChat.started", function (e) {
    //save cookie
    cookieProvider.saveCookie();
  });`
      : ""
  }
});
document.head.appendChild(widgetScriptElement);`;
    const page = (title, body) => `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8" />
<title>${site}: ${title}</title>
<script src="${script}"></script>
</head>
<body>
<h1>${site}: ${title}</h1>
${links(partners, other)}
<script>
window.cookieAtStart = document.cookie;
window.notifications = [];
${body}
</script>
</body>
</html>`;

    partners.page(site, "/widgets/cxbus.min.js", FAKE_CXBUS);

    // "Create an Instance of Cookie Provider" + "Complete Chat Initialization Sample".
    partners.page(
      site,
      "/chat",
      page(
        "instance",
        `const IFRAME_URL = ${iframe};
const SESSION_COOKIE_NAME = "${NAME}";
${notification}
if (!window._genesys) window._genesys = {};
${genesysConfig("")}
// provide your own SESSION_COOKIE_NAME (example 'customer-defined-session-cookie')  and IFRAME_URL
// showThirdPartyCookieNotification is an optional parameter to show message if third party cookies are disabled
let cookieProvider = new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL, showThirdPartyCookieNotification);
//load cookie
cookieProvider.loadCookie();
// chat initializing
${loadWidget(true)}`,
      ),
    );

    // "Add Cookie Provider Extension in Widget".
    partners.page(
      site,
      "/chat-ext",
      page(
        "extension",
        `// add it in you init configuration
if (!window._genesys) window._genesys = {};
// EXAMPLE of options value
const IFRAME_URL = ${iframe};
const SESSION_COOKIE_NAME = "${NAME}";
${notification}
${genesysConfig(`
    extensions: {
      CookieProviderExtension: initCookieProviderExtension(SESSION_COOKIE_NAME, IFRAME_URL, showThirdPartyCookieNotification),
    },`)}
${loadWidget(false)}`,
      ),
    );

    // Everything in <head>: the provider and loadCookie() run before document.body exists.
    partners.page(
      site,
      "/chat-head",
      `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8" />
<title>${site}: head</title>
<script src="${script}"></script>
<script>
const IFRAME_URL = ${iframe};
const SESSION_COOKIE_NAME = "${NAME}";
window.cookieAtStart = document.cookie;
window.bodyAtLoadCookie = document.body;
let cookieProvider = new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL);
window.loaded = cookieProvider.loadCookie().then(
  (value) => ({ value, cookie: document.cookie }),
  (e) => ({ error: e.code || String(e) }),
);
</script>
</head>
<body>
<h1>${site}: head</h1>
${links(partners, other)}
</body>
</html>`,
    );

    // A proactive chat: the widget (loaded synchronously here) opens the chat in the same task
    // as the sample's un-awaited loadCookie(), so WebChat.started (saveCookie) overlaps it.
    partners.page(
      site,
      "/chat-proactive",
      `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8" />
<title>${site}: proactive</title>
<script src="${script}"></script>
<script src=${widgetBaseUrl.replace(/"$/, 'cxbus.min.js"')}></script>
</head>
<body>
<script>
const IFRAME_URL = ${iframe};
const SESSION_COOKIE_NAME = "${NAME}";
if (!window._genesys) window._genesys = {};
${genesysConfig("")}
let cookieProvider = new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL);
//load cookie
window.firstLoad = cookieProvider.loadCookie();
// chat initializing
CXBus.loadPlugin("widgets-core");
window._genesys.widgets.bus.registerPlugin("CookieProvider").subscribe("WebChat.started", function (e) {
  window.saved = cookieProvider.saveCookie();
});
CXBus.command("WebChat.open");
</script>
</body>
</html>`,
    );
  }
}

before(async () => {
  world = await startWorld();
  addPages(world.partners, world.broker);
});
after(async () => world?.stop());

/** Runs `fn(b, dialogs)` in a fresh profile; `dialogs` collects every alert() message (dismissed). */
function withBrowser(mode, fn) {
  return harnessWithBrowser(world, mode, (b) => {
    const dialogs = [];
    b.context.on("page", (p) => p.on("dialog", (d) => (dialogs.push(d.message()), d.dismiss().catch(() => {}))));
    return fn(b, dialogs);
  });
}

/** Opens `url` in a new tab and waits for the fake widget to be loaded (its start button). */
async function openChat(b, url) {
  const page = await b.newPage();
  await page.goto(url);
  await page.waitForSelector("#start-chat");
  return page;
}

/** The page's raw `customer-defined-session-cookie`, or null. */
const rawCookie = (page) =>
  page.evaluate((name) => {
    const c = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return c ? c.slice(name.length + 1) : null;
  }, NAME);

/** Waits until `page`, a cross-site navigation away, is on `site` and loaded. */
async function arrived(page, site) {
  await page.waitForURL((u) => u.host.startsWith(`${site}.localhost:`));
  await page.waitForLoadState("load");
}

/**
 * Starts a chat on the shop page: the widget writes its cookie and publishes WebChat.started, and
 * the page (or the extension) saves it to the broker. Returns the raw cookie value.
 */
async function startChat(shop) {
  assert.equal(await rawCookie(shop), null, "no chat yet");
  await shop.click("#start-chat");
  const raw = await rawCookie(shop);
  assert.match(raw ?? "", /^%7B%22chatId%22%3A%22chat-[0-9a-f]+%22/, "the widget wrote its session cookie");
  assert.deepEqual(await shop.evaluate(() => CXBus.published.map(([e]) => e).filter((e) => e.startsWith("WebChat."))), ["WebChat.started"]);
  // saveCookie() is fire-and-forget in the sample: wait until the broker has it.
  await until(async () => (await shop.evaluate(() => Baton.connect(IFRAME_URL).get(SESSION_COOKIE_NAME))) === raw, "the broker to hold the chat cookie");
  return raw;
}

for (const mode of ["blocked", "allowed"]) {
  test(`Genesys instance sample (3PC ${mode}): a chat started on shop is restored on support after a plain link click`, (t) =>
    withBrowser(mode, async (b, dialogs) => {
      const { partners } = world;
      const shop = await openChat(b, partners.url("shop", "/chat"));
      assert.deepEqual(await shop.evaluate(() => CXBus.subscriptions), ["CookieProvider: WebChat.started"]);
      assert.equal(await shop.evaluate(() => cookieProvider.loadCookie()), null, "nothing to load before the chat");

      // cookieTest: with a callback, and without (the constructor's showThirdPartyCookieNotification).
      assert.equal(await shop.evaluate(() => new Promise((resolve) => cookieProvider.cookieTest(resolve))), true, "callback given to cookieTest");
      assert.deepEqual(await shop.evaluate(() => notifications), [], "the constructor's callback was not used for cookieTest(cb)");
      assert.equal(await shop.evaluate(() => cookieProvider.cookieTest()), true);
      assert.deepEqual(await shop.evaluate(() => notifications), [true], "cookieTest() calls the constructor's callback");

      const raw = await startChat(shop);
      const { chatId } = JSON.parse(decodeURIComponent(raw));

      await shop.click("#to-support-chat");
      await arrived(shop, "support");
      assert.equal(shop.url(), partners.url("support", "/chat"), "no token left in the address bar");
      assert.ok(!(await shop.evaluate(() => cookieAtStart)).includes(NAME), "support's own cookie jar had no chat");
      assert.equal(await shop.evaluate(() => cookieProvider.loadCookie()), raw);
      assert.ok((await shop.evaluate(() => document.cookie)).split("; ").includes(`${NAME}=${raw}`), await shop.evaluate(() => document.cookie));
      // What the widget restores from: the sample's setSessionData.
      assert.equal(await shop.evaluate(() => _genesys.widgets.webchat.transport.async.setSessionData(false, CXBus.Cookie, CXBus.CookieOptions)), decodeURIComponent(raw));
      await shop.waitForSelector("#start-chat");
      await shop.click("#start-chat");
      assert.deepEqual(await shop.evaluate(() => CXBus.published.filter(([e]) => e.startsWith("WebChat."))), [["WebChat.restored", { chatId, alias: "cx 1" }]], "the chat is restored, not a new one started");
      // Informational: the sample starts the widget without waiting for loadCookie().
      t.diagnostic(`support (${mode}): chat cookie already there when widgets-core loaded: ${(await shop.evaluate(() => sessionAtWidgetLoad)) !== null}`);

      if (mode === "allowed") {
        // No token needed: a direct visit to support in a new tab finds the chat too.
        const direct = await openChat(b, partners.url("support", "/chat"));
        assert.equal(await direct.evaluate(() => cookieProvider.loadCookie()), raw);
        const plain = (await b.cookies()).find((c) => c.domain === "broker.localhost" && c.name === PLAIN_COOKIE);
        assert.ok(plain && partitionSite(plain) === undefined, "the unpartitioned cookie carries it");
      } else {
        const sites = (await b.cookies()).filter((c) => c.name === PART_COOKIE).map(partitionSite).sort();
        assert.deepEqual(sites, ["http://shop.localhost", "http://support.localhost"], "support got its own partitioned cookie from the handoff");
      }
      assert.deepEqual(dialogs, [], "no third-party cookie alert");
    }));

  test(`Genesys extension sample (3PC ${mode}): initCookieProviderExtension via CXBus, chat restored on support after a plain link click`, () =>
    withBrowser(mode, async (b, dialogs) => {
      const { partners } = world;
      const shop = await openChat(b, partners.url("shop", "/chat-ext"));
      assert.deepEqual((await shop.evaluate(() => CXBus.subscriptions)).sort(), ["CookieProvider: WebChat.ended", "CookieProvider: WebChat.started"]);
      // The extension runs cookieTest with the callback it was given.
      await shop.waitForFunction(() => notifications.length > 0, null, { timeout: 5000 });
      assert.deepEqual(await shop.evaluate(() => notifications), [true]);
      await shop.waitForFunction(() => CXBus.published.some(([e]) => e === "CookieProvider.loaded"), null, { timeout: 5000 });
      assert.deepEqual(await shop.evaluate(() => CXBus.published), [["CookieProvider.loaded", null]], "nothing to load before the chat");

      const raw = await startChat(shop);
      await shop.click("#to-support-chat-ext");
      await arrived(shop, "support");
      assert.equal(shop.url(), partners.url("support", "/chat-ext"));
      assert.ok(!(await shop.evaluate(() => cookieAtStart)).includes(NAME));
      // The extension's loadCookie() puts the chat cookie back on support, and says so on the bus.
      await shop.waitForFunction((c) => document.cookie.split("; ").includes(c), `${NAME}=${raw}`, { timeout: 5000 });
      await shop.waitForFunction(() => CXBus.published.some(([e]) => e === "CookieProvider.loaded"), null, { timeout: 5000 });
      assert.deepEqual(await shop.evaluate(() => CXBus.published.filter(([e]) => e === "CookieProvider.loaded")), [["CookieProvider.loaded", raw]]);
      await shop.waitForSelector("#start-chat");
      await shop.click("#start-chat");
      assert.deepEqual(await shop.evaluate(() => CXBus.published.filter(([e]) => e.startsWith("WebChat.")).map(([e]) => e)), ["WebChat.restored"]);
      await shop.waitForFunction(() => notifications.length > 0, null, { timeout: 5000 });
      assert.deepEqual(await shop.evaluate(() => notifications), [true]);
      assert.deepEqual(dialogs, [], "no third-party cookie alert");
    }));

  test(`Genesys sample in <head> (3PC ${mode}): loadCookie() before document.body exists restores the chat`, () =>
    withBrowser(mode, async (b) => {
      const { partners } = world;
      const shop = await openChat(b, partners.url("shop", "/chat"));
      const raw = await startChat(shop);
      await shop.click("#to-support-chat-head");
      await arrived(shop, "support");
      assert.equal(shop.url(), partners.url("support", "/chat-head"));
      assert.equal(await shop.evaluate(() => bodyAtLoadCookie), null, "the provider was created before <body>");
      const loaded = await shop.evaluate(() => loaded);
      assert.equal(loaded.value, raw, JSON.stringify(loaded));
      assert.ok(loaded.cookie.split("; ").includes(`${NAME}=${raw}`), JSON.stringify(loaded));
      assert.equal(await shop.evaluate((o) => document.querySelectorAll(`iframe[src^="${o}"]`).length, world.broker.origin), 1, "one broker iframe, in <body>");
      // A fresh head page on shop too (no arrival token).
      const again = await b.newPage();
      await again.goto(partners.url("shop", "/chat-head"));
      assert.equal((await again.evaluate(() => loaded)).value, raw);
    }));
}

for (const mode of ["blocked", "allowed"]) {
  test(`Genesys sample, proactive chat (3PC ${mode}): a chat cookie written while the first loadCookie() is in flight is kept`, () =>
    withBrowser(mode, async (b) => {
      const { partners } = world;
      // The interleaving is timing-dependent (the broker may answer loadCookie's read before or
      // after saveCookie's write): several fresh page loads, each with no session to begin with.
      const outcomes = [];
      for (let i = 0; i < 8; i++) {
        const page = await b.newPage();
        await page.goto(partners.url("shop", "/chat-proactive"));
        const r = await page.evaluate(async () => {
          const started = CXBus.published.find(([e]) => e === "WebChat.started");
          const [loaded, saved] = await Promise.all([window.firstLoad, window.saved]);
          const raw = document.cookie.split("; ").find((c) => c.startsWith(SESSION_COOKIE_NAME + "="));
          return { started: !!started, loaded, saved, cookie: raw ? raw.slice(SESSION_COOKIE_NAME.length + 1) : null, broker: await Baton.connect(IFRAME_URL).get(SESSION_COOKIE_NAME) };
        });
        outcomes.push(r);
        // Start the next round with no session (end() also ends it in the broker).
        await page.evaluate(() => Baton.connect(IFRAME_URL).end());
        await page.evaluate(() => (document.cookie = SESSION_COOKIE_NAME + "=; max-age=0; path=/"));
        await page.close();
      }
      for (const r of outcomes) {
        assert.ok(r.started && r.saved, JSON.stringify(outcomes));
        assert.equal(r.broker, r.saved, `the broker holds the new chat: ${JSON.stringify(outcomes)}`);
        assert.equal(r.cookie, r.saved, `loadCookie() must not delete a chat cookie written after it was called: ${JSON.stringify(outcomes, null, 1)}`);
      }
    }));
}

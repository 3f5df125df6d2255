/**
 * baton cookie-provider.js: the partner-side library.
 *
 * Adds the broker's hidden iframe to the page and talks to it with postMessage (docs/PROTOCOL.md).
 * Two APIs over one iframe per iframe URL:
 * - Genesys-compatible: `new CookieProvider(NAME, IFRAME_URL, cb)`, `initCookieProviderExtension`;
 * - promise-based: `Baton.connect(IFRAME_URL, {timeout})`.
 * Where third-party cookies are blocked, the session crosses sites in a single-use token that
 * this script adds to the fragment of links to other trusted sites (`#baton=TOKEN`) and redeems on
 * arrival. A page of a logged-in customer carries the partner's identity assertion in
 * `<meta name="baton-identity">`, which joins this browser to that customer's session (issue 19).
 *
 * One source, an ES module importing the shared rules, two forms (scripts/build-js.mjs bundles
 * and wraps this file): `cookie-provider.js`, a classic script that defines the globals
 * `CookieProvider`, `initCookieProviderExtension` and `Baton` (what Genesys pages load), and
 * `baton.mjs`, an ES module exporting `CookieProvider`, `initCookieProviderExtension`, `connect`
 * and `BatonError`.
 *
 * Size matters (2,298 bytes gzipped, within its 2,304 budget): short local names are mangled by
 * terser, string literals and duplicated logic are not, so keep both rare; whatever needs no page
 * (the link filter's rules, redeeming, presenting) is done in the iframe. A helper used once is
 * written out where it is used: terser inlines it as a function called on the spot, which costs.
 */
const w = window;
const d = document;
const l = location;
/** `u` made absolute against the document's base URL, as the browser resolves a link or `window.open`. */
const abs = (u) => new URL(u, d.baseURI).href;
/** Listens on `window`, in the capture phase when `c`. */
const on = (type, fn, c) => w.addEventListener(type, fn, c);
const PARAM = "baton=";
const TIMEOUT = 5000;
/**
 * Longest a click waits for a handoff token not minted before it, then navigates without one. Under
 * WebKit's popup allowance (a window opened more than ~1 s after the click is blocked) and short
 * enough that a customer does not click twice; most tokens are minted before the click anyway.
 */
const HANDOFF_WAIT = 600;
/** How long a token minted before the click is used: well under the broker's `handoff.ttl_secs`
 * (60 s by default), so that it is still valid when it arrives. */
const KEEP = 20000;
/** How long a link or form keeps its decorated URL after the click, for a page's own handler that
 * navigates to it a little later (a tracking link); then the URL is what the page wrote again. */
const KEEP_HREF = 2000;

/** An error with a machine-readable `code`: `timeout`, `iframe_error`, `bad_request` or the broker's. */
class BatonError extends Error {
  /**
   * @param {string} code
   * @param {string} [message]
   */
  constructor(code, message) {
    super(message || code);
    this.name = "BatonError";
    this.code = code;
  }
}

// Arrival from a handoff: take the token out of the address bar at once (it must not be
// bookmarked, shared or left in history) and keep any other fragment part. An empty `#baton=`
// carries nothing, and stays.
/** @type {string | undefined} the token to redeem, by the first channel's iframe */
let token;
const hash = l.hash.replace(/([#&])baton=([^&]*)(&|$)/, (_, a, t, b) => ((token = t), b && a));
if (token)
  try {
    history.replaceState(history.state, "", l.href.split("#")[0] + hash);
  } catch {}

// Where the browser lets the broker keep no cookie at all, the broker hands this page a key
// for its own origin, kept here in the page's first-party storage (per broker origin) and sent
// with every request. A browser that refuses localStorage leaves it in this page's memory.
/** @type {Record<string, string>} page keys by broker origin */
let keys = {};
/** Whether `keys` outlives this page. */
let kept;
try {
  keys = w.localStorage;
  // Set only when the write does not throw: a storage that refuses writes keeps no key.
  kept = keys[PARAM] = 1;
  delete keys[PARAM];
} catch {}

// The partner's identity assertion for this page view (docs/identity.md), from its
// `<meta name="baton-identity" content="...">` (looked up by name: fewer bytes than a selector).
// The first iframe (the broker the page's first client names, whose public origin is the
// assertion's `aud`) presents it once, when it is ready; no other broker sees it.
/** @type {string | undefined} */
const assertion = d.getElementsByName("baton-identity")[0]?.content;

/**
 * Tells the page: a `baton:TYPE` event on `window`, which `connect(...).on(TYPE)` listens to, and
 * pages of the Genesys API, which has no events of its own, can too.
 * @param {"change" | "conflict"} type
 */
const tell = (type) => w.dispatchEvent(new Event("baton:" + type));

// A page back from the back/forward cache shows the session as it was when it was left: it is
// told of a change, so that it re-reads the session and a chat ended meanwhile goes at once.
on("pageshow", (e) => e.persisted && tell("change"));

/** Does nothing: for promises whose failure is already handled. */
const quiet = () => {};

const decorate = (url, t) => (t ? url + (url.includes("#") ? "&" : "#") + PARAM + t : url);

/** @type {Record<string, Channel>} one per iframe URL */
const channels = {};
/** The channel that decorates link clicks: the first one created. */
let linker;

/**
 * @typedef {object} Channel
 * @property {(op: string, args: object, timeout: number) => Promise<any>} send
 * @property {Promise<void>} ready
 * @property {RegExp} trusted whether a token may go with an absolute URL at all (`trusted.test(href)`):
 *   its origin looks trusted and is another site's or, for a redirect link of this site
 *   (`/go?to=https%3A%2F%2F...`), this page's naming another URL. Only a filter, so that not every
 *   link costs a request: the broker decides from the whole URL (its origins all trusted, the last
 *   one named, where a redirect chain ends, not this page's; see docs/PROTOCOL.md) and refuses the
 *   rest. The iframe builds it from the trusted patterns and this page's origin, and sends it with
 *   the handshake's answer: the rules cost the iframe's bytes, not the page's.
 * @property {Record<string, {e: number, t?: string | null, p: Promise<string | null>}>} m tokens minted
 *   before the click, by destination origin: expiry, token (null: no session; undefined: not yet)
 */

/** `p`, or a rejection with `BatonError(code)` if it takes longer than `ms`. */
const race = (p, ms, code = "timeout") =>
  Promise.race([p, new Promise((_, reject) => setTimeout(reject, ms, new BatonError(code)))]);

/**
 * The shared iframe for `url`: one the page wrote itself with that very `src` (the fast embed: its
 * load starts with the page's, not after this script's), or one created on first use.
 * @param {string} url
 * @returns {Channel}
 */
const channel = (url) => {
  url = abs(url);
  if (channels[url]) return channels[url];
  const origin = new URL(url).origin;
  // The resolved `src`, not the attribute's text: `iframe.html` relative or absolute alike.
  const frame = [...d.getElementsByTagName("iframe")].find((f) => f.src === url) || d.createElement("iframe");
  // Not rendered, so not in the accessibility tree either: it needs no title. A frame the page
  // wrote is hidden too, should its markup have forgotten to.
  frame.style.display = "none";
  // A frame the page wrote keeps its `src`: set again, it would load again. One made here goes
  // into the root element at once, not waiting for <body> when the script runs in <head>: the
  // iframe starts loading as early as it can, and a hidden frame needs no place in the body. Its
  // `load` cannot come before the listener below is there: it is an event of a later task.
  frame.src || ((frame.src = url), d.documentElement.append(frame));
  /**
   * Posts one request with a port of its own, whose other end only the iframe holds: the answer
   * can come from nowhere else (a frame of another site on this page can post to `window`, not
   * there). The iframe tells the page of events on the port of the request it answered last: a
   * conflict (a handoff or the page's identity met another session with values in this browser:
   * the broker's 409), before the answer, or a change (another tab of this site changed the
   * session), later.
   */
  const post = (op, args) =>
    new Promise((resolve, reject) => {
      const c = new MessageChannel();
      c.port1.onmessage = ({ data: m }) => {
        if (m.event) return tell(m.event);
        // A page key issued (or dropped) by the broker: kept before the caller hears of it, so
        // that its next request carries it.
        try {
          if (m.pk) keys[origin] = m.pk;
          else if (m.pk === "") delete keys[origin];
        } catch {}
        m.error ? reject(new BatonError(m.error, m.message)) : resolve(m.result);
      };
      frame.contentWindow.postMessage({ baton: 1, op, pk: keys[origin], ...args }, origin, [c.port2]);
    });

  /**
   * Resolves when requests may go: the iframe answered the handshake. It carries the token this
   * page arrived with and, for the first channel only, the page's identity: the iframe redeems and
   * presents them before it answers, so that every later request sees the session they lead to.
   * Said at once to a frame whose document has come (a frame the page wrote may have loaded
   * already, and fires no `load` again), and at every `load` (one that reloads has lost what it
   * heard). Not at once while the frame still shows its initial about:blank, which this page can
   * read (`contentDocument`; the broker's document it cannot): a message for the broker's origin
   * would be dropped there, and Firefox reports each such drop as a console error. The first
   * answer counts; a frame whose document had come but not yet loaded may hear both, and the
   * iframe does the handshake's work once per document. `onload`: the page's own frame is the
   * library's to listen to (a handler of its own on it is replaced).
   */
  const args = linker ? {} : { token, assertion };
  const ready = new Promise((resolve, reject) => {
    const hello = () => post("trusted", args).then(resolve, reject);
    frame.contentDocument || hello();
    // A frame that failed to load (refused connection, CSP frame-ancestors, no script) still
    // fires `load`, with an error page that never answers: the first request finds out fast,
    // unless the answer waits on the broker too.
    frame.onload = () => race(hello(), args.token || args.assertion ? TIMEOUT : 2000, "iframe_error").catch(reject);
  }).then((filter) => (ch.trusted = filter));
  ready.catch(quiet);

  /** @type {Channel} */
  const ch = {
    // Matches nothing until the handshake brings the filter.
    trusted: /$^/,
    m: {},
    ready,
    // `set`, `end`, `delete`, `identify` and `forget` change the session too (the ops that
    // start with s, e, d, i or f).
    send: (op, args, timeout) => ("sedif".includes(op[0]) && (ch.m = {}), race(ready.then(() => post(op, args)), timeout)),
  };

  // Another tab changed the session: tokens minted for the old one go.
  on("baton:change", () => (ch.m = {}));

  if (!linker) intercept((linker = ch));
  return (channels[url] = ch);
};

/**
 * The token for following `u`, minted now unless one is on the way or kept (not expired). Kept by
 * the whole URL, which is what the broker judges: a redirect link and a plain link to where it
 * leads get a token each. Single use: taken out when `take`.
 * @param {Channel} ch
 * @param {string} u absolute
 * @param {unknown} [take]
 * @param {number} [timeout]
 */
const mint = (ch, u, take, timeout = TIMEOUT) => {
  let m = ch.m[u];
  // `m` changes no more once set here: the promise's callback may write to it.
  if (!(m?.e > Date.now())) (m = ch.m[u] = /** @type {any} */ ({ e: Date.now() + KEEP })).p = ch.send("handoff", { url: u }, timeout).then((t) => (m.t = t), quiet);
  if (take) delete ch.m[u];
  return m;
};

/**
 * Carries the session on clicks (and middle clicks) on links, and on form submissions, to the
 * other trusted sites. A token is minted as soon as such a link or form is hovered, focused or
 * pressed (a key press needs focus first, a touch fires pointerdown); ready at the click, it goes
 * into the URL the browser is about to follow, and nothing else changes: the browser's own
 * navigation, `target=_blank`, modifier keys, the page's handlers and WebKit's popup allowance
 * stay as they were. Not ready, the navigation waits for it, at most `HANDOFF_WAIT`. Links inside
 * open shadow roots are found in the event's composed path. `data-baton="off"` on a link, a form
 * or any ancestor turns this off (a redirector whose destination the URL does not name). Only one
 * channel does this for the page, or one click would fetch a token per channel.
 * @param {Channel} ch
 */
const intercept = (ch) => {
  /** Puts `u` with token `t` into attribute `a` of `el`, for `KEEP_HREF`. */
  const put = ([el, a, u], t) => {
    // The value as the page wrote it, taken before it changes: setTimeout's own argument.
    setTimeout((v) => el.setAttribute(a, v), KEEP_HREF, el.getAttribute(a));
    el.setAttribute(a, decorate(u, t));
  };
  /**
   * The link, form or button with its own `formaction` event `e` is about (`s`: the submitter),
   * the attribute with its URL, and that URL absolute; or undefined.
   * @returns {[Element, string, string] | undefined}
   */
  const of = (e, s) => {
    const t = s || e.composedPath()[0];
    const el = t.closest && (t.closest("a[href],area[href],[formaction]") || t.form || t);
    const a = el && ["href", "formaction", "action"].find((x) => el.hasAttribute(x));
    const u = a && !e.defaultPrevented && !el.closest("[data-baton=off],[download]") && abs(el.getAttribute(a));
    return u && ch.trusted.test(u) && [el, a, u];
  };
  /** With the token ready, decorates at once; else holds the navigation back and `nav`s later. */
  const go = (e, x, nav) => {
    const m = mint(ch, x[2], 1);
    if (m.t !== undefined) return m.t && put(x, m.t);
    e.preventDefault();
    race(m.p, HANDOFF_WAIT)
      .catch(quiet)
      .then((t) => nav(x, t));
  };
  // (`x`: the listener's second parameter, which no event passes, so computed.)
  const early = (e, x = of(e)) => x && mint(ch, x[2]);
  ["pointerover", "focusin", "pointerdown"].forEach((t) => on(t, early, 1));
  const click = (e, x = of(e)) => {
    if (e.button > 1 || e.altKey || !x || x[1] !== "href") return;
    const blank = e.button || e.ctrlKey || e.metaKey || e.shiftKey || x[0].target === "_blank";
    go(e, x, ([el, , u], t) => {
      w.open(decorate(u, t), blank ? "_blank" : el.target || "_self", blank ? "noopener" : "");
    });
  };
  on("click", click, 1);
  on("auxclick", click, 1);
  /** Set while a form held back here is submitted again. */
  let again;
  on(
    "submit",
    (e) => {
      const x = !again && of(e, e.submitter);
      x &&
        go(e, x, (x, t) => {
          if (t) put(x, t);
          again = 1;
          (x[0].form || x[0]).requestSubmit(e.submitter);
          again = 0;
        });
    },
    1,
  );
};

/**
 * Connects to the broker iframe at `iframeUrl` (shared with every other client of that URL).
 * @param {string} iframeUrl e.g. `https://broker.example.com/iframe.html`
 * @param {{timeout?: number}} [options] per-request timeout in ms (default 5000)
 */
const connect = (iframeUrl, options) => {
  const ch = channel(iframeUrl);
  const timeout = options?.timeout || TIMEOUT;
  const send = (op, args) => ch.send(op, args, timeout);
  return {
    ready: ch.ready,
    /** @param {string} key @returns {Promise<string | null>} */
    get: (key) => send("get", { key }),
    /** @param {string} key @param {string} value @returns {Promise<null>} */
    set: (key, value) => send("set", { key, value }),
    /** @param {string} key @returns {Promise<null>} */
    delete: (key) => send("delete", { key }),
    /** Ends the session everywhere. @returns {Promise<null>} */
    end: () => send("end"),
    /** Joins the session of the customer `assertion` names (docs/identity.md). @param {string} assertion @returns {Promise<null>} */
    identify: (assertion) => send("identify", { assertion }),
    /** Detaches this browser, on every site, from the session it reaches. @returns {Promise<null>} */
    forget: () => send("forget"),
    /** @returns {Promise<"unpartitioned" | "partitioned" | "page" | "none">} "page" needs storage that outlives the page */
    mode: () => send("mode", { kept }),
    /** @param {string} url @returns {Promise<string>} */
    handoffUrl: (url) => mint(ch, (url = abs(url)), 1, timeout).p.then((t) => decorate(url, t)),
    /**
     * Opens `url` in a new window at once, within the click that calls it (popup blockers allow
     * it), carrying the session: with the token minted when a link to it was hovered, or into a
     * blank window that navigates when the token comes (`opener` cut).
     * @param {string} url
     * @param {string} [target]
     * @returns {Window | null}
     */
    open: (url, target) => {
      url = abs(url);
      const m = ch.trusted.test(url) && mint(ch, url, 1);
      // (`false.t` is undefined: no token.)
      if (!m || m.t !== undefined) return w.open(decorate(url, m.t), target);
      const win = w.open("", target);
      if (win) {
        win.opener = null;
        m.p.then((t) => (win.location.href = decorate(url, t)));
      }
      return win;
    },
    /**
     * @param {"change" | "conflict"} type
     * @param {() => void} fn "change": another tab of this site changed the session, or the page
     *   came back from the back/forward cache; "conflict": a handoff or identity met another
     *   session with values here, and this page kept its own
     * @returns {() => void} unsubscribes
     */
    on: (type, fn) => (on((type = "baton:" + type), fn), () => w.removeEventListener(type, fn)),
  };
};

/** The page's own first-party cookie `name`, decoded as `writeCookie` wrote it, or null. */
const readCookie = (name) => {
  try {
    // The first cookie of that name, as `find` on the pairs would give.
    const r = ("; " + d.cookie).split("; " + name + "=")[1]?.split(";")[0];
    // Only the quoted form is decoded; a quoted value some other writer made that is not ours to
    // decode (`"100%"`) throws, and reads as no cookie, as before.
    return r && /^"[^"]*"$/.test(r) ? decodeURIComponent(r.slice(1, -1)) : r ?? null;
  } catch {
    return null;
  }
};

// The page's cookie value for a broker value (issue 20). A value made only of RFC 6265 cookie
// octets (printable ASCII but `"`, `,`, `;` and `\`) is written as it is: that is every value the
// Genesys widget (js-cookie) or any valid cookie writer produces, so those pass through byte for
// byte, for readers that decode and readers that do not. Any other value could add attributes
// (`; Domain=...`) or be cut short, so it is written as `"` + encodeURIComponent(value) + `"`: the
// quoted form RFC 6265 allows, which js-cookie's reader unquotes and decodes itself, and which
// no raw value can take (a raw value has no `"`). Reading undoes only that form, so a raw value,
// `%XX` runs included, is never decoded, and an earlier broker value still reads as it was. A
// value with a lone surrogate, which encodeURIComponent refuses, makes loadCookie() reject
// instead of being written.
/**
 * Writes the page's cookie `name` with the only attributes it ever gets: path `/`, SameSite=Lax,
 * Secure over https, and with `v` null an expiry in the past (removed).
 * @param {string} name
 * @param {string | null} v
 */
const writeCookie = (name, v) =>
  (d.cookie =
    name + "=" + (v === null ? ";max-age=0" : /^[!#-+\--:<-[\]-~]*$/.test(v) ? v : '"' + encodeURIComponent(v) + '"') + ";path=/;SameSite=Lax" + (l.protocol === "https:" ? ";Secure" : ""));

/** Genesys-compatible provider: keeps one first-party cookie in step with the broker. */
class CookieProvider {
  /**
   * @param {string} name the session cookie's name, also the broker key
   * @param {string} iframeUrl the broker's iframe URL
   * @param {(enabled: boolean) => void} [showThirdPartyCookieNotification] cookieTest's default callback
   */
  constructor(name, iframeUrl, showThirdPartyCookieNotification) {
    this.name = name;
    this.cb = showThirdPartyCookieNotification;
    this.client = connect(iframeUrl);
  }

  /**
   * Copies the broker's value into the page's cookie. When the broker, able to keep state here,
   * has none (the chat ended on another site), the page's stale cookie goes too, or the ended
   * chat would come back; where the broker keeps nothing (mode "none") the page's cookie stays.
   * @returns {Promise<string | null>}
   */
  async loadCookie() {
    const c = this.client;
    const name = this.name;
    // Only the cookie as it was when loading began is stale: one written meanwhile (a chat that
    // just started, its save still on the way) is newer than the broker's answer.
    const before = readCookie(name);
    const v = await c.get(name);
    if (v !== null) writeCookie(name, v);
    else if ((await c.mode()) !== "none" && before !== null && readCookie(name) === before) writeCookie(name, null);
    return v;
  }

  /**
   * Stores the page's cookie in the broker.
   * @returns {Promise<string | null>} the value stored, or null when the page has no such cookie
   */
  async saveCookie() {
    const v = readCookie(this.name);
    if (v !== null) await this.client.set(this.name, v);
    return v;
  }

  /**
   * Removes the value from the broker (every site) and the page's cookie.
   * @returns {Promise<null>}
   */
  deleteCookie() {
    writeCookie(this.name, null);
    return this.client.delete(this.name);
  }

  /**
   * Detaches this browser from the session on every site (the customer logged out) and removes
   * the page's cookie: the chat is no longer this browser's.
   * @returns {Promise<null>}
   */
  forget() {
    writeCookie(this.name, null);
    return this.client.forget();
  }

  /**
   * Whether the broker can keep state in this browser (mode is not "none").
   * @param {(enabled: boolean) => void} [cb] defaults to the constructor's
   * @returns {Promise<boolean>}
   */
  async cookieTest(cb = this.cb) {
    const ok = await this.client.mode().then((m) => m !== "none", () => false);
    if (typeof cb == "function") cb(ok);
    return ok;
  }
}

/**
 * The Genesys widgets extension: loads the cookie at start, saves it when a chat starts and
 * deletes it everywhere when the chat ends.
 * @param {string} name
 * @param {string} iframeUrl
 * @param {(enabled: boolean) => void} [callback]
 */
const initCookieProviderExtension = (name, iframeUrl, callback) => ($, CXBus) => {
  const plugin = CXBus.registerPlugin("CookieProvider");
  const p = new CookieProvider(name, iframeUrl, callback);
  // Widgets that wait for the restored cookie subscribe to "CookieProvider.loaded". Loaded again
  // when the session changed in another tab or the page came back from the back/forward cache.
  const load = () => p.loadCookie().then((v) => plugin.publish?.("loaded", v), quiet);
  load();
  p.client.on("change", load);
  if (callback) p.cookieTest();
  plugin.subscribe("WebChat.started", () => p.saveCookie().catch(quiet));
  plugin.subscribe("WebChat.ended", () => p.deleteCookie().catch(quiet));
};

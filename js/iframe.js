/**
 * baton broker iframe: the script of `{public_origin}/iframe.html`.
 *
 * Partner pages (through cookie-provider.js) post requests to this frame; it checks the sender's
 * origin against the trusted patterns from the page's `#baton-config` block, calls the broker's
 * `/v1` API with same-origin `fetch` (so the broker's cookies, partitioned by the top-level site,
 * travel with it) and answers on the port the request came with. See docs/PROTOCOL.md.
 *
 * In cookie modes the broker renders the session its cookie reached into this page
 * (`#baton-session`), and the page's first reads are answered from it without a fetch, for as
 * long as it can be right (see `snap`).
 *
 * Size matters (the page plus this script must stay under 2 KiB gzipped): short local names are
 * mangled by terser, but string literals and duplicated logic are not, so keep both rare.
 *
 * An ES module in source (for `import`); scripts/build-js.mjs bundles it into a classic script,
 * in a closure, which the broker puts inline in the iframe page (admitted by its CSP hash).
 */
import { KEY, allowed } from "./shared.js";

const w = window;
const d = document;

// Set at the end of this file, once this frame knows it may answer at all.
/** @type {string[]} the trusted patterns of the page's `#baton-config` block */
let trusted;
/** Whether this browser keeps any broker cookie in this frame. */
let keeps;
/** Whether the page holds the session (page mode). */
let page;
/** @type {Promise<void>} settles once any storage access already granted is in use */
let storageAccess;
/** @type {BroadcastChannel | undefined} tells this site's other tabs */
let channel;
/** @type {MessagePort | undefined} the port of the request this frame last answered: where change
 * events go */
let last;
/**
 * @type {Record<string, string> | 0 | undefined} the session's values as the broker rendered them
 * into this page (cookie modes only), while they can be right: dropped by anything that may have
 * changed the session since (a write of this frame, the handshake's redeem or identity, a change
 * in another tab, a storage-access grant put to use), and used only within SNAP_MS of this page's
 * request. Never when the broker rendered none (no cookie came, no live session).
 */
let snap;
/** @type {Promise<void> | undefined} the handshake's work, once started (`ops.trusted`) */
let shake;
/** How long after this page's request its snapshot may answer a read (ms): the staleness of a
 * page loaded that long ago, for changes no event tells of (another site's tab, another device). */
const SNAP_MS = 5e3;
/** The iframe's `localStorage` key: when a frame of this site last finished a write (ms). */
const WROTE = "baton-w";

/**
 * Calls the broker API for one request of a page. In page mode the call names that page and
 * carries the page key it holds; a key the broker issues, or one it no longer knows, is passed
 * back in the reply (`pk`) for the page to keep or drop. Rejects with `{code, message}` (the
 * broker's error body, or `network`). No session is not an error: 204, and null here.
 * @param {{o: string, k?: string, reply: any, conflict?: number}} r the request: page origin, page
 *   key, reply, and whether the broker answered 409 `session_conflict`
 * @param {string} method
 * @param {string} path below `/v1/`
 * @param {object} [body] sent as JSON
 * @returns {Promise<any>} the JSON answer, or null for 204
 */
const api = async (r, method, path, body) => {
  await storageAccess;
  /** @type {Record<string, string>} */
  const headers = body ? { "Content-Type": "application/json" } : {};
  if (page) {
    headers["Baton-Page-Origin"] = r.o;
    if (r.k) headers["Baton-Page-Key"] = r.k;
  }
  let res;
  try {
    res = await fetch("/v1/" + path, { method, credentials: "same-origin", headers, body: body && JSON.stringify(body) });
  } catch (e) {
    throw { code: "network", message: String(e) };
  }
  // 204: no content, and for a read (GET, or a handoff asked with POST) no session, so a key
  // the page sent is one the broker no longer knows.
  const none = res.status === 204;
  const json = none ? null : await res.json().catch(() => null);
  const j = json || {};
  // A key issued or dropped is the one the request's next call carries (the handshake's identify
  // after its redeem).
  if (j.page_key) r.reply.pk = r.k = j.page_key;
  if (none && r.k && method !== "DELETE") r.reply.pk = r.k = "";
  // Another session with values in this browser (a handoff or an identity met it, and the broker
  // changed nothing): the page hears of it as an event, whatever the request's own result.
  if (res.status === 409) r.conflict = 1;
  if (res.ok) return json;
  throw { code: j.error || "http_" + res.status, message: j.message };
};

/** Maps a broker error `code` to a result, or rethrows it. */
const unless = (code, result) => (e) => {
  if (e.code === code) return result;
  throw e;
};

/**
 * Sets and reads back a test cookie, then removes it.
 * @param {string} attrs extra cookie attributes
 */
const sticks = (attrs) => {
  const name = "baton-t" + attrs.length;
  const set = (v) => (d.cookie = name + v + ";Path=/;Secure;SameSite=None" + attrs);
  try {
    set("=1");
    return d.cookie.includes(name + "=1");
  } catch {
    return false; // a browser that refuses document.cookie keeps nothing here
  } finally {
    try {
      set("=;Max-Age=0");
    } catch {}
  }
};

// With a storage-access grant already given for this top-level site (never a prompt: nothing
// here has a user gesture), the unpartitioned cookie works again once access is requested.
const access = async () => {
  try {
    if (
      d.hasStorageAccess &&
      !(await d.hasStorageAccess()) &&
      (await navigator.permissions.query({ name: "storage-access" })).state === "granted"
    )
      // The page's request went without the unpartitioned cookie; the API's will carry it.
      (snap = 0), await d.requestStorageAccess();
  } catch {
    // No access: the partitioned cookie (or nothing) it is.
  }
};

/** Tells this site's other frames: now by the channel, and those still loading by `WROTE`. */
const changed = (result) => {
  channel && channel.postMessage(1);
  try {
    localStorage[WROTE] = Date.now();
  } catch {}
  return result;
};

const any = () => 1;
const str = (v) => typeof v === "string";
const key = (m) => str(m.key) && KEY.test(m.key);
const path = (m) => "session/" + m.key;

/**
 * Where the session lives in this browser: the cookie every site shares (storage access: the
 * one signal that tells it from a silently partitioned one), a cookie per site, the page's key,
 * or nowhere.
 */
const mode = async (m) => {
  await storageAccess;
  const test = "baton-m=1;Path=/;Secure;SameSite=None";
  let shared;
  try {
    // WebKit answers true only while the frame holds a cookie (measured): ask with one set.
    d.cookie = test;
    shared = d.hasStorageAccess ? await d.hasStorageAccess() : d.cookie.includes("baton-m=1");
  } catch {}
  try {
    d.cookie = test + ";Max-Age=0";
  } catch {}
  // Page mode needs the page's key to outlive the page: the library says whether it does.
  return shared ? "unpartitioned" : keeps ? "partitioned" : page && m.kept ? "page" : "none";
};

/**
 * The operations: `[check, run]`. A request failing its check is answered `bad_request`. `run`
 * gets the message and `call(method, path, body)`, the API bound to this request.
 * @type {Record<string, [(m: any) => unknown, (m: any, call: (method: string, path: string, body?: object) => Promise<any>, origin: string) => any]>}
 */
const ops = {
  // `hasOwn`: a key like `toString` must not read the prototype.
  get: [
    key,
    async (m, call) => {
      await storageAccess;
      const r = snap && performance.now() < SNAP_MS ? { values: snap } : await call("GET", "session");
      return r && Object.hasOwn(r.values, m.key) ? r.values[m.key] : null;
    },
  ],
  set: [(m) => key(m) && str(m.value), (m, call) => call("PUT", path(m), { value: m.value }).then(() => changed(null))],
  delete: [key, (m, call) => call("DELETE", path(m)).then(changed)],
  end: [any, (m, call) => call("DELETE", "session").then(changed)],
  mode: [any, mode],
  // The broker reads the whole URL (a redirect link names where it leads) and answers 400
  // `bad_audience` when no token may go with it: for the page, that is no token, like no session.
  handoff: [
    (m) => str(m.url),
    (m, call, origin) =>
      call("POST", "handoff", { url: m.url, origin })
        .then((r) => r && r.token)
        .catch(unless("bad_audience", null)),
  ],
  // An assertion is at most 4096 bytes (the broker's rule, with its own error code); a page
  // posting far more than that gets no fetch of it.
  identify: [
    (m) => str(m.assertion) && m.assertion.length <= 8192,
    (m, call, origin) => call("POST", "identify", { assertion: m.assertion, origin }).then(() => changed(null)),
  ],
  forget: [any, (m, call) => call("POST", "forget").then(() => changed(null))],
  // The load handshake: first the token the page arrived with is redeemed, then the page's
  // identity presented, so that every later request of the page sees the session they lead to.
  // Their failures are not the page's to hear of (a 409 is, as the conflict event); a page key
  // either brings rides on this reply. Then the page's link filter. Done once per document: the
  // library may say hello twice (at once, to a frame the page wrote, and at its `load`), and both
  // may arrive; the second waits for the first's work instead of doing it again (two identifies
  // at once could each create a session).
  trusted: [
    any,
    async (m, call, origin) => {
      await (shake ||= (async () => {
        if (str(m.token)) (snap = 0), await call("POST", "handoff/redeem", { token: m.token, origin }).then(changed, any);
        if (ops.identify[0](m)) (snap = 0), await ops.identify[1](m, call, origin).catch(any);
      })());
      return filter(origin);
    },
  ],
};

/**
 * The link filter for a page of `origin` (cookie-provider.js `dest`), sent with the handshake's
 * answer: a RegExp (postMessage clones it) matching an absolute URL whose origin looks trusted (a
 * pattern's `*` standing for any host characters) and is not the page's, or is the page's own
 * naming another URL after it (a redirect link: `//`, `\`, or `%2F`/`%5C` however often
 * `%25`-encoded). Only a filter, so that not every link costs the page a request: the broker
 * judges the whole URL (src/link.rs) and refuses the rest.
 * @param {string} origin
 */
const filter = (origin) => {
  const esc = (s) => s.replace(/[$()*+.?[\\\]^{|}]/g, "\\$&");
  return RegExp(
    "^(?!" + esc(origin) + "(?=/)(?!.*([/\\\\]{2}|%(25)*(2f|5c))))(" +
      trusted.map((p) => p.split("*").map(esc).join("[^/]*")).join("|") +
      ")/",
    "i",
  );
};

/** Answers one request of a page, if its sender is trusted and the request well formed. */
const answer = async (e) => {
  const m = e.data;
  const origin = e.origin;
  // The page's own end of a channel it made for this request: the answer goes there, so to the
  // page that sent it and to nothing else.
  const port = e.ports[0];
  const op = m && m.baton === 1 && port && allowed(trusted, origin) && Object.hasOwn(ops, m.op) && ops[m.op];
  if (!op) return;
  last = port;
  // Whatever may write (set, delete, end, identify, forget) ends the snapshot, before it starts.
  if (!/^(get|mode|handoff|trusted)$/.test(m.op)) snap = 0;
  /** @type {any} */
  const reply = {};
  const r = { o: origin, k: str(m.pk) && m.pk, reply };
  try {
    // A request from a trusted page with bad arguments (a bad key, a value not a string) is
    // answered `bad_request`, without a broker call: the library leaves that check to this frame.
    if (!op[0](m)) throw Error("bad_request");
    reply.result = await op[1](m, (method, path, body) => api(r, method, path, body), origin);
    // Nothing this browser held reaches the session any more: neither does the page's key.
    if (m.op === "end" || m.op === "forget") reply.pk = "";
  } catch (e) {
    reply.error = e.code || "bad_request";
    reply.message = e.message || String(e);
  }
  if (r.conflict) port.postMessage({ event: "conflict" });
  port.postMessage(reply);
};

// Neither top-level (a phishing page could run it first-party) nor sandboxed (no cookies, and
// every origin check would compare against "null"): then nothing at all happens.
if (w.top !== w && w.origin !== "null") {
  /** @type {{trusted: string[], page: boolean}} */
  const config = JSON.parse(d.getElementById("baton-config").textContent);
  trusted = config.trusted;
  // Whether this browser keeps any broker cookie in this frame (Firefox's Total Cookie Protection
  // silently partitions even the unpartitioned one). Where it keeps none (WebKit's default,
  // Firefox blocking every third-party cookie), the page holds the session: page mode. The
  // partitioned test first: it sticks in every cell where the other does, and where third-party
  // cookies are blocked the unpartitioned one would only be refused (a refused cookie costs
  // Chromium's frame time: bench/README.md, browser.mjs).
  keeps = sticks(";Partitioned") || sticks("");
  page = !keeps && config.page;
  // The session the broker rendered, in cookie modes (page mode reads with the page's key); none
  // rendered, none here.
  try {
    if (keeps) snap = JSON.parse(d.getElementById("baton-session").textContent);
  } catch {}
  storageAccess = access();
  // Firefox refuses BroadcastChannel here when it blocks every third-party cookie: then no other
  // tab is told.
  try {
    channel = new BroadcastChannel("baton");
    channel.onmessage = () => ((snap = 0), last && last.postMessage({ event: "change" }));
  } catch {}
  // A write another frame of this site finished after this page was requested may be missing
  // from the snapshot, and its change event went before the channel above was there to hear it.
  // Both times by the wall clock (`Date.now`, as the writer took it); 50 ms for its coarsening.
  try {
    if (+localStorage[WROTE] > Date.now() - performance.now() - 50) snap = 0;
  } catch {
    snap = 0;
  }
  w.addEventListener("message", answer);
}

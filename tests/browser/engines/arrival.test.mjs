// Every way the partner library carries an anonymous chat to another trusted site (issue 19), in
// the cells where only a handoff token can carry it: Chromium with third-party cookies blocked,
// Firefox default and cookieBehavior 1, WebKitGTK default. One fresh browser per cell; each path
// starts a new chat on shop after ending the previous one everywhere, so support can only have it
// through that path's token. Plus: a trusted site's open redirector never passes a token on to an
// untrusted site, and (Chromium) a partner page under a nonce + 'strict-dynamic' CSP.
//
// The partner server here is its own (not harness.mjs's): it needs redirects, a POST answered
// with 303, response headers, and a log of what each landing page saw in its address bar.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { withCollector } from "./collector.mjs";
import { scheme, startSiteServer, startWorlds, withEngine } from "./index.mjs";

/** @type {[import("./index.mjs").Engine, string][]} */
const ARRIVAL_CELLS = [
  ["chromium", "blocked"],
  ["firefox", "default"],
  ["firefox", "blocked"],
  ["webkit", "default"],
];

const NAME = "customer-defined-session-cookie";
const NONCE = "n0nce4arrival";

/**
 * Partner sites on one port, answering by host: pages, `/go?to=URL` (a 302 with no fragment in
 * Location: an open redirector), `POST /post` (303 to /landing?posted), and `/report?...` where
 * landing pages say what they saw, kept in `reports`.
 * @param {"http" | "https"} s
 */
async function startSites(s) {
  /** @type {Map<string, {html: string, csp?: string}>} */
  const pages = new Map();
  /** @type {{host: string, h: string, v: string, p: string}[]} */
  const reports = [];
  /** @type {string[]} every request line, `host path?query` */
  const requests = [];
  const server = await startSiteServer(s, (req, res, at) => {
    const url = new URL(req.url ?? "/", "http://x");
    requests.push(`${at.host} ${req.url}`);
    if (at.path === "/favicon.ico") return void res.writeHead(204).end() || true;
    if (at.path === "/go") return void res.writeHead(302, { location: url.searchParams.get("to") ?? "/" }).end() || true;
    if (at.path === "/post" && req.method === "POST") {
      req.resume();
      return void res.writeHead(303, { location: "/landing?posted" }).end() || true;
    }
    if (at.path === "/report") {
      reports.push({ host: at.host, h: url.searchParams.get("h") ?? "", v: url.searchParams.get("v") ?? "", p: url.searchParams.get("p") ?? "" });
      return void res.writeHead(204).end() || true;
    }
    const page = pages.get(`${at.host} ${at.path === "/search" ? "/landing" : at.path}`);
    if (!page) return false;
    /** @type {Record<string, string>} */
    const headers = { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" };
    if (page.csp) headers["content-security-policy"] = page.csp;
    // A CSP page gets no collector (its script has no nonce): the CSP test runs in Chromium, whose
    // driver sees errors without it.
    res.writeHead(200, headers).end(page.csp ? page.html : withCollector(page.html));
    return true;
  });
  const { port } = server;
  return {
    port,
    reports,
    requests,
    url: (/** @type {string} */ name, p = "/") => `${s}://${name}.localhost:${port}${p}`,
    origin: (/** @type {string} */ name) => `${s}://${name}.localhost:${port}`,
    page: (/** @type {string} */ name, /** @type {string} */ p, /** @type {string} */ html, /** @type {string} */ csp) => pages.set(`${name}.localhost ${p}`, { html, csp }),
    stop: server.stop,
  };
}

/** @typedef {Awaited<ReturnType<typeof startSites>>} Sites */
/** @typedef {import("./sites.mjs").World<Sites>} World */

/** @param {World} w */
function addPages({ partners: sites, broker }) {
  const lib = (/** @type {string} */ nonce = "") => {
    const n = nonce && ` nonce="${nonce}"`;
    return `<script${n}>window.arrivedHash = location.hash;</script>
<script${n} src="${broker.scriptUrl}"></script>
<script${n}>
  const IFRAME_URL = ${JSON.stringify(broker.iframeUrl)};
  const NAME = ${JSON.stringify(NAME)};
  window.provider = new CookieProvider(NAME, IFRAME_URL);
  window.loaded = provider.loadCookie();
  // What the landing page saw: its hash on arrival and the chat it restored.
  // A report cut short by the page navigating away (Firefox rejects it) is no error of the library.
  const report = (v) => fetch("/report?" + new URLSearchParams({ h: arrivedHash, v, p: location.pathname + location.search })).catch(() => {});
  window.loaded.then((v) => report(v || ""), (e) => report("error " + e.message));
  window.startChat = (id) => {
    document.cookie = NAME + "=" + id + "; path=/";
    return provider.saveCookie();
  };
</script>`;
  };
  const support = (/** @type {string} */ p) => sites.url("support", p);
  sites.page(
    "shop",
    "/",
    `<!doctype html><meta charset="utf-8"><title>shop</title>${lib()}
<script>
  customElements.define("shadow-link", class extends HTMLElement {
    constructor() {
      super();
      this.attachShadow({ mode: "open" }).innerHTML = '<a href="${support("/landing?shadow")}" style="display:block;height:40px">in a shadow root</a>';
    }
  });
</script>
<body><h1>shop</h1>
<shadow-link id="shadow" style="display:block;width:300px;height:40px"></shadow-link>
<form action="${support("/search")}" method="get"><input name="q" value="x"><button id="get">search</button></form>
<form action="${support("/post")}" method="post"><input name="q" value="y"><button id="post">post</button></form>
<a id="named" href="${sites.url("shop", `/go?to=${encodeURIComponent(support("/landing?named"))}`)}">named redirect</a>
<a id="leak" href="${support(`/go?to=${encodeURIComponent(sites.url("evil", "/landing"))}`)}">open redirector to evil</a>
<a id="late" href="${support("/landing?late")}" onclick="event.preventDefault(); setTimeout(() => location.assign(this.href), 150)">tracked link</a>
<a id="blank" href="${support("/landing?blank")}" target="_blank">new window</a>
<a id="to-csp" href="${support("/csp")}">CSP page</a>
</body>`,
  );
  sites.page("support", "/landing", `<!doctype html><meta charset="utf-8"><title>support</title>${lib()}<h1>support</h1>`);
  // What an untrusted page would do with a token: report it.
  sites.page(
    "evil",
    "/landing",
    `<!doctype html><meta charset="utf-8"><title>evil</title>
<script>fetch("/report?" + new URLSearchParams({ h: location.hash, p: location.pathname })).catch(() => {});</script><h1>evil</h1>`,
  );
  // The nonce + 'strict-dynamic' policy of docs/genesys.md: host lists are ignored, the broker's
  // script runs by the nonce, and its iframe by frame-src.
  sites.page(
    "support",
    "/csp",
    `<!doctype html><meta charset="utf-8"><title>support csp</title>
<script nonce="${NONCE}">window.violations = []; addEventListener("securitypolicyviolation", (e) => violations.push(e.effectiveDirective + " " + e.blockedURI));</script>
${lib(NONCE)}<h1>support under CSP</h1><a id="back" href="${sites.url("shop", "/?from-csp")}">back to shop</a>`,
    `script-src 'nonce-${NONCE}' 'strict-dynamic'; frame-src ${broker.origin}; object-src 'none'; base-uri 'none'`,
  );
}

/** @type {import("./sites.mjs").Worlds<Sites>} */
let worlds;
before(async () => (worlds = await startWorlds(addPages, { partners: startSites })));
after(async () => worlds?.stop());

/** The value of counter `name` in the broker's /metrics. */
const counter = async (/** @type {World} */ w, /** @type {string} */ name) => {
  const line = (await w.broker.metrics()).split("\n").find((l) => l.startsWith(name + " "));
  return Number(line?.split(" ")[1] ?? NaN);
};

for (const [engine, mode] of ARRIVAL_CELLS) {
  test(`${engine} ${mode}: an anonymous chat crosses by a shadow-root link, a form GET, a form POST, a named redirect, a hovered tracked link and a hovered target=_blank link; an open redirector to an untrusted site gets no token`, () =>
    withEngine(engine, mode, async (b) => {
      const w = /** @type {World} */ (worlds[scheme(engine)]);
      const { partners: sites } = w;
      const page = await b.open(sites.url("shop", "/"));
      let n = 0;
      /** Ends any chat everywhere and starts a new one on shop; returns its id. */
      const newChat = async () => {
        await page.goto(sites.url("shop", "/"));
        await page.evaluate("window.loaded.then(() => Baton.connect(IFRAME_URL).end())");
        const chat = `chat-${engine}-${mode}-${++n}`;
        await page.evaluate(`startChat(${JSON.stringify(chat)})`);
        return chat;
      };
      /** The report of the landing page whose path and query is `p`, once it came. */
      const report = async (/** @type {string} */ p) => {
        await until(async () => sites.reports.some((r) => r.p === p), `the report of ${p}`);
        return /** @type {Sites["reports"][number]} */ (sites.reports.find((r) => r.p === p));
      };
      /** Waits until the handoffs issued reach `count` (a token minted before the click). */
      const issued = (/** @type {number} */ count) => until(async () => (await counter(w, "baton_handoffs_issued_total")) >= count, "a token minted in advance");

      for (const [what, selector, p] of [
        ["a link in an open shadow root", "#shadow", "/landing?shadow"],
        ["a form GET", "#get", "/search?q=x"],
        ["a form POST answered with 303", "#post", "/landing?posted"],
        ["a link to a redirector that names its trusted destination", "#named", "/landing?named"],
      ]) {
        const chat = await newChat();
        await page.click(selector);
        await page.waitForURL((u) => u.hostname === "support.localhost");
        const r = await report(p);
        assert.match(r.h, /^#baton=[\w.-]+$/, `${what}: the token arrived`);
        assert.equal(r.v, chat, `${what}: the chat crossed`);
        assert.equal(await page.evaluate("location.hash"), "", `${what}: the token left the address bar`);
        sites.reports.length = 0;
      }

      // A trusted site's open redirector to an untrusted site: hovered (focused) and clicked.
      await newChat();
      const redeemed = (await counter(w, "baton_handoffs_redeemed_total")) + (await counter(w, "baton_handoffs_refused_total"));
      await page.evaluate(`document.getElementById("leak").focus()`);
      await page.click("#leak");
      await page.waitForURL((u) => u.hostname === "evil.localhost");
      assert.equal((await report("/landing")).h, "", "no token reached the untrusted page");
      assert.deepEqual(sites.requests.filter((l) => l.startsWith("evil.") && /baton/i.test(l)), [], "no token in any request to the untrusted site");
      assert.equal((await counter(w, "baton_handoffs_redeemed_total")) + (await counter(w, "baton_handoffs_refused_total")), redeemed, "no redeem reached the broker");
      sites.reports.length = 0;

      // Hovered first (focus: a real focus event; the library treats pointerover the same), then a
      // link whose page handler navigates 150 ms after the click, and a target=_blank link.
      for (const [what, selector, p] of [
        ["a link whose own handler navigates 150 ms after the click", "#late", "/landing?late"],
        ["a target=_blank link", "#blank", "/landing?blank"],
      ]) {
        const chat = await newChat();
        const before = await counter(w, "baton_handoffs_issued_total");
        await page.evaluate(`document.querySelector(${JSON.stringify(selector)}).focus()`);
        await issued(before + 1);
        await page.click(selector);
        const r = await report(p);
        assert.match(r.h, /^#baton=[\w.-]+$/, `${what}: the token arrived`);
        assert.equal(r.v, chat, `${what}: the chat crossed`);
        sites.reports.length = 0;
      }
      assert.deepEqual(await page.errors(), [], "no error in the pages or the broker's iframe");
    }));
}

test("chromium blocked: a partner page under a nonce + 'strict-dynamic' CSP restores the chat and carries it on by a link, with no CSP violation", () =>
  withEngine("chromium", "blocked", async (b) => {
    const w = /** @type {World} */ (worlds.http);
    const { partners: sites } = w;
    const page = await b.open(sites.url("shop", "/"));
    await page.evaluate("window.loaded.then(() => Baton.connect(IFRAME_URL).end())");
    await page.evaluate(`startChat("csp-chat")`);
    await page.click("#to-csp");
    await page.waitForURL((u) => u.pathname === "/csp");
    assert.equal(await page.evaluate("window.loaded"), "csp-chat", "restored under the CSP");
    assert.deepEqual(await page.evaluate("window.violations"), [], "no CSP violation");
    await page.evaluate(`startChat("csp-chat-2")`);
    assert.deepEqual(await page.errors(), [], "no console error (CSP reports are console errors in Chromium)");
    await page.click("#back");
    await page.waitForURL((u) => u.hostname === "shop.localhost");
    assert.match(await page.evaluate("window.arrivedHash"), /^#baton=/, "the CSP page's link carried a token");
    assert.equal(await page.evaluate("window.loaded"), "csp-chat-2");
  }));

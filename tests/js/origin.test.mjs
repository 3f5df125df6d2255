// The iframe's origin rule, checked against the cases shared with the Rust tests
// (tests/data/origin-cases.json), and the iframe's message handling around it.
//
// No DOM: the iframe script runs in a `vm` context with the few globals it touches, and is driven
// through its real `message` listener. Both the shipped file (static/iframe.js, what the broker
// serves) and its source (js/iframe.js bundled with the js/shared.js it imports, unminified) are
// tested; scripts/check-js.mjs checks they agree. The rules of js/shared.js (origin and key),
// which the library imports too, are also checked directly against the corpora shared with Rust.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";
import { source } from "../../scripts/build-js.mjs";
import { KEY, allowed } from "../../js/shared.js";

const read = (p) => readFileSync(new URL(`../../${p}`, import.meta.url), "utf8");
const data = JSON.parse(read("tests/data/origin-cases.json"));
const keys = JSON.parse(read("tests/data/keys.json"));
const BROKER = "http://broker.localhost:8080";

/**
 * Runs an iframe script in a fresh context.
 * @param {string} src
 * @param {{trusted?: string[], top?: boolean, origin?: string, page?: boolean, keeps?: boolean, access?: boolean, refuses?: boolean, respond?: (url: string, init: object) => Response}} [opts]
 *   `keeps`: a cookie jar that keeps cookies (default: keeps nothing, as where every third-party
 *   cookie is blocked); `refuses`: document.cookie, BroadcastChannel and navigator.permissions
 *   throw, as some browsers do in a third-party frame.
 */
function boot(src, opts = {}) {
  const refuse = () => {
    throw new Error("SecurityError: The operation is insecure.");
  };
  const listeners = {};
  const fetches = [];
  const posted = [];
  const win = {
    origin: opts.origin ?? BROKER,
    addEventListener: (type, fn) => (listeners[type] = fn),
  };
  win.top = opts.top ? win : {};
  const config = JSON.stringify({ trusted: opts.trusted ?? data.trusted, page: opts.page ?? true });
  let jar = "";
  const respond = opts.respond ?? (() => Response.json({ values: { k: "v" } }));
  const ctx = vm.createContext({
    window: win,
    document: {
      get cookie() {
        return opts.refuses ? refuse() : jar;
      },
      set cookie(c) {
        if (opts.refuses) refuse();
        if (opts.keeps) jar = c.split(";")[0];
      },
      getElementById: (id) => (id === "baton-config" ? { textContent: config } : null),
      ...(opts.access === undefined ? {} : { hasStorageAccess: async () => opts.access }),
    },
    navigator: opts.refuses ? { permissions: { query: refuse } } : {},
    URL,
    fetch: async (url, init) => {
      fetches.push({ url, ...init });
      return respond(url, init);
    },
    BroadcastChannel: class {
      constructor() {
        if (opts.refuses) refuse();
      }
      postMessage(m) {
        posted.push(m);
      }
    },
  });
  vm.runInContext(src, ctx);
  /**
   * Delivers one message from a page of `origin`, with a port of its own (as the library sends
   * every request) unless `bare`; resolves with what came back on that port, each as [message,
   * origin of the page that holds the port].
   */
  const send = async (data, origin, bare) => {
    const replies = [];
    const port = { postMessage: (m) => replies.push([structuredClone(m), origin]) };
    await listeners.message?.({ data, origin, ports: bare ? [] : [port] });
    return replies;
  };
  return { listeners, fetches, posted, send };
}

/** The rules of js/shared.js, imported as the scripts import them. */
const shared = { KEY, allowed };

test(`js/shared.js: the origin rule on origin-cases.json, ${data.cases.length} cases`, () => {
  const wrong = data.cases.filter((c) => shared.allowed(data.trusted, c.origin) !== c.allowed).map((c) => JSON.stringify(c));
  assert.deepEqual(wrong, []);
});

test(`js/shared.js: the key rule on keys.json, ${keys.valid.length + keys.invalid.length} keys`, () => {
  assert.ok(keys.valid.length > 0 && keys.invalid.length > 0);
  for (const k of keys.valid) assert.equal(shared.KEY.test(k), true, JSON.stringify(k));
  for (const k of keys.invalid) assert.equal(shared.KEY.test(k), false, JSON.stringify(k));
});

for (const [file, src] of [
  ["static/iframe.js", read("static/iframe.js")],
  ["js/iframe.js", await source("iframe.js")],
]) {
  test(`${file}: origin-cases.json, ${data.cases.length} cases`, async () => {
    assert.ok(data.cases.length > 0, "no cases");
    const iframe = boot(src);
    const wrong = [];
    for (const c of data.cases) {
      const replies = await iframe.send({ baton: 1, op: "trusted" }, c.origin);
      const got = replies.length === 1;
      if (got) assert.equal(replies[0][1], c.origin, "the reply goes on the sender's own port");
      if (got !== c.allowed) wrong.push(`${JSON.stringify(c.origin)}: expected ${c.allowed} (${c.reason ?? ""} ${c.why ?? ""}), got ${got}`);
    }
    assert.deepEqual(wrong, []);
    assert.equal(iframe.fetches.length, 0);
  });

  test(`${file}: drops malformed messages without reply, answers bad arguments bad_request`, async () => {
    const iframe = boot(src, { trusted: ["http://shop.localhost:8080"] });
    const o = "http://shop.localhost:8080";
    for (const m of [
      null,
      "get",
      { id: "1", op: "get", key: "k" },
      { baton: 2, id: "1", op: "get", key: "k" },
      { baton: 1, op: "nope" },
      { baton: 1, op: "toString" },
      { baton: 1, op: "__proto__" },
      { baton: 1, op: "redeem", token: "t" },
    ]) {
      assert.deepEqual(await iframe.send(m, o), [], JSON.stringify(m));
    }
    assert.deepEqual(await iframe.send({ baton: 1, op: "get", key: "k" }, o, "bare"), [], "no port to answer on");
    // Well formed but for its arguments, from a trusted page: refused by this frame itself (the
    // library leaves the key and value checks to it), with no broker call.
    const bad = { error: "bad_request", message: "bad_request" };
    for (const m of [
      { baton: 1, op: "get" },
      { baton: 1, op: "get", key: "" },
      { baton: 1, op: "get", key: "a/b" },
      { baton: 1, op: "get", key: "x".repeat(129) },
      { baton: 1, op: "set", key: "k" },
      { baton: 1, op: "set", key: "k", value: 1 },
      { baton: 1, op: "handoff" },
      { baton: 1, op: "identify" },
      { baton: 1, op: "identify", assertion: 1 },
      { baton: 1, op: "identify", assertion: "x".repeat(8193) },
    ]) {
      assert.deepEqual(await iframe.send(m, o), [[bad, o]], JSON.stringify(m));
    }
    assert.equal(iframe.fetches.length, 0);
    assert.equal((await iframe.send({ baton: 1, op: "get", key: "x".repeat(128) }, o))[0][0].error, undefined);
    // The shared key corpus: a valid key is read, an invalid one refused.
    for (const k of keys.valid) assert.equal((await iframe.send({ baton: 1, op: "get", key: k }, o))[0][0].error, undefined, JSON.stringify(k));
    for (const k of keys.invalid) assert.deepEqual(await iframe.send({ baton: 1, op: "get", key: k }, o), [[bad, o]], JSON.stringify(k));
  });

  test(`${file}: refuses to run top-level or sandboxed`, () => {
    assert.equal(boot(src, { top: true }).listeners.message, undefined);
    assert.equal(boot(src, { origin: "null" }).listeners.message, undefined);
    assert.equal(typeof boot(src).listeners.message, "function");
  });

  test(`${file}: the handshake answers the page's link filter, a superset of the broker's redirect rule`, async () => {
    const shop = "http://shop.localhost:8080";
    const trusted = [shop, "http://*.localhost:8080", "https://*.example.org", "http://[::1]:9000"];
    const iframe = boot(src, { trusted });
    const [[reply]] = await iframe.send({ baton: 1, op: "trusted" }, shop);
    const filter = reply.result;
    assert.ok(filter instanceof RegExp, "a RegExp, cloned to the page");
    // [href (absolute, as the library resolves it), whether a token may be asked for]
    const cases = [
      ["http://support.localhost:8080/x", true],
      ["http://a.b.localhost:8080/x?q#f", true],
      ["https://help.example.org/", true],
      ["http://[::1]:9000/p", true],
      // The page's own origin: only a redirect link naming another URL after the origin.
      [shop + "/x", false],
      [shop + "/", false],
      [shop + "/go?to=http%3A%2F%2Fsupport.localhost%3A8080%2F", true],
      [shop + "/go?to=http%253A%252F%252Fsupport.localhost%253A8080", true],
      [shop + "/go?to=http://support.localhost:8080/", true],
      [shop + "//support.localhost:8080/", true],
      [shop + "/go?to=%5C%5Csupport.localhost", true],
      // Untrusted or not quite a trusted origin.
      ["http://evil.example/?u=http://support.localhost:8080/", false],
      ["https://example.org/", false],
      ["http://support.localhost:8081/", false],
      ["https://support.localhost:8080/", false],
      ["http://shop.localhost:80800/", false],
      ["http://shop.localhost:8080.evil.example/", false],
      ["http://[::2]:9000/", false],
    ];
    const wrong = cases.filter(([href, want]) => filter.test(href) !== want).map(([href, want]) => `${href}: expected ${want}`);
    assert.deepEqual(wrong, []);
    // Built for the page that asked: from support, shop's plain links are another site's.
    const [[fromSupport]] = await iframe.send({ baton: 1, op: "trusted" }, "http://support.localhost:8080");
    assert.equal(fromSupport.result.test(shop + "/x"), true);
    assert.equal(fromSupport.result.test("http://support.localhost:8080/x"), false);
  });

  test(`${file}: calls the broker API as PROTOCOL.md says`, async () => {
    const shop = "http://shop.localhost:8080";
    const support = "http://support.localhost:8080";
    let next = () => Response.json({ values: { k: "v" } });
    const iframe = boot(src, { trusted: [shop, support], respond: () => next() });
    const ask = async (m) => {
      const replies = await iframe.send({ baton: 1, ...m }, shop);
      assert.equal(replies.length, 1, JSON.stringify(m));
      assert.equal(replies[0][1], shop);
      return replies[0][0];
    };
    const lastFetch = () => {
      const f = iframe.fetches.at(-1);
      assert.equal(f.credentials, "same-origin");
      return [f.method, f.url, f.body && JSON.parse(f.body), f.headers["Content-Type"]];
    };

    assert.deepEqual(await ask({ op: "get", key: "k" }), { result: "v" });
    assert.deepEqual(lastFetch(), ["GET", "/v1/session", undefined, undefined]);
    // A key named like an Object.prototype member reads nothing from the prototype.
    assert.equal((await ask({ op: "get", key: "toString" })).result, null);
    next = () => new Response(null, { status: 204 });
    assert.equal((await ask({ op: "get", key: "k" })).result, null, "no session: 204, null");
    assert.equal((await ask({ op: "handoff", url: support + "/x" })).result, null, "no session, no token");

    next = () => Response.json({ values: { k: "w" } });
    assert.deepEqual(await ask({ op: "set", key: "k", value: "w" }), { result: null });
    assert.deepEqual(lastFetch(), ["PUT", "/v1/session/k", { value: "w" }, "application/json"]);
    assert.equal(iframe.posted.length, 1, "a change is broadcast to the site's other iframes");

    next = () => new Response(null, { status: 204 });
    assert.equal((await ask({ op: "delete", key: "k" })).result, null);
    assert.deepEqual(lastFetch(), ["DELETE", "/v1/session/k", undefined, undefined]);
    assert.equal((await ask({ op: "end" })).result, null);
    assert.deepEqual(lastFetch(), ["DELETE", "/v1/session", undefined, undefined]);

    next = () => Response.json({ error: "too_large", message: "the value is larger than 4096 bytes" }, { status: 413 });
    assert.deepEqual(await ask({ op: "set", key: "k", value: "w" }), { error: "too_large", message: "the value is larger than 4096 bytes" });

    next = () => Response.json({ token: "t.o.k", expires_in: 60 });
    assert.equal((await ask({ op: "handoff", url: support + "/page?x#y" })).result, "t.o.k");
    // The whole URL goes to the broker, which applies the redirect rule (src/link.rs).
    assert.deepEqual(lastFetch(), ["POST", "/v1/handoff", { url: support + "/page?x#y", origin: shop }, "application/json"]);
    // The broker refuses a link no token may go with (an untrusted or the page's own origin): no token.
    next = () => Response.json({ error: "bad_audience", message: "no" }, { status: 400 });
    assert.deepEqual(await ask({ op: "handoff", url: "http://evil.localhost:8080/" }), { result: null });

    // The handshake redeems the token the page arrived with before it answers; a refused token
    // (401) or a conflict (409: an event first) still answers the handshake. Each in a document
    // of its own: a document does the handshake's work once (the test below).
    next = () => Response.json({ adopted: true, values: {} });
    /** The handshake's answer: the link filter for a page of shop (its own plain links left alone). */
    const isFilter = (r) => r instanceof RegExp && r.test(support + "/x") && !r.test(shop + "/x");
    assert.ok(isFilter((await ask({ op: "trusted", token: "t.o.k" })).result));
    assert.deepEqual(lastFetch(), ["POST", "/v1/handoff/redeem", { token: "t.o.k", origin: shop }, "application/json"]);
    next = () => Response.json({ error: "session_conflict" }, { status: 409 });
    const conflict = await boot(src, { trusted: [shop, support], respond: () => next() }).send({ baton: 1, op: "trusted", token: "t" }, shop);
    assert.deepEqual(conflict.map(([m]) => m.event ?? isFilter(m.result)), ["conflict", true]);
    next = () => Response.json({ error: "invalid_token" }, { status: 401 });
    const refused = await boot(src, { trusted: [shop, support], respond: () => next() }).send({ baton: 1, op: "trusted", token: "t" }, shop);
    assert.deepEqual(refused.map(([m]) => isFilter(m.result)), [true]);

    const bare = boot(src, { trusted: [shop, support], respond: () => next() });
    assert.deepEqual((await bare.send({ baton: 1, op: "trusted" }, shop)).map(([m]) => isFilter(m.result)), [true]);
    assert.equal(bare.fetches.length, 0, "a handshake with nothing to present calls nothing");
    assert.equal((await ask({ op: "mode", kept: 1 })).result, "page", "document.cookie keeps nothing in this mock");
    assert.equal((await ask({ op: "mode" })).result, "none", "page mode, but the page's storage keeps no key");
  });

  test(`${file}: page mode names the page and carries its key; the key comes and goes in replies`, async () => {
    const shop = "http://shop.localhost:8080";
    let next = () => Response.json({ values: { k: "v" }, page_key: "K1" });
    const iframe = boot(src, { trusted: [shop], respond: (url) => next(url) });
    const ask = async (m) => (await iframe.send({ baton: 1, ...m }, shop))[0][0];
    const headers = () => iframe.fetches.at(-1).headers;

    const created = await ask({ op: "set", key: "k", value: "v" });
    assert.equal(created.pk, "K1", "a key the broker issues goes back to the page");
    assert.equal(headers()["Baton-Page-Origin"], shop);
    assert.equal(headers()["Baton-Page-Key"], undefined, "no key held yet");

    next = () => Response.json({ values: { k: "v" } });
    const read = await ask({ op: "get", key: "k", pk: "K1" });
    assert.deepEqual([read.result, read.pk], ["v", undefined]);
    assert.equal(headers()["Baton-Page-Key"], "K1");

    next = () => new Response(null, { status: 204 });
    const stale = await ask({ op: "get", key: "k", pk: "K1" });
    assert.deepEqual([stale.result, stale.pk], [null, ""], "a key the broker no longer knows is dropped");
    assert.equal((await ask({ op: "get", key: "k" })).pk, undefined, "nothing to drop without a key");

    next = () => new Response(null, { status: 204 });
    assert.equal((await ask({ op: "delete", key: "k", pk: "K1" })).pk, undefined, "a DELETE's 204 says nothing about the session");
    assert.equal((await ask({ op: "end", pk: "K1" })).pk, "", "end drops the key");
    assert.equal((await ask({ op: "mode", kept: 1 })).result, "page");

    // The handshake: the key the redeem issues is the one the identify after it carries, and the
    // one the page is told to keep.
    next = (url) => Response.json(url.endsWith("redeem") ? { adopted: true, values: {}, page_key: "K3" } : { values: {} });
    const hello = await ask({ op: "trusted", token: "t.o.k", assertion: "a.b.c" });
    const [redeem, identify] = iframe.fetches.slice(-2);
    assert.deepEqual([redeem.url, redeem.headers["Baton-Page-Key"]], ["/v1/handoff/redeem", undefined]);
    assert.deepEqual([identify.url, identify.headers["Baton-Page-Key"]], ["/v1/identify", "K3"]);
    assert.equal(hello.pk, "K3");
  });

  test(`${file}: identify and forget call the broker; a 409 is told to the page as a conflict event`, async () => {
    const shop = "http://shop.localhost:8080";
    let next = () => Response.json({ values: { chat: "c" }, page_key: "K2" });
    const iframe = boot(src, { trusted: [shop], respond: () => next() });
    const ask = (m) => iframe.send({ baton: 1, ...m }, shop);
    const lastFetch = () => {
      const f = iframe.fetches.at(-1);
      return [f.method, f.url, f.body && JSON.parse(f.body), f.headers["Baton-Page-Origin"]];
    };

    const joined = await ask({ op: "identify", assertion: "a.b.c" });
    assert.deepEqual(joined, [[{ result: null, pk: "K2" }, shop]], "no conflict event, the new key passed on");
    assert.deepEqual(lastFetch(), ["POST", "/v1/identify", { assertion: "a.b.c", origin: shop }, shop]);
    assert.equal(iframe.posted.length, 1, "joining a session is a change for the site's other tabs");
    assert.equal((await ask({ op: "identify", assertion: "x".repeat(8192) })).length, 1, "the longest assertion sent");

    next = () => Response.json({ error: "identity_expired", message: "expired" }, { status: 401 });
    assert.deepEqual(await ask({ op: "identify", assertion: "a.b.c" }), [[{ error: "identity_expired", message: "expired" }, shop]]);

    next = () => Response.json({ error: "session_conflict", message: "another session" }, { status: 409 });
    const conflict = await ask({ op: "identify", assertion: "a.b.c" });
    assert.deepEqual(conflict.map(([m]) => m.event ?? m.error), ["conflict", "session_conflict"], "the event first, then the rejection");
    assert.equal(conflict[0][1], shop, "on the page's own port");
    const redeemed = await ask({ op: "trusted", token: "t" });
    assert.deepEqual(redeemed.map(([m]) => m.event ?? String(m.result)), ["conflict", String(/^(?!http:\/\/shop\.localhost:8080(?=\/)(?!.*([/\\]{2}|%(25)*(2f|5c))))(http:\/\/shop\.localhost:8080)\//i)]);

    next = () => Response.json({ values: {}, page_key: "" });
    const posted = iframe.posted.length;
    assert.deepEqual(await ask({ op: "forget", pk: "K2" }), [[{ result: null, pk: "" }, shop]], "the page drops its key");
    assert.deepEqual(lastFetch(), ["POST", "/v1/forget", undefined, shop]);
    assert.equal(iframe.fetches.at(-1).headers["Baton-Page-Key"], "K2");
    assert.equal(iframe.posted.length, posted + 1, "the site's other tabs re-read");
    next = () => new Response(null, { status: 204 });
    assert.equal((await ask({ op: "forget" }))[0][0].pk, "", "even where the broker says nothing of keys");
  });

  test(`${file}: a second hello in one document (the library's at once and at load) redeems and presents nothing again`, async () => {
    const shop = "http://shop.localhost:8080";
    /** @type {(() => void)[]} answers held back, so that both hellos arrive while the first works */
    const held = [];
    const iframe = boot(src, {
      trusted: [shop],
      respond: (url) =>
        new Promise((resolve) => held.push(() => resolve(url === "/v1/identify" ? Response.json({ values: { chat: "c" }, page_key: "K1" }) : Response.json({ adopted: true, values: {} })))),
    });
    const hello = { baton: 1, op: "trusted", token: "t.o.k", assertion: "a.b.c" };
    const order = [];
    const first = iframe.send(hello, shop).then((r) => (order.push("first"), r));
    const second = iframe.send(hello, shop).then((r) => (order.push("second"), r));
    // Let the broker answer each call as it comes, until both hellos are answered.
    let settled = false;
    const both = Promise.all([first, second]).finally(() => (settled = true));
    while (!settled) {
      held.splice(0).forEach((answer) => answer());
      await new Promise((r) => setTimeout(r, 1));
    }
    const [a, b] = await both;
    assert.deepEqual(
      iframe.fetches.map((f) => f.url),
      ["/v1/handoff/redeem", "/v1/identify"],
      "one redeem, one identify, however many hellos",
    );
    assert.ok(a[0][0].result instanceof RegExp && b[0][0].result instanceof RegExp, "both answered with the link filter");
    assert.deepEqual([a[0][0].pk, b[0][0].pk], ["K1", undefined], "the page key rides on the reply of the hello that did the work");
    assert.deepEqual(order, ["first", "second"], "the second answers after the first's work, never before");
    // A new document (the frame reloaded) does it again.
    const again = boot(src, { trusted: [shop], respond: () => Response.json({ adopted: true, values: {} }) });
    await again.send(hello, shop);
    assert.deepEqual(again.fetches.map((f) => f.url), ["/v1/handoff/redeem", "/v1/identify"]);
  });

  test(`${file}: cookies that stick mean no page mode; page keys off mean mode none`, async () => {
    const shop = "http://shop.localhost:8080";
    const kept = boot(src, { trusted: [shop], keeps: true, access: false });
    await kept.send({ baton: 1, op: "get", key: "k", pk: "K1" }, shop);
    assert.equal(kept.fetches[0].headers["Baton-Page-Origin"], undefined);
    assert.equal(kept.fetches[0].headers["Baton-Page-Key"], undefined, "a page key is used only where no cookie sticks");
    const mode = async (opts) => (await boot(src, { trusted: [shop], ...opts }).send({ baton: 1, op: "mode" }, shop))[0][0].result;
    // A cookie that sticks is shared across sites only where the frame has storage access (Firefox
    // partitions even the unpartitioned one silently); without the API, a sticking cookie is all we know.
    assert.equal(await mode({ keeps: true, access: false }), "partitioned");
    assert.equal(await mode({ keeps: true, access: true }), "unpartitioned");
    assert.equal(await mode({ keeps: true }), "unpartitioned");

    const off = boot(src, { trusted: [shop], page: false });
    await off.send({ baton: 1, op: "get", key: "k", pk: "K1" }, shop);
    assert.equal(off.fetches[0].headers["Baton-Page-Origin"], undefined);
    assert.equal((await off.send({ baton: 1, op: "mode", kept: 1 }, shop))[0][0].result, "none");
  });

  test(`${file}: a browser refusing document.cookie, BroadcastChannel and permissions does not kill it`, async () => {
    const shop = "http://shop.localhost:8080";
    const iframe = boot(src, { trusted: [shop], refuses: true });
    assert.equal(typeof iframe.listeners.message, "function", "the listener is installed");
    const [[set]] = await iframe.send({ baton: 1, op: "set", key: "k", value: "v" }, shop);
    assert.deepEqual(set, { result: null });
    const [[mode]] = await iframe.send({ baton: 1, op: "mode", kept: 1 }, shop);
    assert.equal(mode.result, "page");
  });
}

// A stand-in for one Genesys Mobile Services (GMS) node, just enough of it to test a load balancer
// in front of GMS's CometD chat API: no dependencies, plain HTTP on loopback (TLS ends at the
// balancer, as Genesys recommends).
//
// - `POST /genesys/cometd/handshake` starts a CometD "browser": the node sets
//   `BAYEUX_BROWSER=<random>; Path=/; HttpOnly`, the way GMS's CometD server (Jetty) does, with no
//   `SameSite`, no `Secure` and no `Partitioned`, and answers `{node, successful}`.
// - `POST /genesys/cometd/connect` (a long poll; here it answers at once) says which node answered
//   and what it made of the `BAYEUX_BROWSER` cookie it received: `"own"` (a browser this node
//   started), `"foreign"` (another node's: the balancer lost affinity) or `"none"` (no cookie came).
//   A CometD node knows only the browsers it started itself: that is why GMS needs affinity.
// - `GET /genesys/test/cookies` sets cookies that already carry some attributes, in every spelling,
//   to check that the balancer adds each attribute exactly once.
// - `GET /genesys/test/client.html` is a page that runs the same handshake and polls as a widget
//   would (`window.result`), for tests that frame it from another site.
// - `OPTIONS` answers CORS preflights; every response allows the requesting `Origin` with
//   credentials, as GMS does for the sites it is configured to serve (the stub allows any).
//
// Run alone: `node tests/gms/stub-gms.mjs gms1 8081` (node id, port on 127.0.0.1).
import { randomBytes } from "node:crypto";
import http from "node:http";
import { fileURLToPath } from "node:url";

/** Cookies with attributes already present, as `GET /genesys/test/cookies` sets them. */
export const PROBE_COOKIES = [
  "plain=1",
  "pathonly=2; Path=/genesys",
  "secure=3; Path=/; Secure",
  "lower=4; path=/; secure; samesite=lax; httponly",
  "strict=5; Path=/; SameSite=Strict; HttpOnly",
  "already=6; Path=/; SameSite=None; Secure; Partitioned",
  "expires=7; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/; Max-Age=3600",
];

/**
 * What a widget does against GMS: a handshake, then `polls` connects, each credentialed
 * (`fetch` with `credentials: "include"`, so cross-site calls carry and store cookies).
 * Serialised into pages by `String(cometClient)`: keep it self-contained.
 * @param {string} base e.g. `https://gms.example.com:443`
 * @param {number} polls
 * @returns {Promise<{handshake: any, polls: any[]}>}
 */
export async function cometClient(base, polls) {
  /** @param {string} path */
  const post = async (path) => {
    const res = await fetch(base + path, {
      method: "POST",
      credentials: "include",
      headers: { "content-type": "application/json" },
      body: "[]",
    });
    return res.json();
  };
  const handshake = await post("/genesys/cometd/handshake");
  const answers = [];
  for (let i = 0; i < polls; i++) answers.push(await post("/genesys/cometd/connect"));
  return { handshake, polls: answers };
}

/**
 * The value of cookie `name` in a `Cookie` request header, or undefined.
 * @param {string | undefined} header
 * @param {string} name
 */
export function cookieValue(header, name) {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Starts one stub GMS node on 127.0.0.1.
 * @param {string} node its id, echoed in every answer (e.g. "gms1")
 * @param {number} [port] 0 for any free port
 * @returns {Promise<{node: string, port: number, stop: () => Promise<void>}>}
 */
export async function startStubGms(node, port = 0) {
  /** The BAYEUX_BROWSER values this node issued. */
  const browsers = new Set();
  const server = http.createServer((req, res) => {
    const origin = req.headers.origin;
    /** @type {Record<string, string | string[]>} */
    const headers = { "cache-control": "no-store" };
    if (origin) {
      headers["access-control-allow-origin"] = origin;
      headers["access-control-allow-credentials"] = "true";
      headers.vary = "Origin";
    }
    /** @param {number} status @param {unknown} body */
    const json = (status, body) => {
      res.writeHead(status, { ...headers, "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const path = new URL(req.url ?? "/", "http://x").pathname;
    // The body (CometD messages) is not needed: drain it so the connection stays usable.
    req.resume();
    if (req.method === "OPTIONS") {
      headers["access-control-allow-methods"] = "GET, POST";
      headers["access-control-allow-headers"] = "content-type";
      res.writeHead(204, headers);
      res.end();
    } else if (req.method === "POST" && path === "/genesys/cometd/handshake") {
      const id = randomBytes(16).toString("hex");
      browsers.add(id);
      headers["set-cookie"] = [`BAYEUX_BROWSER=${id}; Path=/; HttpOnly`];
      json(200, { node, channel: "/meta/handshake", successful: true });
    } else if (req.method === "POST" && path === "/genesys/cometd/connect") {
      const got = cookieValue(req.headers.cookie, "BAYEUX_BROWSER");
      const browser = got === undefined ? "none" : browsers.has(got) ? "own" : "foreign";
      json(200, { node, channel: "/meta/connect", successful: browser === "own", browser });
    } else if (req.method === "GET" && path === "/genesys/test/cookies") {
      headers["set-cookie"] = PROBE_COOKIES;
      json(200, { node });
    } else if (req.method === "GET" && path === "/genesys/test/client.html") {
      res.writeHead(200, { ...headers, "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><meta charset="utf-8"><title>GMS client</title>
<script>window.result = (${String(cometClient)})(location.origin, 10).catch((e) => ({ error: String(e) }));</script>`);
    } else {
      json(404, { node, error: "not_found" });
    }
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(undefined));
  });
  const address = /** @type {import("node:net").AddressInfo} */ (server.address());
  return {
    node,
    port: address.port,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [node = "gms1", port = "0"] = process.argv.slice(2);
  const stub = await startStubGms(node, Number(port));
  console.log(`stub GMS node ${stub.node} on http://127.0.0.1:${stub.port}`);
}

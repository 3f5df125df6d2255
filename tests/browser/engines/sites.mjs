// Test sites for every engine: the partner sites and the real broker over http (harness.mjs) or,
// for WebKit, which refuses every `Secure` cookie over plain http, over https with a self-signed
// certificate: an https partner server, and a TLS proxy in front of the broker's plain-http port.
// Every server here puts the error collector (collector.mjs) first in the HTML pages it serves.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { promisify } from "node:util";
import { DEFAULT_TRUSTED, onFreePort, runBroker, startBroker as startHttpBroker, startPartners as startHttpPartners } from "../harness.mjs";
import { COLLECTOR_JS, COLLECTOR_PATH, withCollector } from "./collector.mjs";
import { removeDir, tempDir } from "../proc.mjs";


/** The host names the test certificate covers. */
export const TEST_HOSTS = ["shop.localhost", "support.localhost", "evil.localhost", "broker.localhost", "third.localhost", "localhost"];

/** @typedef {{key: string, cert: string}} Cert PEM private key and self-signed certificate */

/** @type {Map<string, Promise<Cert>>} */
const certs = new Map();

/**
 * A self-signed certificate (EC P-256, valid two days) for `hosts`, made once per process with
 * the `openssl` CLI in a temporary directory that is removed at once.
 * @param {string[]} [hosts]
 * @returns {Promise<Cert>}
 */
export function makeCert(hosts = TEST_HOSTS) {
  const id = hosts.join(",");
  let made = certs.get(id);
  if (!made) {
    made = (async () => {
      const dir = await tempDir("cert");
      try {
        const [key, cert] = [path.join(dir, "key.pem"), path.join(dir, "cert.pem")];
        await promisify(execFile)("openssl", [
          "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=baton test",
          "-addext", `subjectAltName=${hosts.map((h) => `DNS:${h}`).join(",")}`,
        ]);
        return { key: await readFile(key, "utf8"), cert: await readFile(cert, "utf8") };
      } catch (e) {
        throw new Error(`cannot make a test certificate with openssl (apt-get install -y openssl): ${/** @type {Error} */ (e).message}`);
      } finally {
        await removeDir(dir);
      }
    })();
    certs.set(id, made);
  }
  return made;
}

/**
 * @callback Handler
 * @param {http.IncomingMessage} req
 * @param {http.ServerResponse} res
 * @param {{host: string, path: string}} at `host` without port, `path` without query
 * @returns {boolean | void | Promise<boolean | void>} true when it answered
 */

/**
 * An http or https server on 127.0.0.1 answering every host: the collector at COLLECTOR_PATH,
 * otherwise `handler`, otherwise 404. HTML that `handler` sends through `res.html(...)` gets the
 * collector as its first script.
 * @param {"http" | "https"} scheme
 * @param {Handler} handler
 * @returns {Promise<{port: number, stop: () => Promise<void>}>}
 */
export async function startSiteServer(scheme, handler) {
  /** @param {http.IncomingMessage} req @param {http.ServerResponse} res */
  const listener = async (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const at = { host: (req.headers.host ?? "").replace(/:\d+$/, ""), path: url.pathname };
    try {
      if (at.path === COLLECTOR_PATH) {
        res.writeHead(200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" }).end(COLLECTOR_JS);
      } else if (!(await handler(req, res, at))) {
        res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found");
      }
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end(String(e));
    }
  };
  const server = scheme === "https" ? https.createServer(await makeCert(), listener) : http.createServer(listener);
  await new Promise((r) => server.listen(0, "127.0.0.1", () => r(undefined)));
  const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
  return {
    port,
    stop: () =>
      new Promise((r) => {
        server.close(() => r(undefined));
        server.closeAllConnections();
      }),
  };
}

/** @typedef {Awaited<ReturnType<typeof startHttpPartners>>} Partners */

/**
 * The partner sites over https, with the API of harness.mjs `startPartners()`: one server
 * answering by `Host` (any NAME.localhost), pages added with `page(name, path, html, {bfcache})` (a path
 * ending in `.js` is served as JavaScript); HTML pages get the error collector first.
 * @returns {Promise<Partners>}
 */
export async function startHttpsPartners() {
  /** @type {Map<string, string>} "host path" -> body */
  const pages = new Map();
  /** "host path" of the pages served without `no-store` (back/forward cache allowed) */
  const cached = new Set();
  const server = await startSiteServer("https", (req, res, at) => {
    if (at.path === "/favicon.ico") {
      res.writeHead(204).end();
      return true;
    }
    const body = pages.get(`${at.host} ${at.path}`);
    if (body === undefined) return false;
    const js = at.path.endsWith(".js");
    const cache = cached.has(`${at.host} ${at.path}`) ? "no-cache" : "no-store";
    res.writeHead(200, { "content-type": `${js ? "text/javascript" : "text/html"}; charset=utf-8`, "cache-control": cache });
    res.end(js ? body : withCollector(body));
    return true;
  });
  const { port } = server;
  return {
    port,
    url: (name, p = "/") => `https://${name}.localhost:${port}${p}`,
    origin: (name) => `https://${name}.localhost:${port}`,
    page: (name, p, html, { bfcache = false } = {}) => {
      pages.set(`${name}.localhost ${p}`, html);
      if (bfcache) cached.add(`${name}.localhost ${p}`);
    },
    stop: server.stop,
  };
}

/** Headers that concern one connection, not the message: never forwarded by the proxy. */
const HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"]);
const endToEnd = (/** @type {http.IncomingHttpHeaders} */ h) => Object.fromEntries(Object.entries(h).filter(([k]) => !HOP.has(k)));

/**
 * A TLS terminator in front of a plain-http server on 127.0.0.1:`target`: requests go through
 * unchanged (Host included), except that, with `collect` (the default), `/iframe.html` gets the
 * error collector as its first script and COLLECTOR_PATH is answered here (same origin as the
 * iframe; the page's CSP admits only its own inline script by hash, so the proxy adds `'self'` to
 * its `script-src`: the one change to what the broker sent). An HTTP proxy rather than a byte
 * pipe: only that can inject.
 * @param {number} target
 * @param {{collect?: boolean}} [opts]
 * @returns {Promise<{port: number, stop: () => Promise<void>}>}
 */
export async function startTlsProxy(target, { collect = true } = {}) {
  const agent = new http.Agent({ keepAlive: true });
  const server = await startSiteServer("https", (req, res, at) =>
    new Promise((resolve, reject) => {
      const inject = collect && at.path === "/iframe.html";
      const headers = endToEnd(req.headers);
      // The collector goes into a fresh, uncompressed copy: no 304 for a body the browser may
      // have cached without it, no gzip to unpack.
      if (inject) for (const h of ["if-none-match", "if-modified-since", "accept-encoding"]) delete headers[h];
      const up = http.request({ host: "127.0.0.1", port: target, method: req.method, path: req.url, headers, agent }, (upRes) => {
        const out = endToEnd(upRes.headers);
        if (inject && upRes.statusCode === 200 && String(upRes.headers["content-type"]).startsWith("text/html")) {
          /** @type {Buffer[]} */
          const chunks = [];
          upRes.on("data", (c) => chunks.push(c));
          upRes.on("end", () => {
            const body = Buffer.from(withCollector(Buffer.concat(chunks).toString("utf8")));
            const csp = String(out["content-security-policy"] ?? "").replace("script-src ", "script-src 'self' ");
            res.writeHead(200, { ...out, "content-security-policy": csp, "content-length": body.length }).end(body);
            resolve(true);
          });
        } else {
          res.writeHead(upRes.statusCode ?? 502, out);
          upRes.pipe(res).on("finish", () => resolve(true));
        }
        upRes.on("error", reject);
      });
      up.on("error", reject);
      req.pipe(up);
    }),
  );
  return {
    port: server.port,
    stop: async () => {
      await server.stop();
      agent.destroy();
    },
  };
}

/** @typedef {{port: number, origin: string, iframeUrl: string, scriptUrl: string, log: () => string, metrics: () => Promise<string>, stop: () => Promise<void>}} Broker */

/**
 * The real broker (`BATON_BIN` or target/debug/baton) behind startTlsProxy: its public origin is
 * `https://broker.localhost:<proxy port>` and it trusts `https://NAME.localhost:<partnerPort>` for
 * each name of `trusted`. `port` is the proxy's; the broker itself listens on a free port.
 * @param {number} partnerPort
 * @param {{trusted?: string[], toml?: string}} [opts] `toml`: more config, appended to the file
 * @returns {Promise<Broker>}
 */
export async function startHttpsBroker(partnerPort, { trusted = DEFAULT_TRUSTED, toml = "" } = {}) {
  const [proxy, broker] = await onFreePort(async (plain) => {
    const proxy = await startTlsProxy(plain);
    const origin = `https://broker.localhost:${proxy.port}`;
    const broker = await runBroker(plain, origin, trusted.map((name) => `https://${name}.localhost:${partnerPort}`), toml).catch(async (e) => {
      await proxy.stop();
      throw e;
    });
    return [proxy, broker];
  });
  const origin = `https://broker.localhost:${proxy.port}`;
  const stop = async () => {
    await broker.stop();
    await proxy.stop();
  };
  return { port: proxy.port, origin, iframeUrl: `${origin}/iframe.html`, scriptUrl: `${origin}/cookie-provider.js`, log: broker.log, metrics: broker.metrics, stop };
}

/**
 * Partner sites in `scheme`: harness.mjs `startPartners()` for http, startHttpsPartners for https.
 * @param {"http" | "https"} scheme
 * @returns {Promise<Partners>}
 */
export const startPartners = (scheme) => (scheme === "https" ? startHttpsPartners() : startHttpPartners());

/**
 * The real broker in `scheme`, trusting `trusted` on `partners`: harness.mjs `startBroker()` for
 * http, startHttpsBroker for https.
 * @param {"http" | "https"} scheme
 * @param {{port: number}} partners
 * @param {{trusted?: string[], toml?: string}} [opts]
 * @returns {Promise<Broker>}
 */
export const startBroker = (scheme, partners, opts) => (scheme === "https" ? startHttpsBroker(partners.port, opts) : startHttpBroker(partners.port, opts));

/** @template [P=Partners] @typedef {{partners: P, broker: Broker}} World partner sites and the broker trusting them */
/** @template [P=Partners] @typedef {Record<"http" | "https", World<P>> & {stop: () => Promise<void>}} Worlds */

/**
 * A world in each scheme, http then https: partner sites (`partners(scheme)`, by default
 * startPartners), the real broker trusting them (with `toml` added to its config), then
 * `addPages(world)`. When any step fails, what had started is stopped before the error is thrown;
 * otherwise `stop()` stops it all.
 * @template {{port: number, stop: () => Promise<void>}} [P=Partners]
 * @param {(w: World<P>) => void | Promise<void>} [addPages]
 * @param {{partners?: (scheme: "http" | "https") => Promise<P>, toml?: string}} [opts]
 * @returns {Promise<Worlds<P>>}
 */
export async function startWorlds(addPages = () => {}, { partners: startSites = /** @type {any} */ (startPartners), toml } = {}) {
  /** @type {World<P>[]} */
  const started = [];
  // Every world's broker and sites are stopped even when one of them fails to stop; the first
  // failure is thrown after.
  const stop = async () => {
    const ends = await Promise.allSettled(started.flatMap(({ partners, broker }) => [broker.stop(), partners.stop()]));
    const failed = ends.find((e) => e.status === "rejected");
    if (failed) throw failed.reason;
  };
  try {
    for (const s of /** @type {const} */ (["http", "https"])) {
      const partners = await startSites(s);
      const broker = await startBroker(s, partners, { toml }).catch(async (e) => {
        await partners.stop();
        throw e;
      });
      started.push({ partners, broker });
      await addPages({ partners, broker });
    }
  } catch (e) {
    // The set-up's error is the one to see, not a failure to stop.
    await stop().catch(() => {});
    throw e;
  }
  const [http, https] = started;
  return { http, https, stop };
}

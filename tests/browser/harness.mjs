// Browser test harness: the real broker binary, a node server for the partner sites, and a real
// headless Chromium driven over CDP (how, and why so: docs/browsers.md).
//
// Chromium is started by hand, not with playwright's `chromium.launch()`, which adds
// `--disable-features=...ThirdPartyStoragePartitioning...` and so changes the behaviour under
// test. Every browser gets a fresh profile; third-party cookies are set per profile through
// `profile.cookie_controls_mode` in its Preferences (0 allowed, 1 blocked).
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { cleanEnv, removeDir, startGroup, stopGroup, tempDir } from "./proc.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";

/** The broker's cookie names (their home is src/cookie.rs, which checks this file agrees). */
export const { unpartitioned: PLAIN_COOKIE, partitioned: PART_COOKIE } = JSON.parse(readFileSync(path.join(root, "tests/data/cookies.json"), "utf8"));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; throws `what` after `ms`. */
export async function until(fn, what, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A TCP port nothing listens on right now. */
export async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** GET `p` from 127.0.0.1:`port` with the `Host` header a browser would send for `host`. */
export const getAs = (port, host, p) =>
  new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: p, headers: { host } }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      })
      .on("error", reject);
  });

/** Starts `baton-demo` on a free port with a fresh database; resolves once it printed its URL. */
export async function startDemo() {
  const bin = process.env.BATON_DEMO_BIN ?? path.join(root, "target/debug/baton-demo");
  if (!existsSync(bin)) throw new Error(`${bin} not found: run cargo build --workspace, or set BATON_DEMO_BIN`);
  const dir = await tempDir("demo");
  const port = await freePort();
  const child = startGroup(bin, ["--listen", `127.0.0.1:${port}`, "--db", path.join(dir, "demo.db")], undefined, cleanEnv());
  const stop = async () => {
    await stopGroup(child);
    await removeDir(dir);
  };
  const shop = `http://shop.localhost:${port}`;
  try {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`baton-demo exited with ${child.exitCode}`);
      return child.output.includes(`open ${shop}/`);
    }, "baton-demo to print its URL");
    // The tests must run the shipped library: a binary built before the last `npm run build`
    // serves an older one.
    const served = await getAs(port, `broker.localhost:${port}`, "/cookie-provider.js");
    if (served.body !== (await readFile(path.join(root, "static/cookie-provider.js"), "utf8")))
      throw new Error("the binary serves a cookie-provider.js that differs from static/: rebuild it (cargo build)");
  } catch (e) {
    await stop();
    throw new Error(`${e.message}\n--- demo output ---\n${child.output}`);
  }
  return {
    port,
    shop,
    support: `http://support.localhost:${port}`,
    log: () => child.output,
    stop,
  };
}

/** The partner sites the broker trusts unless a test says otherwise. */
export const DEFAULT_TRUSTED = ["shop", "support"];

/**
 * Starts the real broker (`BATON_BIN` or target/debug/baton) trusting `http://NAME.localhost:partnerPort`
 * for each name of `trusted` (default: shop and support).
 * @param {number} partnerPort
 * @param {{trusted?: string[], toml?: string}} [opts] `toml`: more config, appended to the file
 * @returns {Promise<{port: number, origin: string, iframeUrl: string, scriptUrl: string, log: () => string, metrics: () => Promise<string>, stop: () => Promise<void>}>}
 */
export async function startBroker(partnerPort, { trusted = DEFAULT_TRUSTED, toml = "" } = {}) {
  return onFreePort(async (port) => {
    const origin = `http://broker.localhost:${port}`;
    const broker = await runBroker(port, origin, trusted.map((name) => `http://${name}.localhost:${partnerPort}`), toml);
    return { port, origin, iframeUrl: `${origin}/iframe.html`, scriptUrl: `${origin}/cookie-provider.js`, ...broker };
  });
}

/**
 * Runs `start(port)` on a port that was free a moment ago, and again on another if something
 * took it meanwhile (the broker then says it cannot listen): the port must be known before the
 * broker starts, since its public origin names it.
 * @template T
 * @param {(port: number) => Promise<T>} start
 * @returns {Promise<T>}
 */
export async function onFreePort(start) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freePort());
    } catch (e) {
      if (attempt >= 3 || !/cannot listen on .*(in use|Address already)/i.test(String(e.message))) throw e;
    }
  }
}

/**
 * Runs the real broker (`BATON_BIN` or target/debug/baton) on 127.0.0.1:`port`, reached by
 * browsers at `origin`, trusting `origins`, with a fresh SQLite database and handoff key and
 * `extra` appended to its config; resolves once `/healthz` answers.
 * @param {number} port
 * @param {string} origin
 * @param {string[]} origins
 * @param {string} extra
 */
export async function runBroker(port, origin, origins, extra) {
  const bin = process.env.BATON_BIN ?? path.join(root, "target/debug/baton");
  if (!existsSync(bin)) throw new Error(`broker binary ${bin} not found: build it (cargo build) or set BATON_BIN`);
  const dir = await tempDir("broker");
  const config = path.join(dir, "baton.toml");
  await writeFile(
    config,
    `[server]
listen = "127.0.0.1:${port}"
admin_listen = "127.0.0.1:0"
public_origin = "${origin}"
[trust]
origins = ${JSON.stringify(origins)}
[store]
backend = "sqlite"
sqlite_path = "${dir}/baton.db"
[[handoff.keys]]
kid = "test"
secret = "${randomBytes(32).toString("base64url")}"
${extra}`,
  );
  const child = startGroup(bin, ["serve", "--config", config], undefined, cleanEnv());
  const stop = async () => {
    await stopGroup(child);
    await removeDir(dir);
  };
  try {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`broker exited with ${child.exitCode}: ${child.output}`);
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200;
    }, "the broker's /healthz");
  } catch (e) {
    await stop();
    throw new Error(`${e.message}\n--- broker output ---\n${child.output}`);
  }
  // The admin listener's port, as the broker reports it at start (`admin=127.0.0.1:PORT`).
  const admin = await until(async () => /admin=(127\.0\.0\.1:\d+)/.exec(child.output)?.[1], "the broker's admin address");
  /** The broker's /metrics text (Prometheus, from its admin listener). */
  const metrics = async () => (await fetch(`http://${admin}/metrics`)).text();
  return { log: () => child.output, metrics, stop };
}

/**
 * The partner sites: one node server on one port, answering by `Host` (shop.localhost,
 * support.localhost, evil.localhost, any NAME.localhost). Tests add pages with
 * `page(host, path, html, {bfcache})`; a path ending in `.js` is served as JavaScript. Pages are
 * `Cache-Control: no-store`, which keeps them out of the back/forward cache, unless `bfcache`.
 */
export async function startPartners() {
  /** @type {Map<string, string>} "host path" -> html */
  const pages = new Map();
  /** "host path" of the pages served without `no-store` */
  const cached = new Set();
  const server = http.createServer((req, res) => {
    // Browsers ask every site for one: an empty answer keeps a 404 out of every page's console.
    if (req.url === "/favicon.ico") return res.writeHead(204).end();
    const host = (req.headers.host ?? "").split(":")[0];
    const at = `${host} ${new URL(req.url, "http://x").pathname}`;
    const html = pages.get(at);
    const type = req.url.split("?")[0].endsWith(".js") ? "text/javascript" : "text/html";
    res.writeHead(html === undefined ? 404 : 200, { "content-type": `${type}; charset=utf-8`, "cache-control": cached.has(at) ? "no-cache" : "no-store" });
    res.end(html ?? "not found");
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    port,
    /** The URL of `path` on `name` ("shop", "support", "evil"). */
    url: (name, p = "/") => `http://${name}.localhost:${port}${p}`,
    origin: (name) => `http://${name}.localhost:${port}`,
    /** Serves `html` at `path` on `name`; `bfcache`: without `no-store`. */
    page: (name, p, html, { bfcache = false } = {}) => {
      pages.set(`${name}.localhost ${p}`, html);
      if (bfcache) cached.add(`${name}.localhost ${p}`);
    },
    stop: () => new Promise((r) => server.close(r)),
  };
}

/**
 * Starts headless Chromium with a fresh profile and attaches playwright over CDP.
 * @param {{thirdPartyCookies: "allowed" | "blocked"}} opts
 */
export async function startBrowser({ thirdPartyCookies }) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  const dir = await tempDir("chromium");
  await mkdir(path.join(dir, "Default"));
  const mode = { allowed: 0, blocked: 1 }[thirdPartyCookies];
  if (mode === undefined) throw new Error(`thirdPartyCookies: ${thirdPartyCookies}`);
  await writeFile(path.join(dir, "Default", "Preferences"), JSON.stringify({ profile: { cookie_controls_mode: mode } }));
  const args = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--user-data-dir=${dir}`,
    "--remote-debugging-port=0",
    "--proxy-server=http://127.0.0.1:9",
    "about:blank",
  ];
  // Without a system bus Chromium logs dbus errors by the dozen: noise in failure messages.
  const child = startGroup(CHROMIUM, args, /dbus/);
  const stop = async () => {
    await browser?.close().catch(() => {});
    await stopGroup(child);
    await removeDir(dir);
  };
  let browser;
  try {
    const port = await until(async () => {
      if (child.exitCode !== null) throw new Error(`chromium exited with ${child.exitCode}`);
      return (await readFile(path.join(dir, "DevToolsActivePort"), "utf8")).split("\n")[0];
    }, "chromium's DevToolsActivePort");
    browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`);
  } catch (e) {
    await stop();
    throw new Error(`${e.message}\n--- chromium output ---\n${child.output}`);
  }
  // What the browser really runs with: nothing (such as playwright's launch defaults) may turn
  // off the storage partitioning under test.
  const cmdline = (await readFile(`/proc/${child.pid}/cmdline`, "utf8")).split("\0");
  if (!cmdline.includes(`--user-data-dir=${dir}`) || cmdline.some((a) => a.includes("Partitioning"))) {
    await stop();
    throw new Error(`unexpected chromium command line: ${cmdline.join(" ")}`);
  }
  const context = browser.contexts()[0];
  if (process.env.BATON_JS_DIR) {
    // Development only: serve the broker's scripts from a directory (e.g. a fresh `npm run build`)
    // instead of the copies compiled into the binary.
    // (`/cookie-provider.min.js` is the same script as `/cookie-provider.js`.)
    await context.route(/^http:\/\/broker\.localhost:\d+\/(cookie-provider|iframe)(\.min)?\.js$/, async (route) =>
      route.fulfill({
        contentType: "text/javascript; charset=utf-8",
        body: await readFile(path.join(path.resolve(root, process.env.BATON_JS_DIR), path.basename(new URL(route.request().url()).pathname).replace(".min.js", ".js")), "utf8"),
      }),
    );
  }
  const pages = [];
  context.on("page", (p) => {
    pages.push(p);
    p.on("console", (m) => (child.output += `[console ${m.type()}] ${m.text()}\n`));
    p.on("pageerror", (e) => (child.output += `[pageerror] ${e.message}\n`));
  });
  return {
    browser,
    context,
    pid: child.pid,
    /** Console output and page errors so far, for failure messages. */
    log: () => child.output,
    /** A new tab. */
    newPage: () => context.newPage(),
    /** Every cookie of the profile, partitioned ones included, with its partition key. */
    cookies: async () => {
      const page = context.pages()[0] ?? (await context.newPage());
      const cdp = await context.newCDPSession(page);
      try {
        return (await cdp.send("Storage.getCookies")).cookies;
      } finally {
        await cdp.detach();
      }
    },
    stop,
  };
}

/**
 * The pages every test uses, on each partner site:
 * - `/`, `/other`, `/landing`: load cookie-provider.js in `<head>` and `Baton.connect` at once
 *   (`window.client`), with links to the other sites;
 * - `/bare`: loads cookie-provider.js only (`window.IFRAME` is the iframe URL);
 * - evil `/landing`: no library, records the fragment it arrived with (`window.arrivedHash`).
 * Trusted sites beyond shop and support (`startWorld({trusted})`) get the same pages, and every
 * page a link `#to-NAME` to their `/landing`.
 */
function addPages(partners, broker, extra = []) {
  const head = (name) => `<!doctype html><meta charset="utf-8"><title>${name}</title>
<script src="${broker.scriptUrl}"></script>
<script>window.IFRAME = ${JSON.stringify(broker.iframeUrl)};</script>`;
  const links = `
<a id="to-support" href="${partners.url("support", "/landing#section")}">support</a>
<a id="to-support-blank" target="_blank" href="${partners.url("support", "/landing")}">support, new tab</a>
<a id="to-shop" href="${partners.url("shop", "/landing")}">shop</a>
<a id="to-evil" href="${partners.url("evil", "/landing")}">evil</a>
<a id="same-site" href="/other">other page</a>${extra.map((name) => `
<a id="to-${name}" href="${partners.url(name, "/landing")}">${name}</a>`).join("")}`;
  for (const name of ["shop", "support", "evil", ...extra]) {
    const full = `${head(name)}
<script>window.client = Baton.connect(IFRAME);</script>
<body><h1>${name}</h1>${links}</body>`;
    for (const p of ["/", "/other", "/landing"]) partners.page(name, p, full);
    partners.page(name, "/bare", `${head(name)}<body><h1>${name}</h1>${links}</body>`);
  }
  partners.page("evil", "/landing", `<!doctype html><title>evil</title><script>window.arrivedHash = location.hash;</script><h1>evil</h1>`);
}

/**
 * Everything a test file needs: partner sites with their pages and the broker, stopped by `stop()`.
 * @param {{trusted?: string[]}} [opts] the partner sites the broker trusts (default: shop and support)
 */
export async function startWorld({ trusted = DEFAULT_TRUSTED } = {}) {
  const partners = await startPartners();
  let broker;
  try {
    broker = await startBroker(partners.port, { trusted });
  } catch (e) {
    await partners.stop();
    throw e;
  }
  if (!process.env.BATON_JS_DIR) {
    // The tests must run the shipped scripts: a binary built before the last `npm run build`
    // serves older ones.
    for (const name of ["cookie-provider.js", "iframe.js"]) {
      const served = await (await fetch(`http://127.0.0.1:${broker.port}/${name}`)).text();
      if (served !== (await readFile(path.join(root, "static", name), "utf8"))) {
        await broker.stop();
        await partners.stop();
        throw new Error(`the broker binary serves a ${name} that differs from static/${name}: rebuild it (cargo build), or set BATON_JS_DIR=static to test static/ through it`);
      }
    }
  }
  addPages(partners, broker, trusted.filter((name) => !["shop", "support", "evil"].includes(name)));
  return {
    partners,
    broker,
    stop: async () => {
      await broker.stop();
      await partners.stop();
    },
  };
}

/**
 * Opens `url` in a new tab of `b` and waits until its `window.client` is ready (when it has one).
 * @returns {Promise<import("playwright-core").Page>}
 */
export async function open(b, url) {
  const page = await b.newPage();
  await page.goto(url);
  await page.evaluate(() => window.client && window.client.ready);
  return page;
}

/** Calls `client[method](...args)` in `page`; resolves with `{ok, value}` or `{ok: false, code}`. */
export const call = (page, method, ...args) =>
  page.evaluate(
    ([m, a]) =>
      window.client[m](...a).then(
        (value) => ({ ok: true, value }),
        (e) => ({ ok: false, code: e.code, name: e.name, message: e.message }),
      ),
    [method, args],
  );

/** The value of `key` in `page`'s broker session (throws on error). */
export async function get(page, key) {
  const r = await call(page, "get", key);
  if (!r.ok) throw new Error(`get(${key}) failed: ${JSON.stringify(r)}`);
  return r.value;
}

/** The top-level site of a CDP cookie's partition key (string in older Chromium, object now), or undefined. */
export const partitionSite = (c) => (typeof c.partitionKey === "string" ? c.partitionKey : c.partitionKey?.topLevelSite);

/**
 * Runs `fn(browser)` in a fresh Chromium profile with third-party cookies `mode` ("allowed" or
 * "blocked"), stops the browser afterwards, and on failure adds the browser's and the broker's
 * logs to the error.
 */
export async function withBrowser(world, mode, fn) {
  const b = await startBrowser({ thirdPartyCookies: mode });
  try {
    return await fn(b);
  } catch (e) {
    e.message += `\n--- browser log ---\n${b.log()}\n--- broker log ---\n${world.broker.log().slice(-4000)}`;
    throw e;
  } finally {
    await b.stop();
  }
}

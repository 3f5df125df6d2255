// The GMS load-balancer configurations in deploy/gms/, tested for real: Debian's nginx (with its
// njs module) and HAProxy, each started with the shipped file (only ports, node addresses and
// certificate/script paths substituted) in front of two stub GMS nodes (stub-gms.mjs), TLS with
// a certificate made here by the openssl CLI.
//
// For each balancer:
// - plain HTTPS requests from node: every Set-Cookie leaving the balancer (BAYEUX_BROWSER, the
//   balancer's affinity cookie, cookies that already carry some attributes) has SameSite=None,
//   Secure and Partitioned exactly once, and keeps its other attributes; affinity holds; browsers
//   without the affinity cookie spread over both nodes;
// - headless Chromium with third-party cookies BLOCKED: a page on https://shop.localhost calls
//   the balancer at https://gms.localhost with credentialed fetch, and a page on
//   https://support.localhost frames it: handshake, then 10 polls, all on one node, which
//   recognises its BAYEUX_BROWSER cookie;
// - the CONTROL: the same browser run through the same config with every Partitioned directive
//   stripped (generated here) loses the cookies, so the browser test can fail.
//
// Needs nginx, libnginx-mod-http-js, haproxy, openssl and chromium (Debian packages): a missing
// one fails the run, nothing is skipped.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import https from "node:https";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM, freePort, partitionSite, startBrowser, until } from "../browser/harness.mjs";
import { removeDir, startGroup, stopGroup, tempDir } from "../browser/proc.mjs";
import { PROBE_COOKIES, cometClient, startStubGms } from "./stub-gms.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DEPLOY = path.join(root, "deploy/gms");
const NGINX = process.env.NGINX_BIN ?? "/usr/sbin/nginx";
const HAPROXY = process.env.HAPROXY_BIN ?? "/usr/sbin/haproxy";
const OPENSSL = process.env.OPENSSL_BIN ?? "/usr/bin/openssl";
const NJS_MODULE = "/usr/lib/nginx/modules/ngx_http_js_module.so";
/** How many polls the browser's widget makes after its handshake. */
const POLLS = 10;

/** @type {string} */ let dir;
/** @type {{cert: string, key: string, pem: string}} */ let tls;
/** @type {Awaited<ReturnType<typeof startStubGms>>[]} */ let nodes = [];
/** @type {Awaited<ReturnType<typeof startSites>>} */ let sites;

before(async () => {
  const missing = [
    [NGINX, "nginx"],
    [NJS_MODULE, "libnginx-mod-http-js"],
    [HAPROXY, "haproxy"],
    [OPENSSL, "openssl"],
    [CHROMIUM, "chromium"],
  ].filter(([file]) => !existsSync(file));
  if (missing.length) {
    throw new Error(`missing: ${missing.map(([f]) => f).join(", ")}: apt-get install -y ${missing.map(([, p]) => p).join(" ")}`);
  }
  dir = await tempDir("gms");
  tls = await makeCertificate(dir);
  nodes = [await startStubGms("gms1"), await startStubGms("gms2")];
  sites = await startSites(tls);
});

after(async () => {
  await sites?.stop();
  for (const node of nodes) await node.stop();
  if (dir) await removeDir(dir);
});

/**
 * A self-signed certificate for gms.localhost, shop.localhost, support.localhost and 127.0.0.1,
 * made by the openssl CLI; `pem` is certificate then key in one file, as HAProxy wants it.
 * @param {string} where
 */
async function makeCertificate(where) {
  const cert = path.join(where, "cert.pem");
  const key = path.join(where, "key.pem");
  const pem = path.join(where, "cert+key.pem");
  const r = spawnSync(
    OPENSSL,
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-subj", "/CN=gms.localhost", "-addext", "subjectAltName=DNS:gms.localhost,DNS:shop.localhost,DNS:support.localhost,IP:127.0.0.1",
      "-keyout", key, "-out", cert],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`openssl failed: ${r.error ?? r.stderr}`);
  await writeFile(pem, (await readFile(cert, "utf8")) + (await readFile(key, "utf8")));
  return { cert, key, pem };
}

/**
 * The partner sites, over https with the test certificate, routed by Host:
 * - `/fetch?gms=BASE`: the page itself handshakes and polls BASE with credentialed fetch;
 * - `/frame?gms=BASE`: the page frames BASE's client page, which does the same from inside.
 * Either way `window.result` (in the page, or in the frame) is `{handshake, polls}` or `{error}`.
 * @param {{cert: string, key: string}} files
 */
async function startSites(files) {
  const server = https.createServer({ cert: await readFile(files.cert), key: await readFile(files.key) }, (req, res) => {
    const url = new URL(req.url ?? "/", "https://x");
    // Only a balancer of this test: the value goes into the page as it is.
    const gms = url.searchParams.get("gms") ?? "";
    const page = /^https:\/\/gms\.localhost:\d+$/.test(gms) && {
      "/fetch": `<script>window.result = (${String(cometClient)})(${JSON.stringify(gms)}, ${POLLS}).catch((e) => ({ error: String(e) }));</script>`,
      "/frame": `<iframe src="${gms}/genesys/test/client.html"></iframe>`,
    }[url.pathname];
    res.writeHead(page ? 200 : 404, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(page ? `<!doctype html><meta charset="utf-8"><title>partner site</title>${page}` : "not found");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
  return {
    /** @param {string} site "shop" or "support" @param {string} p */
    url: (site, p) => `https://${site}.localhost:${port}${p}`,
    stop: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve(undefined)))),
  };
}

/**
 * `text` with each `[from, to]` replaced everywhere; throws when a `from` is not in `text` (the
 * shipped file changed: the test must not silently run something else).
 * @param {string} text
 * @param {[string, string][]} pairs
 */
function substitute(text, pairs) {
  for (const [from, to] of pairs) {
    if (!text.includes(from)) throw new Error(`"${from}" is no longer in the shipped config: update the test`);
    text = text.replaceAll(from, to);
  }
  return text;
}

/**
 * The CONTROL config: `text` without the directives that add `Partitioned` (HAProxy's
 * `http-response` rule that appends it; `attr "Partitioned"`; nginx's `; Partitioned` in the
 * attribute list and in the affinity cookie). Everything else is the shipped config.
 * @param {string} text
 */
function stripPartitioned(text) {
  let changed = 0;
  const lines = text.split("\n").flatMap((line) => {
    if (line.trimStart().startsWith("#") || !/partitioned/i.test(line)) return [line];
    changed++;
    if (/^\s*http-response\s/.test(line)) return [];
    return [line.replace(/\s+attr "Partitioned"|; Partitioned/g, "")];
  });
  const left = lines.filter((l) => !l.trimStart().startsWith("#") && /partitioned/i.test(l));
  assert.ok(changed >= 2 && left.length === 0, `control: could not strip Partitioned (changed ${changed}, left ${left.join(" | ")})`);
  return lines.join("\n");
}

/**
 * An nginx main config file that runs in the foreground with its pid and temporary files in
 * `where`, logs to stderr, and holds `top` (main context) and `http` (inside `http { }`).
 * @param {string} where
 * @param {string} top
 * @param {string} http
 */
function nginxMain(where, top, http) {
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `${t}_temp_path ${where}/${t};`).join("\n  ");
  return `daemon off;\npid ${where}/nginx.pid;\nerror_log stderr notice;\nworker_processes 1;\n${top}\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n  ${temp}\n  ${http}\n}\n`;
}

/**
 * @typedef {object} Balancer
 * @property {string} name
 * @property {string} file the shipped config, in deploy/gms/
 * @property {string} affinityCookie
 * @property {(text: string, port: number) => string} render the shipped text with test ports and paths
 * @property {(config: string, where: string) => Promise<{cmd: string, args: string[], drop?: RegExp}>} command
 *   how to run it with `config` (the rendered file), `where` its own temporary directory
 */

/** @type {Balancer[]} */
const BALANCERS = [
  {
    name: "nginx",
    file: "nginx.conf",
    affinityCookie: "GMSAFFINITY",
    render: (text, port) =>
      substitute(text, [
        ["listen 443 ssl", `listen 127.0.0.1:${port} ssl`],
        ["10.0.0.11:8080", `127.0.0.1:${nodes[0].port}`],
        ["10.0.0.12:8080", `127.0.0.1:${nodes[1].port}`],
        ["/etc/ssl/gms/gms.example.com.crt", tls.cert],
        ["/etc/ssl/gms/gms.example.com.key", tls.key],
        ["/etc/nginx/gms-cookies.js", path.join(DEPLOY, "gms-cookies.js")],
      ]),
    // The shipped file is what Debian's /etc/nginx/nginx.conf includes inside `http { }`; this
    // stands in for that main file, with its paths in the test's directory.
    command: async (config, where) => {
      const main = path.join(where, "main.conf");
      await writeFile(main, nginxMain(where, `load_module ${NJS_MODULE};`, `include ${config};`));
      return { cmd: NGINX, args: ["-p", where, "-c", main] };
    },
  },
  {
    name: "haproxy",
    file: "haproxy.cfg",
    affinityCookie: "SERVERID",
    render: (text, port) =>
      substitute(text, [
        ["bind :443 ssl", `bind 127.0.0.1:${port} ssl`],
        ["10.0.0.11:8080", `127.0.0.1:${nodes[0].port}`],
        ["10.0.0.12:8080", `127.0.0.1:${nodes[1].port}`],
        ["/etc/haproxy/certs/gms.example.com.pem", tls.pem],
      ]),
    // `log /dev/log`: where no syslog listens (a container) HAProxy says so on every request.
    command: async (config) => ({ cmd: HAPROXY, args: ["-db", "-f", config], drop: /failed in logger/ }),
  },
];

/**
 * Starts balancer `lb` on a free port with its shipped config (or `transform` of it).
 * @param {Balancer} lb
 * @param {(text: string) => string} [transform]
 */
async function startBalancer(lb, transform = (t) => t) {
  const where = await tempDir(`gms-${lb.name}`);
  const port = await freePort();
  const config = path.join(where, lb.file);
  await writeFile(config, transform(lb.render(await readFile(path.join(DEPLOY, lb.file), "utf8"), port)));
  const { cmd, args, drop } = await lb.command(config, where);
  const child = startGroup(cmd, args, drop);
  const stop = async () => {
    await stopGroup(child);
    await removeDir(where);
  };
  try {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`${lb.name} exited with ${child.exitCode}`);
      return (await request(port, "GET", "/genesys/test/cookies")).status === 200;
    }, `${lb.name} to answer on ${port}`);
  } catch (e) {
    await stop();
    throw new Error(`${/** @type {Error} */ (e).message}\n--- ${lb.name} output ---\n${child.output}`);
  }
  return { port, config, log: () => child.output, stop };
}

/**
 * One HTTPS request to the balancer as a browser would send it to https://gms.localhost:PORT
 * (the test certificate accepted), on a fresh connection.
 * @param {number} port
 * @param {string} method
 * @param {string} p
 * @param {Record<string, string>} [cookies]
 * @returns {Promise<{status: number, setCookies: string[], body: any}>}
 */
function request(port, method, p, cookies = {}) {
  const cookie = Object.entries(cookies).map(([k, v]) => `${k}=${v}`).join("; ");
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path: p,
        servername: "gms.localhost",
        rejectUnauthorized: false,
        agent: false,
        headers: { host: `gms.localhost:${port}`, "content-type": "application/json", ...(cookie ? { cookie } : {}) },
      },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => {
          let body;
          try {
            body = JSON.parse(text);
          } catch {
            body = text;
          }
          resolve({ status: res.statusCode ?? 0, setCookies: res.headers["set-cookie"] ?? [], body });
        });
      },
    );
    req.on("error", reject);
    req.end(method === "POST" ? "[]" : undefined);
  });
}

/**
 * A Set-Cookie header's `name=value` and its attributes as `[lower-case name, value]`.
 * @param {string} header
 */
function parseSetCookie(header) {
  const [pair, ...rest] = header.split(";").map((s) => s.trim());
  const attributes = rest
    .filter((a) => a !== "")
    .map((a) => {
      const eq = a.indexOf("=");
      return eq < 0 ? [a.toLowerCase(), ""] : [a.slice(0, eq).trim().toLowerCase(), a.slice(eq + 1).trim()];
    });
  return { pair, name: pair.slice(0, pair.indexOf("=")), attributes };
}

/**
 * Asserts that `header` carries SameSite=None, Secure and Partitioned exactly once each, and
 * otherwise exactly the attributes of `original` (its other attributes, as `name=value` strings
 * with lower-case names), and the same `name=value`.
 * @param {string} header as it left the balancer
 * @param {string} original as the node sent it, or as the balancer is meant to make it
 */
function assertCrossSite(header, original) {
  const got = parseSetCookie(header);
  const want = parseSetCookie(original);
  const count = (/** @type {string} */ n) => got.attributes.filter(([k]) => k === n).length;
  for (const n of ["samesite", "secure", "partitioned"]) assert.equal(count(n), 1, `${n} exactly once in: ${header}`);
  assert.equal(got.attributes.find(([k]) => k === "samesite")?.[1].toLowerCase(), "none", `SameSite=None in: ${header}`);
  assert.equal(got.pair, want.pair, header);
  const others = (/** @type {string[][]} */ attrs) =>
    attrs.filter(([k]) => !["samesite", "secure", "partitioned"].includes(k)).map(([k, v]) => `${k}=${v}`).sort();
  assert.deepEqual(others(got.attributes), others(want.attributes), `other attributes kept as they were in: ${header}`);
}

/** The `name=value` cookies set by `setCookies`, as an object. @param {string[]} setCookies */
const jar = (setCookies) => Object.fromEntries(setCookies.map((h) => parseSetCookie(h).pair.split(/=(.*)/s).slice(0, 2)));

/**
 * Runs the widget in `b` twice against the balancer on `port`: from a page of shop (credentialed
 * fetch) and from a frame of the balancer in a page of support.
 * @param {Awaited<ReturnType<typeof startBrowser>>} b
 * @param {number} port
 */
async function runWidgets(b, port) {
  const gms = `https://gms.localhost:${port}`;
  const shop = await b.newPage();
  await shop.goto(sites.url("shop", `/fetch?gms=${encodeURIComponent(gms)}`));
  const viaFetch = await until(() => shop.evaluate(() => /** @type {any} */ (window).result), "the shop page's widget", 15000);
  const support = await b.newPage();
  await support.goto(sites.url("support", `/frame?gms=${encodeURIComponent(gms)}`));
  const frame = await until(async () => support.frames().find((f) => f.url().startsWith(`${gms}/`)), "the GMS frame in support");
  const viaFrame = await until(() => frame.evaluate(() => /** @type {any} */ (window).result), "the framed widget", 15000);
  return { viaFetch, viaFrame };
}

/**
 * Headless Chromium, third-party cookies blocked, accepting the test certificate. The browser
 * target's `Security.setIgnoreCertificateErrors` is what `--ignore-certificate-errors` does; it
 * holds while this DevTools session stays attached (until `stop`). Secure and Partitioned
 * cookies are stored either way (checked through `cookies()` in the tests).
 */
async function blockedChromium() {
  const b = await startBrowser({ thirdPartyCookies: "blocked" });
  try {
    const cdp = await b.browser.newBrowserCDPSession();
    await cdp.send("Security.setIgnoreCertificateErrors", { ignore: true });
  } catch (e) {
    await b.stop();
    throw e;
  }
  return b;
}

/** The node (and what it made of BAYEUX_BROWSER) of each answer, for failure messages. @param {any} r a widget result */
const trail = (r) => JSON.stringify(r.error ?? [r.handshake.node, ...r.polls.map((/** @type {any} */ p) => `${p.node}:${p.browser}`)]);

for (const lb of BALANCERS) {
  describe(`${lb.name} (deploy/gms/${lb.file})`, () => {
    /** @type {Awaited<ReturnType<typeof startBalancer>>} */
    let balancer;
    before(async () => {
      balancer = await startBalancer(lb);
    });
    after(async () => {
      await balancer?.stop();
    });

    test("every Set-Cookie leaving the balancer has SameSite=None, Secure and Partitioned exactly once, and keeps its other attributes", async () => {
      const hs = await request(balancer.port, "POST", "/genesys/cometd/handshake");
      assert.equal(hs.status, 200);
      const byName = Object.fromEntries(hs.setCookies.map((h) => [parseSetCookie(h).name, h]));
      assert.deepEqual(Object.keys(byName).sort(), ["BAYEUX_BROWSER", lb.affinityCookie].sort(), hs.setCookies.join("\n"));
      const browser = parseSetCookie(byName.BAYEUX_BROWSER).pair;
      assertCrossSite(byName.BAYEUX_BROWSER, `${browser}; Path=/; HttpOnly`);
      const affinity = parseSetCookie(byName[lb.affinityCookie]).pair;
      assertCrossSite(byName[lb.affinityCookie], `${affinity}; Path=/; HttpOnly`);

      // Cookies that already carry some of the attributes, in any letter case.
      const probe = await request(balancer.port, "GET", "/genesys/test/cookies");
      const sent = probe.setCookies.filter((h) => parseSetCookie(h).name !== lb.affinityCookie);
      assert.equal(sent.length, PROBE_COOKIES.length, probe.setCookies.join("\n"));
      PROBE_COOKIES.forEach((original, i) => assertCrossSite(sent[i], original));
    });

    test("affinity: 20 polls with the cookies reach the node that handshook, which knows its BAYEUX_BROWSER", async () => {
      const hs = await request(balancer.port, "POST", "/genesys/cometd/handshake");
      const cookies = jar(hs.setCookies);
      for (let i = 0; i < 20; i++) {
        const poll = await request(balancer.port, "POST", "/genesys/cometd/connect", cookies);
        assert.deepEqual([poll.body.node, poll.body.browser], [hs.body.node, "own"], `poll ${i}`);
        // The affinity cookie is set once, not on every answer.
        assert.deepEqual(poll.setCookies, [], `poll ${i} set no cookie`);
      }
    });

    test("without the affinity cookie the polls spread over both nodes, and the other node does not know the BAYEUX_BROWSER", async () => {
      const hs = await request(balancer.port, "POST", "/genesys/cometd/handshake");
      const only = { BAYEUX_BROWSER: jar(hs.setCookies).BAYEUX_BROWSER };
      const seen = new Map();
      for (let i = 0; i < 20; i++) {
        const { body } = await request(balancer.port, "POST", "/genesys/cometd/connect", only);
        seen.set(body.node, body.browser);
      }
      const other = hs.body.node === "gms1" ? "gms2" : "gms1";
      assert.deepEqual(Object.fromEntries(seen), { [hs.body.node]: "own", [other]: "foreign" });
    });

    test("new browsers land on either node", async () => {
      const landed = new Set();
      for (let i = 0; i < 12 && landed.size < 2; i++) landed.add((await request(balancer.port, "POST", "/genesys/cometd/handshake")).body.node);
      assert.deepEqual([...landed].sort(), ["gms1", "gms2"]);
    });

    test("Chromium, third-party cookies blocked: the partitioned cookies are kept and sent, every poll reaches the node that handshook and it knows its BAYEUX_BROWSER", async () => {
      const b = await blockedChromium();
      try {
        const { viaFetch, viaFrame } = await runWidgets(b, balancer.port);
        for (const [how, r] of [["shop page, fetch", viaFetch], ["support page, iframe", viaFrame]]) {
          assert.ok(!r.error && r.polls.length === POLLS, `${how}: ${trail(r)}`);
          const ok = r.polls.every((/** @type {any} */ p) => p.node === r.handshake.node && p.browser === "own");
          assert.ok(ok, `${how}: every poll on the handshake's node and known there: ${trail(r)}`);
        }
        // What Chromium keeps: both cookies, once per top-level site (partitioned), none shared.
        const gms = (await b.cookies()).filter((c) => c.domain === "gms.localhost");
        const kept = gms.map((c) => `${c.name} ${partitionSite(c) ?? "unpartitioned"}`).sort();
        const expected = ["BAYEUX_BROWSER", lb.affinityCookie].flatMap((n) => ["shop", "support"].map((s) => `${n} https://${s}.localhost`)).sort();
        assert.deepEqual(kept, expected);
        assert.ok(gms.every((c) => c.secure && c.sameSite === "None"), JSON.stringify(gms));
        // One CometD browser per site: the two partitions hold different BAYEUX_BROWSER cookies.
        const browsers = new Set(gms.filter((c) => c.name === "BAYEUX_BROWSER").map((c) => c.value));
        assert.equal(browsers.size, 2);
      } catch (e) {
        /** @type {Error} */ (e).message += `\n--- browser log ---\n${b.log()}\n--- ${lb.name} ---\n${balancer.log().slice(-3000)}`;
        throw e;
      } finally {
        await b.stop();
      }
    });

    test("CONTROL: the same config without its Partitioned directives loses the cookies in Chromium with third-party cookies blocked", async () => {
      const control = await startBalancer(lb, stripPartitioned);
      const b = await blockedChromium();
      try {
        // The control differs only there: its cookies lack Partitioned and nothing else.
        const hs = await request(control.port, "POST", "/genesys/cometd/handshake");
        assert.equal(hs.setCookies.length, 2);
        for (const h of hs.setCookies) assert.ok(!/partitioned/i.test(h) && /samesite=none/i.test(h) && /secure/i.test(h), h);

        const { viaFetch, viaFrame } = await runWidgets(b, control.port);
        for (const [how, r] of [["shop page, fetch", viaFetch], ["support page, iframe", viaFrame]]) {
          assert.ok(!r.error && r.polls.length === POLLS, `${how}: ${trail(r)}`);
          // The browser test's condition fails here...
          const ok = r.polls.every((/** @type {any} */ p) => p.node === r.handshake.node && p.browser === "own");
          assert.ok(!ok, `${how}: ${trail(r)}`);
          // ...because no poll carried a BAYEUX_BROWSER cookie: Chromium dropped it.
          assert.ok(r.polls.every((/** @type {any} */ p) => p.browser === "none"), `${how}: ${trail(r)}`);
        }
        const gms = (await b.cookies()).filter((c) => c.domain === "gms.localhost");
        assert.deepEqual(gms, [], "Chromium kept no gms.localhost cookie");
      } finally {
        await b.stop();
        await control.stop();
      }
    });
  });
}

// What nginx 1.22 itself can do, measured: the reason nginx.conf needs the njs script.
test("nginx 1.22: proxy_cookie_flags accepts `partitioned` but adds nothing (so nginx.conf uses njs)", async () => {
  const where = await tempDir("gms-nginx-flags");
  const port = await freePort();
  const main = path.join(where, "main.conf");
  await writeFile(
    main,
    nginxMain(
      where,
      "",
      `server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    location / {
      proxy_pass http://127.0.0.1:${nodes[0].port};
      proxy_cookie_flags ~ secure samesite=none partitioned;
    }
  }`,
    ),
  );
  const child = startGroup(NGINX, ["-p", where, "-c", main]);
  try {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${child.output}`);
      return (await request(port, "GET", "/")).status === 404;
    }, "nginx");
    const hs = await request(port, "POST", "/genesys/cometd/handshake");
    assert.equal(hs.setCookies.length, 1);
    assert.match(hs.setCookies[0], /^BAYEUX_BROWSER=\w+; Path=\/; HttpOnly; Secure; SameSite=None$/);
  } finally {
    await stopGroup(child);
    await removeDir(where);
  }
});

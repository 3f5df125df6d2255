#!/usr/bin/env node
// The browser-side cost of baton's restore path, as a ratio against a bare cross-site iframe
// measured in the same run, in the same browser, in the same rounds (bench/README.md,
// "browser.mjs").
//
// One partner page shape on shop.localhost, two contents:
// - reference: the page frames a minimal page of another site (echo.localhost), waits for its
//   `load`, and does one postMessage round trip with it;
// - baton: the page loads the broker's cookie-provider.min.js in <head>, as Genesys pages do,
//   and restores the chat with `new CookieProvider(NAME, IFRAME_URL).loadCookie()`, a session
//   present; and the fast embed: the same, but the page writes the broker's iframe itself
//   (`<iframe src=IFRAME_URL hidden>` first in <body>, the library right after it), so that the
//   iframe page loads alongside the library instead of after it.
// Each in two situations: a first visit (the browser's cache holds neither the library nor the
// iframe page: their URLs carry a query never used before) and a repeat visit (the same URLs as
// the load just before).
//
// In every engine the engine suites drive (Chromium, Firefox ESR, WebKitGTK; tests/browser/
// engines/), one cookie mode after another, one browser at a time, against the real broker
// binary (BATON_BIN, or target/debug/baton). Every server the pages reach sits behind a delaying
// TCP proxy (bench/delay.mjs, --rtt ms of round trip, 40 by default), so all engines see the same
// network. Within a round the cases take turns in an order that rotates from round to round;
// each timed page load follows an untimed load of the same page kind. Speed is only printed: the
// run fails (exit 1) on errors alone: a wrong value, a page that does not load, a promise that
// rejects.
//
//   cargo build && node bench/browser.mjs [--rounds N] [--warmup N] [--rtt MS] [--cells LIST] [--quick]
import os from "node:os";
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { onFreePort, runBroker } from "../tests/browser/harness.mjs";
import { launch } from "../tests/browser/engines/index.mjs";
import { startSiteServer, startTlsProxy } from "../tests/browser/engines/sites.mjs";
import { startDelayProxy } from "./delay.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const NAME = "customer-defined-session-cookie";
const VALUE = "%7B%22chatId%22%3A%22chat-bench%22%7D";
/** Longest any one page may take to produce its result before the run fails. */
const PAGE_TIMEOUT = 15000;
/** The cells measured by default: each engine's default, and the other kind of mode where it
 * has one (Chromium's default here blocks third-party cookies; WebKit's keeps none: page mode). */
const DEFAULT_CELLS = ["chromium blocked", "chromium allowed", "firefox default", "webkit default", "webkit always"];
/** What `mode()` says in each cell (tests/browser/engines/cells.test.mjs). */
const EXPECTED_MODE = {
  "chromium allowed": "unpartitioned",
  "chromium blocked": "partitioned",
  "firefox default": "partitioned",
  "firefox allowed": "unpartitioned",
  "firefox blocked": "page",
  "firefox strict": "partitioned",
  "webkit default": "page",
  "webkit always": "unpartitioned",
  "webkit itp": "page",
};

function parseArgs(argv) {
  const opts = { rounds: 20, warmup: 2, rtt: 40, cells: DEFAULT_CELLS };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${a} needs a whole number`);
      return n;
    };
    if (a === "--rounds") opts.rounds = num();
    else if (a === "--warmup") opts.warmup = num();
    else if (a === "--rtt") opts.rtt = num();
    else if (a === "--cells") opts.cells = String(argv[++i]).split(",").map((c) => c.trim().replace(":", " "));
    else if (a === "--quick") Object.assign(opts, { rounds: 5, warmup: 1 });
    else if (a === "-h" || a === "--help") {
      console.log(`usage: node bench/browser.mjs [--rounds N (20)] [--warmup N (2)] [--rtt MS (40; 0: no proxy)] [--cells "chromium blocked,firefox default,..."] [--quick]`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const c of opts.cells) if (!(c in EXPECTED_MODE)) throw new Error(`unknown cell "${c}": one of ${Object.keys(EXPECTED_MODE).join(", ")}`);
  if (opts.rounds < 1) throw new Error("--rounds must be at least 1");
  if (opts.rtt % 2) throw new Error("--rtt must be even (half of it each way)");
  return opts;
}

/**
 * The partner pages, rendered per request (the `v` of the query goes into the URLs of what the
 * page loads, so a new `v` is a first visit). Each page sets `window.result`, a promise of
 * `{value, call, nav}`: the value read; ms from the line that starts the work (creating the
 * iframe, or the provider); ms since the document's navigation start.
 * @param {{shop: string, echo: string, broker: string}} origins
 */
function pages(origins, lib) {
  const done = `(value) => ({ value, call: performance.now() - t0, nav: performance.now() })`;
  /** @type {Record<string, (v: string) => string>} */
  const byPath = {
    "/frame.html": () => `<!doctype html><meta charset="utf-8"><title>echo</title>
<script>addEventListener("message", (e) => e.source.postMessage({ echo: e.data && e.data.ping }, e.origin));</script>`,
    // The bare iframe: hidden, added to <body> as the library adds its own, one round trip once loaded.
    "/bench/ref": (v) => `<!doctype html><meta charset="utf-8"><title>ref</title>
<script>
const t0 = performance.now();
const ECHO = ${JSON.stringify(origins.echo)};
const frame = document.createElement("iframe");
const nonce = String(Math.random());
window.result = new Promise((resolve, reject) => {
  addEventListener("message", (e) => {
    if (e.source !== frame.contentWindow || e.origin !== ECHO) return;
    e.data && e.data.echo === nonce ? resolve(nonce) : reject(new Error("wrong echo " + JSON.stringify(e.data)));
  });
  frame.onload = () => frame.contentWindow.postMessage({ ping: nonce }, ECHO);
}).then(${done}).then((r) => ({ ...r, value: r.value === nonce ? "echo" : r.value }));
frame.src = ECHO + "/frame.html?v=${v}";
frame.title = "ref";
frame.style.display = "none";
const add = () => document.body.appendChild(frame);
document.body ? add() : addEventListener("DOMContentLoaded", add);
</script>
<body><h1>shop: ref</h1></body>`,
    // The same, after a script as large as the library from a third site, loaded as the library
    // is (in <head>, cacheable for 5 minutes): what any third-party script costs a first visit.
    "/bench/ref-script": (v) => byPath["/bench/ref"](v).replace("<script>", `<script src="${origins.echo}/lib.js?v=${v}"></script>\n<script>`),
    "/lib.js": () => lib,
    "/bench/genesys": (v) => `<!doctype html><meta charset="utf-8"><title>genesys</title>
<script src="${origins.broker}/cookie-provider.min.js?v=${v}"></script>
<script>
const IFRAME_URL = ${JSON.stringify(`${origins.broker}/iframe.html?v=${v}`)};
const t0 = performance.now();
let cookieProvider = new CookieProvider(${JSON.stringify(NAME)}, IFRAME_URL);
window.result = cookieProvider.loadCookie().then(${done});
</script>
<body><h1>shop: genesys</h1></body>`,
    // The fast embed: the page writes the iframe, the library adopts it (docs/genesys.md).
    "/bench/genesys-frame": (v) => `<!doctype html><meta charset="utf-8"><title>genesys, frame</title>
<body>
<iframe src="${origins.broker}/iframe.html?v=${v}" hidden></iframe>
<script src="${origins.broker}/cookie-provider.min.js?v=${v}"></script>
<script>
const IFRAME_URL = ${JSON.stringify(`${origins.broker}/iframe.html?v=${v}`)};
const t0 = performance.now();
let cookieProvider = new CookieProvider(${JSON.stringify(NAME)}, IFRAME_URL);
// Measured only if the library adopted the page's iframe rather than making one of its own.
window.result = cookieProvider.loadCookie().then(${done}).then((r) => (document.getElementsByTagName("iframe").length === 1 ? r : Promise.reject(new Error("the library made an iframe of its own"))));
</script>
<h1>shop: genesys, the page writes the iframe</h1>
</body>`,
    // Untimed: saves the session the timed pages restore.
    "/bench/save": (v) => `<!doctype html><meta charset="utf-8"><title>save</title>
<script src="${origins.broker}/cookie-provider.min.js?v=${v}"></script>
<script>
const c = Baton.connect(${JSON.stringify(`${origins.broker}/iframe.html?v=${v}`)});
window.result = c.set(${JSON.stringify(NAME)}, ${JSON.stringify(VALUE)}).then(() => c.mode()).then((value) => ({ value }));
</script>`,
  };
  return byPath;
}

/**
 * The sites of one run, in `scheme`, each behind a delaying proxy when `rtt` > 0: the partner
 * server (shop and echo, by `Host`) and the real broker (over https behind a TLS terminator).
 */
async function startSites(/** @type {"http" | "https"} */ scheme, /** @type {number} */ rtt) {
  const stops = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    const delayed = async (port) => {
      if (!rtt) return port;
      const p = await startDelayProxy(port, rtt / 2);
      stops.push(p.stop);
      return p.port;
    };
    /** @type {Record<string, (v: string) => string>} */
    let byPath = {};
    const server = await startSiteServer(scheme, (req, res, at) => {
      if (at.path === "/favicon.ico") return void res.writeHead(204).end() || true;
      const page = byPath[at.path];
      if (!page) return false;
      const v = new URL(req.url ?? "/", "http://x").searchParams.get("v") ?? "0";
      const js = at.path.endsWith(".js");
      res
        .writeHead(200, {
          "content-type": `text/${js ? "javascript" : "html"}; charset=utf-8`,
          "cache-control": js ? "public, max-age=300, must-revalidate" : "no-store",
        })
        .end(page(v.replace(/[^\w-]/g, "")));
      return true;
    });
    stops.push(server.stop);
    const partnerPort = await delayed(server.port);
    const site = (name) => `${scheme}://${name}.localhost:${partnerPort}`;
    const broker = await onFreePort(async (plain) => {
      let front = plain;
      const local = [];
      if (scheme === "https") {
        const tls = await startTlsProxy(plain, { collect: false });
        local.push(tls.stop);
        front = tls.port;
      }
      const port = await delayed(front);
      const origin = `${scheme}://broker.localhost:${port}`;
      try {
        const b = await runBroker(plain, origin, [site("shop")], "");
        return { origin, plain, stop: async () => { await b.stop(); for (const s of local) await s(); } };
      } catch (e) {
        for (const s of local) await s();
        throw e;
      }
    });
    stops.push(broker.stop);
    // The run must measure the shipped scripts: a binary built before the last `npm run build`
    // serves older ones.
    for (const name of ["cookie-provider.js", "iframe.js"]) {
      const served = await (await fetch(`http://127.0.0.1:${broker.plain}/${name}`)).text();
      if (served !== (await readFile(path.join(root, "static", name), "utf8")))
        throw new Error(`the broker binary serves a ${name} that differs from static/${name}: rebuild it (cargo build)`);
    }
    byPath = pages({ shop: site("shop"), echo: site("echo"), broker: broker.origin }, await readFile(path.join(root, "static", "cookie-provider.js"), "utf8"));
    // `n`: every page load its own URL, so that no engine takes a load for a reload of the one
    // before (a reload revalidates what a new visit takes from the cache); `v` names what it loads.
    return { url: (p, v) => `${site("shop")}${p}?v=${v}&n=${newV()}`, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Loads `url` in `page`, checks its value, resolves with its timings. */
async function load(page, url, expected, what) {
  await page.goto(url);
  const r = await page.evaluate(
    `Promise.race([window.result.then((r) => r, (e) => ({ error: (e && (e.code || e.message)) || String(e) })), new Promise((resolve) => setTimeout(resolve, ${PAGE_TIMEOUT}, { error: "no result in time" }))])`,
  );
  if (!r || r.error) throw new Error(`${what}: ${r ? r.error : "no result"}`);
  if (r.value !== expected) throw new Error(`${what}: value ${JSON.stringify(r.value)}, expected ${JSON.stringify(expected)}`);
  return r;
}

let fresh = 0;
/** A query value never used before in this run: a first visit for the browser's cache. */
const newV = () => `${process.pid}-${++fresh}`;

/**
 * The cases of one round: each a timed load after an untimed one of the same page kind. First
 * visit: the untimed load with one `v`, the timed one with a new `v` (nothing of it cached);
 * repeat visit: both with the same `v`. The reference has nothing to cache (its pages are
 * `no-store`), so its two situations are the same measure taken twice; its second repeat-visit
 * sample is the noise row.
 */
function roundCases(page, sites) {
  const timed = (kind, first, expected, what) => async () => {
    const v = newV();
    await load(page, sites.url(`/bench/${kind}`, v), expected, `${what} (untimed, first)`);
    return load(page, sites.url(`/bench/${kind}`, first ? newV() : v), expected, what);
  };
  return [
    { row: "first visit", side: "ref", run: timed("ref", true, "echo", "reference, first visit") },
    { row: "first visit", side: "baton", run: timed("genesys", true, VALUE, "loadCookie(), first visit") },
    { row: "first visit, page writes the iframe", side: "baton", run: timed("genesys-frame", true, VALUE, "loadCookie(), the page's iframe, first visit") },
    { row: "first visit, against iframe + a script", side: "ref", run: timed("ref-script", true, "echo", "reference with a script, first visit") },
    { row: "repeat visit", side: "ref", run: timed("ref", false, "echo", "reference, repeat visit") },
    { row: "repeat visit", side: "baton", run: timed("genesys", false, VALUE, "loadCookie(), repeat visit") },
    { row: "repeat visit, page writes the iframe", side: "baton", run: timed("genesys-frame", false, VALUE, "loadCookie(), the page's iframe, repeat visit") },
    { row: "noise, reference vs itself", side: "baton", run: timed("ref", false, "echo", "reference, noise") },
  ];
}

/** Rotates `xs` left by `n`. */
const rotate = (xs, n) => xs.map((_, i) => xs[(i + n) % xs.length]);

/** The p-th percentile (nearest rank) of `xs`. */
function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function describeMachine(opts) {
  const head = (() => {
    try {
      return execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    } catch {
      return "?";
    }
  })();
  const bin = process.env.BATON_BIN ?? path.join(root, "target/debug/baton");
  return [
    `machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
    `node ${process.version}; round trip added to every server: ${opts.rtt} ms (${opts.rtt / 2} ms each way)`,
    `baton: ${bin} (built ${statSync(bin).mtime.toISOString()}), repository HEAD ${head}`,
  ].join("\n");
}

function printTable(cell, rows, opts) {
  const ms = (x) => `${x.toFixed(0)} ms`;
  for (const [title, metric] of [
    ["from page start (the document's navigation start)", "nav"],
    ["from the call (the script line that creates the iframe or the provider)", "call"],
  ]) {
    console.log(`\n${cell}, ${title}, ${opts.rounds} rounds, median and p90:\n`);
    const header = ["case", "ref median", "baton median", "ratio", "pair ratios", "ref p90", "baton p90", "ratio p90"];
    const lines = [...rows.entries()].map(([row, s]) => {
      const ref = s.ref.map((x) => x[metric]);
      const bat = s.baton.map((x) => x[metric]);
      const [rm, bm, rp, bp] = [percentile(ref, 50), percentile(bat, 50), percentile(ref, 90), percentile(bat, 90)];
      const pairs = bat.map((x, i) => x / ref[i]);
      const spread = `${percentile(pairs, 50).toFixed(2)} (${percentile(pairs, 10).toFixed(2)}-${percentile(pairs, 90).toFixed(2)})`;
      return [row, ms(rm), ms(bm), (bm / rm).toFixed(2), spread, ms(rp), ms(bp), (bp / rp).toFixed(2)];
    });
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
    const fmt = (l) => `| ${l.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ")} |`;
    console.log(fmt(header));
    console.log(`|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|")}|`);
    for (const l of lines) console.log(fmt(l));
  }
}

/** Measures one cell ("engine mode"): its own browser and sites, then its rounds. */
async function measureCell(cell, opts) {
  const [engine, mode] = cell.split(" ");
  const sites = await startSites(engine === "webkit" ? "https" : "http", opts.rtt);
  let b;
  try {
    b = await launch(/** @type {any} */ (engine), mode);
    const page = await b.open("about:blank");
    // The session every timed page restores, and what the table says about the cell: its mode.
    const saved = await load(page, sites.url("/bench/save", newV()), EXPECTED_MODE[cell], `${cell}: saving the session`).catch((e) => {
      throw new Error(`${e.message} (the broker's mode there must be ${EXPECTED_MODE[cell]})`);
    });
    void saved;
    /** @type {Map<string, {ref: any[], baton: any[]}>} */
    const rows = new Map();
    for (const c of roundCases(page, sites)) rows.set(c.row, { ref: [], baton: [] });
    const total = opts.warmup + opts.rounds;
    const started = Date.now();
    for (let round = 0; round < total; round++) {
      for (const c of rotate(roundCases(page, sites), round)) {
        const sample = await c.run();
        if (round >= opts.warmup) rows.get(c.row)[c.side].push(sample);
      }
      process.stderr.write(`${cell}: round ${round + 1}/${total}${round < opts.warmup ? " (warm-up)" : ""}, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    }
    // The noise row's reference is the repeat visit's (the same measure, taken twice a round);
    // the first visit's baton samples stand against both references.
    rows.get("noise, reference vs itself").ref = rows.get("repeat visit").ref;
    rows.get("first visit, against iframe + a script").baton = rows.get("first visit").baton;
    // The fast embed's rows stand against the bare iframe of their situation.
    rows.get("first visit, page writes the iframe").ref = rows.get("first visit").ref;
    rows.get("repeat visit, page writes the iframe").ref = rows.get("repeat visit").ref;
    printTable(cell, rows, opts);
  } finally {
    await b?.stop();
    await sites.stop();
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  console.log(describeMachine(opts));
  const started = Date.now();
  for (const cell of opts.cells) await measureCell(cell, opts);
  console.log(`\nratio = baton / reference: median over median, p90 over p90; pair ratios: each round's baton
sample over the same round's reference sample, median (p10-p90). The noise rows measure the
reference against itself in the same rounds: their distance from 1.00 is what noise alone did.`);
  console.log(`load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}; ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`bench/browser.mjs failed: ${e.stack ?? e}`);
    process.exit(1);
  },
);

#!/usr/bin/env node
// The browser-side cost of baton, as a ratio against a bare cross-site iframe measured in the
// same run, in the same browsers, in the same rounds (bench/README.md, "browser.mjs").
//
// One partner page shape on shop.localhost, two contents:
// - reference: the page frames a minimal page of another site (echo.localhost, served by the
//   test partner server), waits for its `load`, and does one postMessage round trip with it;
// - baton: the page loads the broker's cookie-provider.min.js and asks for the session's value,
//   either the Genesys way (`new CookieProvider(...).loadCookie()`) or the promise API
//   (`Baton.connect(IFRAME_URL).get(key)`), with a session present.
// And a link click from shop to support, each side's page doing the same on arrival (for baton:
// the handoff token minted on shop, redeemed on support, then the value read).
//
// Everything runs in headless Chromium started by tests/browser/harness.mjs, third-party
// cookies allowed and blocked (both browsers up for the whole run, their rounds alternating),
// against the real broker binary (BATON_BIN, or target/debug/baton). Within a round the cases
// take turns in an order that rotates from round to round; each timed page load follows an
// untimed load of the same page. Speed is only printed: the run fails
// (exit 1) on errors alone, a wrong value, a page that does not load, a promise that rejects.
//
//   cargo build && node bench/browser.mjs [--rounds N] [--warmup N] [--quick]
import os from "node:os";
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startBrowser, startWorld } from "../tests/browser/harness.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const NAME = "customer-defined-session-cookie";
const VALUE = "%7B%22chatId%22%3A%22chat-bench%22%7D";
/** Longest any one page may take to produce its result before the run fails. */
const PAGE_TIMEOUT = 15000;
const MODES = /** @type {const} */ (["allowed", "blocked"]);

function parseArgs(argv) {
  const opts = { rounds: 30, warmup: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${a} needs a whole number`);
      return n;
    };
    if (a === "--rounds") opts.rounds = num();
    else if (a === "--warmup") opts.warmup = num();
    else if (a === "--quick") Object.assign(opts, { rounds: 5, warmup: 1 });
    else if (a === "-h" || a === "--help") {
      console.log("usage: node bench/browser.mjs [--rounds N (default 30)] [--warmup N (default 2)] [--quick]");
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (opts.rounds < 1) throw new Error("--rounds must be at least 1");
  return opts;
}

/**
 * The bench pages, on shop and support (each links to the other's page of the same kind), and the
 * echo page on echo.localhost. Each page sets `window.result`, a promise of
 * `{value, call, nav, at}`: the value read; ms from the line that starts the work (creating the
 * iframe, or the provider); ms since the document's navigation start; and the absolute time
 * (`performance.timeOrigin + now`), to time a link click across two documents.
 */
function addPages(partners, broker) {
  const echo = partners.origin("echo");
  partners.page(
    "echo",
    "/frame.html",
    `<!doctype html><meta charset="utf-8"><title>echo</title>
<script>addEventListener("message", (e) => e.source.postMessage({ echo: e.data && e.data.ping }, e.origin));</script>`,
  );
  const done = `(value) => ({ value, call: performance.now() - t0, nav: performance.now(), at: performance.timeOrigin + performance.now() })`;
  const body = (site, kind) => {
    const other = site === "shop" ? "support" : "shop";
    return `<body><h1>${site}: ${kind}</h1><a id="go" href="${partners.url(other, `/bench/${kind}`)}">${other}</a></body>`;
  };
  for (const site of ["shop", "support"]) {
    // The bare iframe: hidden, added to <body> as the library adds its own, one round trip once loaded.
    partners.page(
      site,
      "/bench/ref",
      `<!doctype html><meta charset="utf-8"><title>${site}: ref</title>
<script>window.arrivedHash = location.hash;</script>
<script>
const t0 = performance.now();
const ECHO = ${JSON.stringify(echo)};
const frame = document.createElement("iframe");
const nonce = String(Math.random());
window.result = new Promise((resolve, reject) => {
  addEventListener("message", (e) => {
    if (e.source !== frame.contentWindow || e.origin !== ECHO) return;
    e.data && e.data.echo === nonce ? resolve(nonce) : reject(new Error("wrong echo " + JSON.stringify(e.data)));
  });
  frame.onload = () => frame.contentWindow.postMessage({ ping: nonce }, ECHO);
}).then(${done}).then((r) => ({ ...r, value: r.value === nonce ? "echo" : r.value }));
frame.src = ECHO + "/frame.html";
frame.title = "ref";
frame.style.display = "none";
const add = () => document.body.appendChild(frame);
document.body ? add() : addEventListener("DOMContentLoaded", add);
</script>
${body(site, "ref")}`,
    );
    const head = (kind) => `<!doctype html><meta charset="utf-8"><title>${site}: ${kind}</title>
<script>window.arrivedHash = location.hash;</script>
<script src="${broker.origin}/cookie-provider.min.js"></script>
<script>
const IFRAME_URL = ${JSON.stringify(broker.iframeUrl)};
const SESSION_COOKIE_NAME = ${JSON.stringify(NAME)};
const t0 = performance.now();`;
    partners.page(
      site,
      "/bench/genesys",
      `${head("genesys")}
let cookieProvider = new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL);
window.result = cookieProvider.loadCookie().then(${done});
</script>
${body(site, "genesys")}`,
    );
    partners.page(
      site,
      "/bench/connect",
      `${head("connect")}
window.result = Baton.connect(IFRAME_URL).get(SESSION_COOKIE_NAME).then(${done});
</script>
${body(site, "connect")}`,
    );
  }
}

/** `page`'s `window.result`, or an error naming `what` if it rejects or takes too long. */
async function result(page, what) {
  const r = await page.evaluate(
    (ms) =>
      Promise.race([
        window.result.then(
          (r) => r,
          (e) => ({ error: (e && (e.code || e.message)) || String(e) }),
        ),
        new Promise((resolve) => setTimeout(resolve, ms, { error: "no result in time" })),
      ]),
    PAGE_TIMEOUT,
  );
  if (r.error) throw new Error(`${what}: ${r.error}`);
  return r;
}

/** Loads `url` afresh in `page` and checks its value; resolves with its timings. */
async function load(page, url, expected, what) {
  await page.goto(url, { timeout: PAGE_TIMEOUT });
  const r = await result(page, what);
  if (r.value !== expected) throw new Error(`${what}: value ${JSON.stringify(r.value)}, expected ${JSON.stringify(expected)}`);
  return { primary: r.nav, secondary: r.call };
}

/**
 * A link click from shop to support: cookies cleared (no session anywhere, so that the baton side
 * really hands off), the shop page loaded (for baton, a session saved there), then `#go` clicked;
 * timed on arrival, from the click (absolute clocks of the two documents) and from the
 * destination's navigation start.
 */
async function linkClick(b, page, partners, kind, what) {
  await b.context.clearCookies();
  const baton = kind !== "ref";
  await load(page, partners.url("shop", `/bench/${kind}`), baton ? null : "echo", `${what}, source page`);
  if (baton) {
    const saved = await page.evaluate(([n, v]) => Baton.connect(IFRAME_URL).set(n, v).then(() => null, (e) => e.code || String(e)), [NAME, VALUE]);
    if (saved !== null) throw new Error(`${what}: saving the session on shop failed: ${saved}`);
  }
  // The click goes from a timer, so that evaluate() returns before the page starts to leave.
  const clickAt = await page.evaluate(() => {
    const at = performance.timeOrigin + performance.now();
    setTimeout(() => document.getElementById("go").click());
    return at;
  });
  await page.waitForURL((u) => u.hostname === "support.localhost", { timeout: PAGE_TIMEOUT });
  const r = await result(page, what);
  const expected = baton ? VALUE : "echo";
  if (r.value !== expected) throw new Error(`${what}: value ${JSON.stringify(r.value)}, expected ${JSON.stringify(expected)}`);
  const hash = await page.evaluate(() => window.arrivedHash);
  if (baton && !/^#baton=[\w.-]+$/.test(hash)) throw new Error(`${what}: the link carried no handoff token (arrived with ${JSON.stringify(hash)})`);
  const href = await page.evaluate(() => location.href);
  if (baton && href.includes("#")) throw new Error(`${what}: the token stayed in the address bar: ${href}`);
  return { primary: r.at - clickAt, secondary: r.nav };
}

/**
 * Every round of a browser starts from the same state: no cookie but a fresh session saved on shop
 * (untimed), which the page loads then read.
 */
async function freshSession(b, page, partners, what) {
  await b.context.clearCookies();
  await load(page, partners.url("shop", "/bench/connect"), null, `${what}: no session after clearing cookies`);
  const saved = await page.evaluate(([n, v]) => Baton.connect(IFRAME_URL).set(n, v).then(() => null, (e) => e.code || String(e)), [NAME, VALUE]);
  if (saved !== null) throw new Error(`${what}: saving the session on shop failed: ${saved}`);
}

/**
 * A timed page load right after an untimed load of the same page (as a reload, or the next page
 * of one site): what the previous page left behind (a renderer process for the framed site, the
 * cached scripts) is then the same for every case, whatever case ran before it.
 */
async function primedLoad(page, url, expected, what) {
  await load(page, url, expected, `${what} (untimed, first)`);
  return load(page, url, expected, what);
}

/** The cases of one round for one browser, each a reference or a baton measurement of one row. */
function roundCases(b, page, partners, mode) {
  const url = (kind) => partners.url("shop", `/bench/${kind}`);
  return [
    // Page loads: the reference twice (its second sample is the noise row), the two baton forms.
    { row: `${mode}: page load, loadCookie()`, side: "ref", run: () => primedLoad(page, url("ref"), "echo", `${mode} reference load`) },
    { row: `${mode}: page load, loadCookie()`, side: "baton", run: () => primedLoad(page, url("genesys"), VALUE, `${mode} loadCookie()`) },
    { row: `${mode}: page load, connect().get()`, side: "baton", run: () => primedLoad(page, url("connect"), VALUE, `${mode} connect().get()`) },
    { row: `${mode}: noise, reference vs itself`, side: "baton", run: () => primedLoad(page, url("ref"), "echo", `${mode} reference load (2)`) },
    // Link clicks (each starts by clearing the cookies).
    { row: `${mode}: link click, redeem + loadCookie()`, side: "ref", run: () => linkClick(b, page, partners, "ref", `${mode} reference link click`) },
    { row: `${mode}: link click, redeem + loadCookie()`, side: "baton", run: () => linkClick(b, page, partners, "genesys", `${mode} link click`) },
  ];
}

/** Rotates `xs` left by `n`. */
const rotate = (xs, n) => xs.map((_, i) => xs[(i + n) % xs.length]);

/** The p-th percentile (nearest rank) of `xs`. */
function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function describeMachine(browsers) {
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
    `chromium ${browsers[0].browser.version()}, node ${process.version}`,
    `baton: ${bin} (built ${statSync(bin).mtime.toISOString()}), repository HEAD ${head}`,
  ].join("\n");
}

function printTables(rows, opts) {
  const ms = (x) => `${x.toFixed(0)} ms`;
  const tables = [
    ["From page start (the document's navigation start; for a link click, from the click)", "primary"],
    ["From the call (the script line that creates the iframe or the provider; for a link click, from the destination's navigation start)", "secondary"],
  ];
  for (const [title, metric] of tables) {
    console.log(`\n${title}, ${opts.rounds} rounds, median and p90 in ms:\n`);
    const header = ["case", "ref median", "baton median", "ratio", "pair ratios", "ref p90", "baton p90", "ratio p90"];
    const lines = [...rows.entries()].map(([row, s]) => {
      const ref = s.ref.map((x) => x[metric]);
      const bat = s.baton.map((x) => x[metric]);
      const [rm, bm, rp, bp] = [percentile(ref, 50), percentile(bat, 50), percentile(ref, 90), percentile(bat, 90)];
      // Each round's baton sample over the same round's reference sample: median (p10-p90).
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
  console.log(`\nratio = baton / reference: median over median, p90 over p90; pair ratios: each round's baton
sample over the same round's reference sample, median (p10-p90). The noise rows measure the
reference against itself in the same rounds: their distance from 1.00 is what noise alone did.`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const world = await startWorld();
  const browsers = [];
  try {
    addPages(world.partners, world.broker);
    for (const mode of MODES) browsers.push({ mode, ...(await startBrowser({ thirdPartyCookies: mode })) });
    console.log(describeMachine(browsers));
    const tabs = [];
    for (const b of browsers) {
      const page = await b.newPage();
      // What the table says about each browser: the broker's mode there.
      await load(page, world.partners.url("shop", "/bench/connect"), null, `${b.mode}: first load`);
      const mode = await page.evaluate(() => Baton.connect(IFRAME_URL).mode());
      const expected = { allowed: "unpartitioned", blocked: "partitioned" }[b.mode];
      if (mode !== expected) throw new Error(`third-party cookies ${b.mode}: the broker's mode is ${mode}, expected ${expected}`);
      tabs.push({ b, page });
    }

    /** @type {Map<string, {ref: any[], baton: any[]}>} one per row, in the order of the table */
    const rows = new Map();
    for (const { b, page } of tabs) for (const c of roundCases(b, page, world.partners, b.mode)) rows.set(c.row, { ref: [], baton: [] });
    const total = opts.warmup + opts.rounds;
    const started = Date.now();
    for (let round = 0; round < total; round++) {
      for (const { b, page } of round % 2 ? [...tabs].reverse() : tabs) {
        await freshSession(b, page, world.partners, b.mode);
        const cases = roundCases(b, page, world.partners, b.mode);
        // Page loads and link clicks rotate separately: the page loads need the session that
        // freshSession saved, and a link click clears the cookies.
        const loads = rotate(cases.slice(0, 4), round);
        const links = round % 2 ? cases.slice(4).reverse() : cases.slice(4);
        for (const c of [...loads, ...links]) {
          const sample = await c.run();
          if (round < opts.warmup) continue;
          rows.get(c.row)[c.side].push(sample);
        }
      }
      process.stderr.write(`round ${round + 1}/${total}${round < opts.warmup ? " (warm-up)" : ""}, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    }
    // Every page-load row shares the page-load reference of the same rounds (the noise row's
    // other side is a second reference load).
    for (const mode of MODES)
      for (const row of [`${mode}: page load, connect().get()`, `${mode}: noise, reference vs itself`]) rows.get(row).ref = rows.get(`${mode}: page load, loadCookie()`).ref;
    printTables(rows, opts);
    console.log(`load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}; ${((Date.now() - started) / 1000).toFixed(0)} s of rounds`);
  } finally {
    for (const b of browsers) await b.stop();
    await world.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`bench/browser.mjs failed: ${e.stack ?? e}`);
    process.exit(1);
  },
);

// Measures, in every engine and cookie mode (one browser at a time, each with a fresh profile),
// what a cross-site iframe served from broker.localhost may keep: cookies written by script and by
// a same-origin fetch response, with and without `Partitioned`, across a reload, another top-level
// site and back; the Storage Access API; storage APIs (and whether the iframe's localStorage
// persists likewise); and localStorage of the top-level page.
// Usage: node tests/browser/engines/measure.mjs [engine[/mode] ...]   (prints markdown tables)
import { withCollector } from "./collector.mjs";
import { CELLS, launch, scheme, startSiteServer } from "./index.mjs";

const COOKIES = { x: "__Host-x", xp: "__Host-xp" };

/** The names of the cookies a request sent. */
const sent = (/** @type {import("node:http").IncomingMessage} */ req) =>
  (req.headers.cookie ?? "").split(";").map((c) => c.split("=")[0].trim()).filter(Boolean);

/**
 * Sites in `s`: shop and support serve `/top` (a page framing broker.localhost `/frame`);
 * broker.localhost serves `/frame`, `/set?name=N[&partitioned]` (answers with a host-only
 * `__Host-` cookie N) and `/echo` (the names of the cookies it got).
 * @param {"http" | "https"} s
 */
async function startSites(s) {
  /** @type {number} */
  let port = 0;
  const url = (/** @type {string} */ name, /** @type {string} */ p) => `${s}://${name}.localhost:${port}${p}`;
  const server = await startSiteServer(s, (req, res, at) => {
    const q = new URL(req.url ?? "/", "http://x").searchParams;
    const json = (/** @type {unknown} */ v, /** @type {Record<string, string>} */ extra = {}) =>
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store", ...extra }).end(JSON.stringify(v));
    const html = (/** @type {string} */ body) =>
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(withCollector(`<!doctype html>${body}`));
    if (at.path === "/top" && at.host !== "broker.localhost") html(`<title>top</title><iframe src="${url("broker", "/frame")}"></iframe>`);
    else if (at.host !== "broker.localhost") return false;
    else if (at.path === "/frame") html("<title>frame</title>");
    else if (at.path === "/echo") json(sent(req));
    else if (at.path === "/set") {
      const name = q.get("name") ?? "";
      json(sent(req), { "set-cookie": `${name}=1; Path=/; Secure; HttpOnly; SameSite=None${q.has("partitioned") ? "; Partitioned" : ""}` });
    } else return false;
    return true;
  });
  port = server.port;
  return { url, stop: server.stop };
}

/** Inside the iframe: script cookies, Storage Access, storage APIs, then the two fetch cookies. */
async function probeFrame() {
  /** @param {string} c */
  const write = (c) => {
    document.cookie = c;
    return document.cookie.split("; ").includes(c.split(";")[0]) ? "kept" : "refused";
  };
  /** @param {() => unknown} f */
  const attempt = (f) => {
    try {
      f();
      return "ok";
    } catch (e) {
      return `throws ${/** @type {Error} */ (e).name}`;
    }
  };
  /** @param {string} p */
  const get = async (p) => (await fetch(p, { cache: "no-store" })).json();
  const out = {
    cookie: write("t=1; Path=/; Secure; SameSite=None"),
    cookieP: write("tp=1; Path=/; Secure; SameSite=None; Partitioned"),
    hasSA: await (document.hasStorageAccess ? document.hasStorageAccess().then(String, (e) => `rejects ${e.name}`) : "absent"),
    perm: await Promise.resolve()
      .then(() => navigator.permissions.query(/** @type {any} */ ({ name: "storage-access" })))
      .then((s) => s.state, (e) => `throws ${e.name}`),
    bc: attempt(() => new BroadcastChannel("x").close()),
    ls: attempt(() => localStorage.setItem("f", "1")),
    ss: attempt(() => sessionStorage.length),
    idb: await new Promise((resolve) => {
      try {
        const r = indexedDB.open("x");
        r.onsuccess = () => (r.result.close(), resolve("ok"));
        r.onerror = () => resolve(`error ${r.error?.name}`);
      } catch (e) {
        resolve(`throws ${/** @type {Error} */ (e).name}`);
      }
    }),
    fetched: /** @type {string[]} */ ([]),
  };
  await get("/set?name=__Host-x");
  await get("/set?name=__Host-xp&partitioned");
  out.fetched = await get("/echo");
  return out;
}

/** The cookies the iframe's next fetch sends, what its script sees, and its localStorage. */
const probeAgain = async () => ({
  fetched: await (await fetch("/echo", { cache: "no-store" })).json(),
  script: document.cookie,
  stored: (() => {
    try {
      return localStorage.getItem("f") === "1" ? "kept" : "-";
    } catch {
      return "throws";
    }
  })(),
});

/** `x`, `xp`, both or `-`: which of the two fetch cookies `names` holds. */
const which = (/** @type {string[]} */ names) => Object.entries(COOKIES).filter(([, n]) => names.includes(n)).map(([k]) => k).join("+") || "-";

/**
 * One engine and mode.
 * @param {import("./index.mjs").Engine} engine
 * @param {string} mode
 */
async function measure(engine, mode) {
  const sites = await startSites(scheme(engine));
  const b = await launch(engine, mode).catch(async (e) => {
    await sites.stop();
    throw e;
  });
  try {
    const top = await b.open(sites.url("shop", "/top"));
    const inFrame = (/** @type {Function} */ fn) => top.frameEval("broker.localhost", fn);

    // (6) localStorage of the top-level page: reload, then a new tab of the same site.
    await top.evaluate(() => localStorage.setItem("k", "v"));
    await top.reload();
    const lsReload = await top.evaluate(() => localStorage.getItem("k"));
    const tab = await b.open(sites.url("shop", "/top"));
    const lsTab = await tab.evaluate(() => localStorage.getItem("k"));

    const first = await inFrame(probeFrame);
    await top.reload();
    const reloaded = await inFrame(probeAgain);
    await top.goto(sites.url("support", "/top"));
    const other = await inFrame(probeAgain);
    await top.goto(sites.url("shop", "/top"));
    const back = await inFrame(probeAgain);
    const scriptCookies = (/** @type {string} */ s) => s.split("; ").map((c) => c.split("=")[0]).filter((n) => n === "t" || n === "tp").join("+") || "-";
    return {
      engine,
      mode,
      ...first,
      fetched: which(first.fetched),
      reload: which(reloaded.fetched),
      otherSite: which(other.fetched),
      back: which(back.fetched),
      scriptOther: scriptCookies(other.script),
      scriptBack: scriptCookies(back.script),
      frameLocalStorage: [reloaded, other, back].map((r) => r.stored).join(" / "),
      topLocalStorage: `${lsReload === "v" ? "kept" : "lost"} / ${lsTab === "v" ? "kept" : "lost"}`,
      errors: [...(await top.errors()), ...(await tab.errors())],
    };
  } finally {
    await b.stop();
    await sites.stop();
  }
}

/** Prints `rows` as a markdown table of `cols` ([heading, key]). */
function table(/** @type {Record<string, any>[]} */ rows, /** @type {[string, string][]} */ cols) {
  const line = (/** @type {string[]} */ cells) => `| ${cells.join(" | ")} |`;
  console.log(line(cols.map(([h]) => h)));
  console.log(line(cols.map(() => "---")));
  for (const r of rows) console.log(line(cols.map(([, k]) => String(r[k]))));
  console.log();
}

const wanted = process.argv.slice(2);
const rows = [];
for (const [engine, mode] of CELLS) {
  if (wanted.length && !wanted.some((w) => `${engine}/${mode}`.startsWith(w))) continue;
  const t0 = Date.now();
  const row = await measure(engine, mode);
  rows.push({ ...row, cell: `${engine} ${mode}` });
  console.error(`${engine} ${mode}: ${Date.now() - t0} ms ${JSON.stringify(row)}`);
}
table(rows, [
  ["engine, mode", "cell"],
  ["doc.cookie `Secure; SameSite=None`", "cookie"],
  ["… `; Partitioned`", "cookieP"],
  ["hasStorageAccess()", "hasSA"],
  ["permissions.query storage-access", "perm"],
  ["BroadcastChannel", "bc"],
  ["localStorage.setItem", "ls"],
  ["sessionStorage", "ss"],
  ["indexedDB.open", "idb"],
]);
table(rows, [
  ["engine, mode", "cell"],
  ["fetch cookies sent back, same iframe", "fetched"],
  ["after top reload", "reload"],
  ["under other top site", "otherSite"],
  ["back on first site", "back"],
  ["doc.cookie t/tp under other site", "scriptOther"],
  ["… back on first site", "scriptBack"],
  ["iframe localStorage: reload / other site / back", "frameLocalStorage"],
  ["top-level localStorage: reload / new tab", "topLocalStorage"],
  ["page errors", "errors"],
]);

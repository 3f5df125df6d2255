// WebKitGTK (Safari's engine) through WebKitWebDriver under Xvfb, spoken to in plain W3C WebDriver
// over HTTP: a dozen endpoints do not need selenium. Each session is a fresh ephemeral profile.
// WebDriver reports no page errors, so pages must carry the error collector (collector.mjs; the
// test servers of sites.mjs add it), and `errors()` reads and empties it in the page and every
// frame, also before each navigation the driver starts, so the errors of the page left are kept.
import { existsSync } from "node:fs";
import { freePort, until } from "../harness.mjs";
import { COLLECTED } from "./collector.mjs";
import path from "node:path";
import { removeDir, startGroup, stopGroup, tempDir } from "../proc.mjs";

export const WEBDRIVER = process.env.WEBKIT_WEBDRIVER_BIN ?? "/usr/bin/WebKitWebDriver";
export const MINIBROWSER = process.env.WEBKIT_MINIBROWSER_BIN ?? "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

/** Command-line switches of MiniBrowser per cookie mode. */
export const WEBKIT_MODES = { default: [], always: ["--cookies-policy=always"], itp: ["--enable-itp"] };

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

/** The source of a function of one argument, for a script: a string is an expression. */
const callable = (/** @type {Function | string} */ fn) => (typeof fn === "function" ? String(fn) : `() => (${fn})`);

/**
 * Starts WebKitWebDriver under xvfb-run and opens a session on MiniBrowser in `mode`.
 * @param {keyof typeof WEBKIT_MODES} mode
 * @returns {Promise<import("./index.mjs").RawBrowser>}
 */
export async function launchWebKit(mode) {
  const args = WEBKIT_MODES[mode];
  if (!args) throw new Error(`webkit mode ${mode}: one of ${Object.keys(WEBKIT_MODES).join(", ")}`);
  for (const [bin, pkg] of [[WEBDRIVER, "webkit2gtk-driver"], [MINIBROWSER, "webkit2gtk-driver"], ["/usr/bin/xvfb-run", "xvfb"], ["/usr/bin/xauth", "xauth"]]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: apt-get install -y ${pkg}`);
  }
  const port = await freePort();
  // Our own directory for the X authority file: xvfb-run's own one stays behind when it is killed.
  const dir = await tempDir("webkit");
  const child = startGroup("xvfb-run", ["-a", "-f", path.join(dir, "Xauthority"), WEBDRIVER, `--port=${port}`]);
  const base = `http://127.0.0.1:${port}`;
  /** @type {string | undefined} */
  let session;
  /** @type {string} the window the session is in (at first, its one empty window) */
  let current = "";

  /**
   * One WebDriver command; throws with the driver's error.
   * @param {"GET" | "POST" | "DELETE"} method
   * @param {string} path below /session/<id>, or absolute when it starts with "!"
   * @param {unknown} [body]
   * @returns {Promise<any>}
   */
  async function wd(method, path, body) {
    const url = path.startsWith("!") ? base + path.slice(1) : `${base}/session/${session}${path}`;
    const res = await fetch(url, {
      method,
      headers: { "content-type": "application/json" },
      body: method === "POST" ? JSON.stringify(body ?? {}) : undefined,
      signal: AbortSignal.timeout(60000),
    });
    const { value } = /** @type {{value: any}} */ (await res.json());
    if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${value?.error}: ${value?.message}`);
    return value;
  }

  const stop = async () => {
    if (session) await wd("DELETE", "").catch(() => {});
    session = undefined;
    await stopGroup(child);
    await removeDir(dir);
  };
  try {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`WebKitWebDriver exited with ${child.exitCode}`);
      return (await wd("GET", "!/status")).ready;
    }, "WebKitWebDriver's /status");
    const created = await wd("POST", "!/session", {
      capabilities: {
        alwaysMatch: {
          acceptInsecureCerts: true,
          "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation", "--ignore-tls-errors", ...args] },
        },
      },
    });
    session = created.sessionId;
    await wd("POST", "/timeouts", { script: 30000, pageLoad: 30000, implicit: 0 });
    current = await wd("GET", "/window");
  } catch (e) {
    await stop();
    throw new Error(`${/** @type {Error} */ (e).message}\n--- WebKitWebDriver output ---\n${child.output}`);
  }

  // WebDriver has one current window and frame per session: page operations take turns.
  /** @type {Promise<unknown>} */
  let queue = Promise.resolve();
  /** @template T @param {() => Promise<T>} fn @returns {Promise<T>} */
  const turn = (fn) => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
  };
  let initialFree = true;

  /**
   * Runs `fn` (a function of one argument, or an expression) in the current frame; awaits promises.
   * @param {Function | string} fn
   * @param {unknown} arg
   */
  async function run(fn, arg) {
    const script = `const done = arguments[arguments.length - 1];
const arg = arguments.length > 1 ? arguments[0] : undefined;
Promise.resolve().then(() => (${callable(fn)})(arg)).then(
  (value) => done(value === undefined ? { ok: true } : { ok: true, value }),
  (e) => done({ ok: false, thrown: e instanceof Error ? e.name + ": " + e.message : String(e) }));`;
    const r = await wd("POST", "/execute/async", { script, args: arg === undefined ? [] : [arg] });
    if (!r.ok) throw new Error(`evaluate: ${r.thrown}`);
    return r.value;
  }

  /**
   * Calls `visit(depth)` in the current frame, then in each child frame, depth first, and returns
   * the first value that is not undefined (every frame is visited when none is). Leaves the
   * session in the frame where it was called.
   * @param {(depth: number) => Promise<unknown>} visit
   * @returns {Promise<unknown>}
   */
  async function walk(visit, depth = 0) {
    const found = await visit(depth);
    if (found !== undefined || depth > 3) return found;
    const frames = await wd("POST", "/elements", { using: "css selector", value: "iframe, frame" });
    for (const frame of frames) {
      try {
        await wd("POST", "/frame", { id: { [ELEMENT]: frame[ELEMENT] } });
      } catch {
        continue; // removed meanwhile
      }
      try {
        const value = await walk(visit, depth + 1);
        if (value !== undefined) return value;
      } finally {
        await wd("POST", "/frame/parent");
      }
    }
    return undefined;
  }

  return {
    engine: "webkit",
    mode,
    log: () => child.output,
    stop,
    open: (url) =>
      turn(async () => {
        // The session starts with one empty window: the first page takes it.
        const handle = initialFree ? current : (await wd("POST", "/window/new", { type: "tab" })).handle;
        initialFree = false;
        /** @type {string[]} */
        const errors = [];
        /** URLs already reported as lacking a collector */
        const unseen = new Set();
        const focus = async () => {
          if (current !== handle) await wd("POST", "/window", { handle });
          current = handle;
          await wd("POST", "/frame", { id: null });
        };
        /** Moves what the collectors of the page and its frames hold into `errors`. */
        const harvest = () =>
          walk(async () => {
            const r = await wd("POST", "/execute/sync", {
              script: `const list = window[${JSON.stringify(COLLECTED)}]; return { url: location.href, errors: Array.isArray(list) ? list.splice(0) : null };`,
              args: [],
            }).catch(() => null); // a document that is going away
            if (!r) return;
            if (r.errors) errors.push(...r.errors);
            else if (/^https?:/.test(r.url) && !unseen.has(r.url)) {
              unseen.add(r.url);
              errors.push(`[no error collector in ${r.url}: its errors are not seen]`);
            }
          })
            .catch(() => {}) // the page is navigating: the next harvest gets the rest
            .then(() => wd("POST", "/frame", { id: null }));
        /**
         * Runs `fn` in its turn, in this window's top-level document; `harvestFirst` when `fn`
         * may leave the document (its errors would go with it).
         * @template T @param {boolean} harvestFirst @param {() => Promise<T>} fn @returns {Promise<T>}
         */
        const step = (harvestFirst, fn) =>
          turn(async () => {
            await focus();
            if (harvestFirst) await harvest();
            return fn();
          });
        await focus();
        await wd("POST", "/url", { url });
        /** @type {import("./index.mjs").RawPage} */
        const page = {
          goto: (u) => step(true, () => wd("POST", "/url", { url: u })),
          reload: () => step(true, () => wd("POST", "/refresh")),
          url: () => step(false, () => wd("GET", "/url")),
          // A script may navigate too (`location.href = ...`).
          evaluate: (fn, arg) => step(true, () => run(fn, arg)),
          click: (selector) =>
            step(true, async () => {
              const el = await wd("POST", "/element", { using: "css selector", value: selector });
              await wd("POST", `/element/${el[ELEMENT]}/click`);
            }),
          errors: () => step(true, async () => [...errors]),
          frameEval: (sub, fn, arg) =>
            step(true, async () => {
              const found = await until(
                () =>
                  walk(async (depth) => {
                    if (depth === 0) return undefined;
                    const href = await wd("POST", "/execute/sync", { script: "return location.href", args: [] }).catch(() => "");
                    if (!href.includes(sub)) return undefined;
                    return run(fn, arg).then((value) => ({ value }), (error) => ({ error }));
                  }).finally(() => wd("POST", "/frame", { id: null })),
                `a frame whose URL contains ${sub}`,
              );
              const { value, error } = /** @type {{value?: unknown, error?: Error}} */ (found);
              if (error) throw error;
              return value;
            }),
        };
        return page;
      }),
  };
}

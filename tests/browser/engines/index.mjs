// One small interface over three browser engines and their cookie modes, so that one scenario runs
// in Chromium (CDP), Firefox (WebDriver BiDi) and WebKitGTK (W3C WebDriver), each browser with a
// fresh profile. Sites for each engine come from sites.mjs (https for WebKit, which refuses
// `Secure` cookies over plain http). Run browsers one at a time: the test machines have 2 cores.
//
//   for (const [engine, mode] of CELLS)
//     test(`${engine} ${mode}: ...`, () => withEngine(engine, mode, async (b) => {
//       const page = await b.open(partners.url("shop"));   // partners = await startPartners(scheme(engine))
//       await page.click("#to-support");
//       await page.waitForURL((u) => u.hostname === "support.localhost");
//       assert.deepEqual(await page.errors(), []);
//     }));
import { launchChromium } from "./chromium.mjs";
import { launchFirefox } from "./firefox.mjs";
import { launchWebKit } from "./webkit.mjs";

export { makeCert, startBroker, startHttpsBroker, startHttpsPartners, startPartners, startSiteServer, startTlsProxy, startWorlds, TEST_HOSTS } from "./sites.mjs";
export { COLLECTOR_PATH } from "./collector.mjs";

/** @typedef {"chromium" | "firefox" | "webkit"} Engine */

/** The engines and the cookie modes each is tested in. */
export const ENGINES = Object.freeze({
  chromium: ["allowed", "blocked"],
  firefox: ["default", "allowed", "blocked", "strict"],
  webkit: ["default", "always", "itp"],
});

/** Every [engine, mode] pair, engine by engine. */
export const CELLS = /** @type {[Engine, string][]} */ (Object.entries(ENGINES).flatMap(([e, modes]) => modes.map((m) => [e, m])));

/**
 * The scheme test sites use in `engine`: WebKit stores no `Secure` cookie over http.
 * @param {Engine} engine
 * @returns {"http" | "https"}
 */
export const scheme = (engine) => (engine === "webkit" ? "https" : "http");

/**
 * What each engine's driver provides.
 * @typedef {object} RawPage
 * @property {(url: string) => Promise<void>} goto navigates and waits for `load`
 * @property {() => Promise<void>} reload
 * @property {() => Promise<string>} url the top-level URL
 * @property {(fn: Function | string, arg?: unknown) => Promise<any>} evaluate
 * @property {(selector: string) => Promise<void>} click a real (trusted) click
 * @property {() => Promise<string[]>} errors
 * @property {(urlSubstring: string, fn: Function | string, arg?: unknown) => Promise<any>} frameEval
 *
 * @typedef {object} RawBrowser
 * @property {Engine} engine
 * @property {string} mode
 * @property {(url: string) => Promise<RawPage>} open
 * @property {() => string} log driver or browser output, for failure messages
 * @property {() => Promise<void>} stop
 */

/**
 * A tab.
 * @typedef {object} Page
 * @property {(url: string) => Promise<void>} goto navigates and waits for `load`
 * @property {() => Promise<void>} reload and waits for `load`
 * @property {() => Promise<string>} url the top-level URL
 * @property {(fn: Function | string, arg?: unknown) => Promise<any>} evaluate runs `fn(arg)` (or
 *   the expression `fn`) in the page, awaits a promise, returns a JSON-able value
 * @property {(selector: string) => Promise<void>} click a real user click on the first match
 * @property {(pred: (url: URL) => boolean, ms?: number) => Promise<void>} waitForURL until
 *   `pred(top-level URL)` holds and that document has loaded
 * @property {() => Promise<string[]>} errors uncaught errors (`Name: message`), unhandled
 *   rejections and console.error texts of the page and all its frames since it was opened.
 *   In WebKit, only documents that carry the collector (collector.mjs; every sites.mjs server
 *   adds it) report errors; others show up as one `[no error collector in URL ...]` entry.
 * @property {(urlSubstring: string, fn: Function | string, arg?: unknown) => Promise<any>} frameEval
 *   `evaluate` in the first child frame (any depth, cross-origin too) whose URL contains
 *   `urlSubstring`, waiting up to 10 s for it to appear
 *
 * A browser with a fresh profile.
 * @typedef {object} Browser
 * @property {Engine} engine
 * @property {string} mode
 * @property {(url: string) => Promise<Page>} open a new tab at `url`, after `load`
 * @property {() => string} log driver or browser output, for failure messages
 * @property {() => Promise<void>} stop ends the browser, its driver and profile, always
 */

const launchers = { chromium: launchChromium, firefox: launchFirefox, webkit: launchWebKit };

/**
 * Starts `engine` in cookie `mode` with a fresh profile; throws when the browser or its driver is
 * missing.
 * @param {Engine} engine
 * @param {string} mode one of ENGINES[engine]
 * @returns {Promise<Browser>}
 */
export async function launch(engine, mode) {
  const modes = /** @type {readonly string[] | undefined} */ (ENGINES[engine]);
  if (!modes) throw new Error(`engine ${engine}: one of ${Object.keys(ENGINES).join(", ")}`);
  if (!modes.includes(mode)) throw new Error(`${engine} mode ${mode}: one of ${modes.join(", ")}`);
  const raw = await /** @type {(mode: string) => Promise<RawBrowser>} */ (launchers[engine])(mode);
  return { ...raw, open: async (url) => withWaitForURL(await raw.open(url)) };
}

/**
 * Runs `fn(browser)` in a fresh `engine` browser in `mode` and stops it afterwards; on failure
 * the browser's log is added to the error.
 * @template T
 * @param {Engine} engine
 * @param {string} mode
 * @param {(b: Browser) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withEngine(engine, mode, fn) {
  const b = await launch(engine, mode);
  try {
    return await fn(b);
  } catch (e) {
    if (e instanceof Error) e.message += `\n--- ${engine} ${mode} log ---\n${b.log().slice(-4000)}`;
    throw e;
  } finally {
    await b.stop();
  }
}

/** @param {RawPage} raw @returns {Page} */
function withWaitForURL(raw) {
  return {
    ...raw,
    waitForURL: async (pred, ms = 10000) => {
      const end = Date.now() + ms;
      /** @type {unknown} */
      let last;
      for (;;) {
        // Asked during a navigation, a driver may fail: that is "not yet".
        last = await raw.url().catch((e) => e);
        if (typeof last === "string" && pred(new URL(last)) && (await raw.evaluate("document.readyState").catch(() => "")) === "complete") return;
        if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for the URL; last: ${last}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

// Chromium through harness.mjs `startBrowser` (Debian's Chromium started by hand, playwright over
// CDP), behind the engine interface. Playwright reports uncaught errors and console messages of
// every frame of a page, out-of-process cross-site iframes included.
import { startBrowser } from "../harness.mjs";

/** Third-party cookie modes (harness.mjs `startBrowser({thirdPartyCookies})`). */
export const CHROMIUM_MODES = ["allowed", "blocked"];

/**
 * @param {"allowed" | "blocked"} mode
 * @returns {Promise<import("./index.mjs").RawBrowser>}
 */
export async function launchChromium(mode) {
  if (!CHROMIUM_MODES.includes(mode)) throw new Error(`chromium mode ${mode}: one of ${CHROMIUM_MODES.join(", ")}`);
  const b = await startBrowser({ thirdPartyCookies: mode });
  return {
    engine: "chromium",
    mode,
    log: b.log,
    stop: b.stop,
    open: async (url) => {
      const page = await b.newPage();
      /** @type {string[]} */
      const errors = [];
      page.on("pageerror", (e) => errors.push(`${e.name}: ${e.message}`));
      page.on("console", (m) => {
        // Playwright also reports the browser's network log as console errors ("Failed to load
        // resource: ... 404" for the favicon headless Chromium asks for): not script errors.
        if (m.type() === "error" && !m.text().startsWith("Failed to load resource:")) errors.push(m.text());
      });
      await page.goto(url);
      return pageOf(page, errors);
    },
  };
}

/**
 * The engine interface over a playwright or puppeteer page (their page APIs agree on what it
 * uses), with `errors` filled by the caller's listeners.
 * @param {any} page
 * @param {string[]} errors
 * @returns {import("./index.mjs").RawPage}
 */
export function pageOf(page, errors) {
  return {
    goto: async (u) => void (await page.goto(u)),
    reload: async () => void (await page.reload()),
    url: async () => page.url(),
    evaluate: (fn, arg) => page.evaluate(fn, arg),
    click: (selector) => page.click(selector),
    errors: async () => [...errors],
    frameEval: async (sub, fn, arg) => {
      const frame = await pollFrame(() => page.frames().find((/** @type {any} */ f) => f !== page.mainFrame() && f.url().includes(sub)), sub);
      return frame.evaluate(fn, arg);
    },
  };
}

/**
 * Polls `find` until it returns a frame (10 s).
 * @template T
 * @param {() => T | undefined} find
 * @param {string} sub
 * @returns {Promise<T>}
 */
export async function pollFrame(find, sub) {
  const end = Date.now() + 10000;
  for (;;) {
    const frame = find();
    if (frame) return frame;
    if (Date.now() > end) throw new Error(`no frame whose URL contains ${sub}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

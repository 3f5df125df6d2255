// Firefox ESR through puppeteer-core over WebDriver BiDi, a fresh profile per browser, the cookie
// mode set by prefs. BiDi log entries carry the uncaught errors and console messages of every
// browsing context, the cross-site iframe included; puppeteer hands them to the page's
// `pageerror` and `console` listeners.
import { existsSync } from "node:fs";
import { pageOf } from "./chromium.mjs";
import { adoptGroup, killGroup, removeDir, tempDir } from "../proc.mjs";

export const FIREFOX = process.env.FIREFOX_BIN ?? "/usr/bin/firefox-esr";

/**
 * Prefs per cookie mode. "default" adds nothing: cookieBehavior 5 (Total Cookie Protection).
 * Strict needs tracking protection back on: puppeteer's profile turns it off.
 * @type {Record<string, Record<string, unknown>>}
 */
export const FIREFOX_MODES = {
  default: {},
  allowed: { "network.cookie.cookieBehavior": 0 },
  blocked: { "network.cookie.cookieBehavior": 1 },
  strict: { "browser.contentblocking.category": "strict", "privacy.trackingprotection.enabled": true },
};

/**
 * @param {keyof typeof FIREFOX_MODES} mode
 * @returns {Promise<import("./index.mjs").RawBrowser>}
 */
export async function launchFirefox(mode) {
  const prefs = FIREFOX_MODES[mode];
  if (!prefs) throw new Error(`firefox mode ${mode}: one of ${Object.keys(FIREFOX_MODES).join(", ")}`);
  if (!existsSync(FIREFOX)) throw new Error(`${FIREFOX} is missing: apt-get install -y firefox-esr`);
  const { default: puppeteer } = await import("puppeteer-core").catch((e) => {
    throw new Error(`puppeteer-core is missing (npm ci): ${e.message}`);
  });
  const dir = await tempDir("firefox");
  /** @type {import("puppeteer-core").Browser | undefined} */
  let browser;
  let log = "";
  const stop = async () => {
    const pid = browser?.process()?.pid;
    await browser?.close().catch(() => {});
    if (pid) killGroup(pid, "SIGKILL"); // stragglers of the group
    await removeDir(dir);
  };
  try {
    browser = await puppeteer.launch({
      browser: "firefox",
      executablePath: FIREFOX,
      headless: true,
      userDataDir: dir,
      extraPrefsFirefox: prefs,
      // proc.mjs ends the browser on a signal; puppeteer's handlers would keep node running.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
  } catch (e) {
    await stop();
    throw e;
  }
  const proc = browser.process();
  if (proc?.pid) adoptGroup(proc.pid);
  proc?.stderr?.on("data", (b) => (log += b));
  const b = browser;
  return {
    engine: "firefox",
    mode,
    log: () => log,
    stop,
    open: async (url) => {
      const page = await b.newPage();
      /** @type {string[]} */
      const errors = [];
      page.on("pageerror", (e) => errors.push(/** @type {Error} */ (e).message));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      await page.goto(url);
      return pageOf(page, errors);
    },
  };
}

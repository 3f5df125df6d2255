// The in-page error collector for engines whose driver cannot listen for page errors (WebKit's
// WebDriver runs scripts only once a page has loaded, and reports no console). Test servers serve
// it at COLLECTOR_PATH on every origin and put it first in each HTML page they serve (the broker's
// iframe page gets it from the TLS proxy, which adds `'self'` to its CSP's `script-src`); the WebKit
// driver reads and empties `window[COLLECTED]` in the page and each of its frames.

/** Same-origin path of the collector script on every test server. */
export const COLLECTOR_PATH = "/__engine-errors.js";

/** The global (non-enumerable) array the collector fills. */
export const COLLECTED = "__engineErrors";

/** Strings in the format the other engines' drivers give: `Name: message` for errors. */
export const COLLECTOR_JS = `"use strict";
(() => {
  if (Array.isArray(window.${COLLECTED})) return;
  const errors = [];
  Object.defineProperty(window, ${JSON.stringify(COLLECTED)}, { value: errors });
  const show = (v) => {
    if (v instanceof Error) return v.name + ": " + v.message;
    if (typeof v === "string") return v;
    try { return JSON.stringify(v) ?? String(v); } catch { return String(v); }
  };
  addEventListener("error", (e) => errors.push(e.error != null ? show(e.error) : e.message));
  addEventListener("unhandledrejection", (e) => errors.push(show(e.reason)));
  addEventListener("securitypolicyviolation", (e) => errors.push("CSP " + e.effectiveDirective + " blocked " + e.blockedURI));
  const original = console.error;
  console.error = function (...args) {
    errors.push(args.map(show).join(" "));
    return original.apply(this, args);
  };
})();
`;

/** `html` with the collector as its first script (after the doctype, when there is one). */
export function withCollector(/** @type {string} */ html) {
  const tag = `<script src="${COLLECTOR_PATH}"></script>`;
  const doctype = /^\s*<!doctype[^>]*>/i.exec(html);
  return doctype ? doctype[0] + tag + html.slice(doctype[0].length) : tag + html;
}

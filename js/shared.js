// The rules both browser scripts apply, written once: scripts/build-js.mjs puts this file in place
// of the `// @include shared.js` line of iframe.js and cookie-provider.js, inside their closures.
// The Rust side is src/origin.rs and session::is_valid_key; tests/data/origin-cases.json and
// tests/data/keys.json hold the cases both sides must agree on.

/** The key rule: 1 to 128 characters from `A-Z a-z 0-9 . _ -`, except `.` and `..` (a URL
 * resolves those path segments away). */
const KEY = /^(?!\.\.?$)[\w.-]{1,128}$/;

/**
 * The origin rule of docs/PROTOCOL.md: printable ASCII, at most 2048 bytes, not "null", in
 * canonical form, and equal to a trusted origin or matched by a `scheme://*.suffix[:port]`
 * pattern with at least one non-empty label before the suffix.
 * @param {string[]} trusted the broker's trusted patterns
 * @param {unknown} o the `event.origin` (or a destination origin) to check
 * @returns {boolean}
 */
const allowed = (trusted, o) => {
  try {
    if (!/^[!-~]{1,2048}$/.test(/** @type {string} */ (o)) || o === "null" || new URL(/** @type {string} */ (o)).origin !== o) return false;
  } catch {
    return false;
  }
  return trusted.some((p) => {
    const [scheme, suffix] = p.split("*");
    if (suffix === undefined) return p === o;
    const s = /** @type {string} */ (o);
    const label = s.startsWith(scheme) && s.endsWith(suffix) && s.slice(scheme.length, -suffix.length);
    // Labels before the suffix: non-empty, host-name characters only. `a..example.com`,
    // `.a.example.com`, `a'b.example.com` or a literal `*.example.com` are valid URL hosts, but
    // not what a `*.example.com` pattern means.
    return !!label && /^[\w-]+(\.[\w-]+)*$/.test(label);
  });
};

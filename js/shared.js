// The rules both browser scripts apply, written once: iframe.js and cookie-provider.js import them,
// and scripts/build-js.mjs puts this module in place of those imports, inside their closures.
// The Rust side is src/origin.rs and session::is_valid_key; tests/data/origin-cases.json and
// tests/data/keys.json hold the cases both sides must agree on.

/** The key rule: 1 to 128 characters from `A-Z a-z 0-9 . _ -`, except `.` and `..` (a URL
 * resolves those path segments away). */
export const KEY = /^(?!\.\.?$)[\w.-]{1,128}$/;

/**
 * The origin rule of docs/PROTOCOL.md: printable ASCII, at most 2048 bytes, not "null", in
 * canonical form, a host within DNS limits, and equal to a trusted origin or matched by a
 * `scheme://*.suffix[:port]` pattern with at least one label before the suffix.
 * @param {string[]} trusted the broker's trusted patterns
 * @param {unknown} o the `event.origin` (or a destination origin) to check
 * @returns {boolean}
 */
export const allowed = (trusted, o) => {
  try {
    return (
      /^[!-~]{1,2048}$/.test(/** @type {string} */ (o)) &&
      // `"null"` needs no test of its own: `new URL("null")` throws.
      new URL(/** @type {string} */ (o)).origin === o &&
      // DNS limits. In a canonical origin the host is what follows `//` up to a `:`, and its
      // labels are the only runs of more than 5 bytes without `.`, `:` or `/`: this finds a label
      // over 63 bytes, or a host over 253. The rule does not count a trailing dot, but a host
      // with one is never trusted here anyway, so counting it changes no answer.
      !/[^.:/]{64}|\/\/[^:]{254}/.test(/** @type {string} */ (o)) &&
      trusted.some((p) => {
        const [scheme, suffix] = p.split("*");
        if (suffix === undefined) return p === o;
        // Put back between scheme and suffix, the slice is `o` only if `o` starts and ends with
        // them (one comparison instead of two: every byte counts against the size budget).
        const labels = /** @type {string} */ (o).slice(scheme.length, -suffix.length);
        // Labels before the suffix: non-empty, host-name characters only, and never an A-label
        // (`xn--`), on which URL parsers disagree (Unicode versions, the bidi rule): a wildcard
        // covers ASCII names only. `a..example.com`, `.a.example.com`, `a'b.example.com` or a
        // literal `*.example.com` are valid URL hosts, but not what `*.example.com` means.
        return /^(?!xn--)[\w-]+(\.(?!xn--)[\w-]+)*$/.test(labels) && scheme + labels + suffix === o;
      })
    );
  } catch {
    return false;
  }
};

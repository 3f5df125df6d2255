/**
 * baton broker iframe: the script of `{public_origin}/iframe.html`.
 *
 * Partner pages (through cookie-provider.js) post requests to this frame; it checks the sender's
 * origin against the trusted patterns from the page's `#baton-config` block, calls the broker's
 * `/v1` API with same-origin `fetch` (so the broker's cookies, partitioned by the top-level site,
 * travel with it) and answers to the sender's exact origin. See docs/PROTOCOL.md.
 *
 * Size matters (the page plus this script must stay under 2 KiB gzipped): short local names are
 * mangled by terser, but string literals and duplicated logic are not, so keep both rare.
 */
(() => {
  "use strict";

  const w = window;
  const d = document;

  // Neither top-level (a phishing page could run it first-party) nor sandboxed (no cookies, and
  // every origin check would compare against "null").
  if (w.top === w || w.origin === "null") return;

  /** @type {{trusted: string[], handoffParam: string}} */
  const config = JSON.parse(d.getElementById("baton-config").textContent);
  const trusted = config.trusted;

  /**
   * The origin rule of docs/PROTOCOL.md: printable ASCII, at most 2048 bytes, not "null", in
   * canonical form, and equal to a trusted origin or matched by a `scheme://*.suffix[:port]`
   * pattern with at least one non-empty label before the suffix.
   * @param {unknown} o the `event.origin` (or a destination origin) to check
   * @returns {boolean}
   */
  const allowed = (o) => {
    try {
      if (!/^[!-~]{1,2048}$/.test(o) || o === "null" || new URL(o).origin !== o) return false;
    } catch {
      return false;
    }
    return trusted.some((p) => {
      const [scheme, suffix] = p.split("*");
      if (suffix === undefined) return p === o;
      const label = o.startsWith(scheme) && o.endsWith(suffix) && o.slice(scheme.length, -suffix.length);
      // Labels before the suffix: non-empty, host-name characters only. `a..example.com`,
      // `.a.example.com`, `a'b.example.com` or a literal `*.example.com` are valid URL hosts, but
      // not what a `*.example.com` pattern means.
      return !!label && /^[\w-]+(\.[\w-]+)*$/.test(label);
    });
  };

  /**
   * Calls the broker API. Rejects with `{code, message}` (the broker's error body, or `network`).
   * @param {string} method
   * @param {string} path below `/v1/`
   * @param {object} [body] sent as JSON
   * @returns {Promise<any>} the JSON answer, or null for 204
   */
  const api = async (method, path, body) => {
    await storageAccess;
    let res;
    try {
      res = await fetch("/v1/" + path, {
        method,
        credentials: "same-origin",
        headers: body ? { "Content-Type": "application/json" } : {},
        body: body && JSON.stringify(body),
      });
    } catch (e) {
      throw { code: "network", message: String(e) };
    }
    const json = res.status === 204 ? null : await res.json().catch(() => ({}));
    if (res.ok) return json;
    throw { code: json.error || "http_" + res.status, message: json.message };
  };

  /** Maps a broker error `code` to a result, or rethrows it. */
  const unless = (code, result) => (e) => {
    if (e.code === code) return result;
    throw e;
  };

  /**
   * Sets and reads back a test cookie, then removes it.
   * @param {string} attrs extra cookie attributes
   */
  const sticks = (attrs) => {
    const name = "baton-t" + attrs.length;
    const set = (v) => (d.cookie = name + v + ";Path=/;Secure;SameSite=None" + attrs);
    set("=1");
    const ok = d.cookie.includes(name + "=1");
    set("=;Max-Age=0");
    return ok;
  };

  // With a storage-access grant already given for this top-level site (never a prompt: nothing
  // here has a user gesture), the unpartitioned cookie works again once access is requested.
  const storageAccess = (async () => {
    try {
      if (
        d.hasStorageAccess &&
        !(await d.hasStorageAccess()) &&
        (await navigator.permissions.query({ name: "storage-access" })).state === "granted"
      )
        await d.requestStorageAccess();
    } catch {
      // No access: the partitioned cookie (or nothing) it is.
    }
  })();

  const channel = new BroadcastChannel("baton");
  /** The window and origin this frame last answered: where change events go. */
  let last;
  const changed = (result) => {
    channel.postMessage(1);
    return result;
  };
  channel.onmessage = () => last && last[0].postMessage({ baton: 1, event: "change" }, last[1]);

  const any = () => 1;
  const str = (v) => typeof v === "string";
  const key = (m) => str(m.key) && /^[\w.-]{1,128}$/.test(m.key);
  const path = (m) => "session/" + m.key;

  /**
   * The operations: `[check, run]`. A request failing its check is dropped without reply.
   * @type {Record<string, [(m: any) => unknown, (m: any, origin: string) => any]>}
   */
  const ops = {
    // `hasOwn`: a key like `toString` must not read the prototype.
    get: [key, (m) => api("GET", "session").then((r) => (Object.hasOwn(r.values, m.key) ? r.values[m.key] : null), unless("no_session", null))],
    set: [(m) => key(m) && str(m.value), (m) => api("PUT", path(m), { value: m.value }).then(() => changed(null))],
    delete: [key, (m) => api("DELETE", path(m)).then(changed, unless("no_session", null))],
    end: [any, () => api("DELETE", "session").then(changed)],
    mode: [
      any,
      async () => {
        await storageAccess;
        return sticks("") ? "unpartitioned" : sticks(";Partitioned") ? "partitioned" : "none";
      },
    ],
    trusted: [any, () => trusted],
    handoff: [
      (m) => str(m.url),
      (m, origin) => {
        const audience = new URL(m.url).origin;
        return audience === origin || !allowed(audience)
          ? null
          : api("POST", "handoff", { audience }).then((r) => r.token, unless("no_session", null));
      },
    ],
    redeem: [
      (m) => str(m.token),
      (m, origin) =>
        api("POST", "handoff/redeem", { token: m.token, origin })
          .then(() => changed({ adopted: true }))
          .catch(unless("session_conflict", { adopted: false, reason: "existing_session" }))
          .catch(unless("invalid_token", { adopted: false, reason: "invalid_token" })),
    ],
  };

  w.addEventListener("message", async (e) => {
    const m = e.data;
    const origin = e.origin;
    const source = e.source;
    const op = m && m.baton === 1 && str(m.id) && source && allowed(origin) && Object.hasOwn(ops, m.op) && ops[m.op];
    if (!op || !op[0](m)) return;
    last = [source, origin];
    const reply = { baton: 1, id: m.id, ok: true };
    try {
      reply.result = await op[1](m, origin);
    } catch (e) {
      reply.ok = false;
      reply.error = { code: e.code || "bad_request", message: e.message || String(e) };
    }
    source.postMessage(reply, origin);
  });
})();

// nginx JavaScript (njs) filter for the GMS load balancer: see nginx.conf beside this file.
//
// Rewrites every Set-Cookie header a GMS node sends so that it carries the attributes listed in
// the nginx variable $gms_cookie_attributes (nginx.conf sets "SameSite=None; Secure; Partitioned"),
// each exactly once:
//   - an attribute the node already sent with the same name (in any letter case, e.g. "secure" or
//     "SameSite=Lax") is replaced by the listed one, never repeated;
//   - every other attribute the node sent (HttpOnly, Path, Domain, Expires, Max-Age, ...) and the
//     cookie's name and value are kept as they were.
// Example: "BAYEUX_BROWSER=533bkb4y; Path=/; HttpOnly" leaves the balancer as
//          "BAYEUX_BROWSER=533bkb4y; Path=/; HttpOnly; SameSite=None; Secure; Partitioned".
//
// Why a script: nginx 1.22's proxy_cookie_flags knows only Secure, HttpOnly and SameSite; it
// accepts "partitioned" in the configuration without an error and then adds nothing.

/** The lower-case name of a cookie attribute ("SameSite=Lax" -> "samesite"). */
function attributeName(attribute) {
  return attribute.split('=')[0].trim().toLowerCase();
}

/** `cookie` with every attribute of `wanted` (an array of "Name" or "Name=value") exactly once. */
function withAttributes(cookie, wanted) {
  const replaced = wanted.map(attributeName);
  const parts = cookie.split(';').map((part) => part.trim());
  const kept = parts.slice(1).filter((part) => part !== '' && replaced.indexOf(attributeName(part)) < 0);
  return [parts[0]].concat(kept, wanted).join('; ');
}

/** js_header_filter: applies $gms_cookie_attributes to every Set-Cookie of the response. */
function addAttributes(r) {
  const cookies = r.headersOut['Set-Cookie'];
  if (!cookies || cookies.length === 0) return;
  const wanted = String(r.variables.gms_cookie_attributes || '')
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  r.headersOut['Set-Cookie'] = cookies.map((cookie) => withAttributes(cookie, wanted));
}

export default { addAttributes };

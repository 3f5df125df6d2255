"""The answers random generation rarely reaches, each checked against the spec.

Schemathesis' generated run (scripts/schemathesis.sh) mostly meets a broker without a session:
GET answers 204, a handoff 204, a redeem 401. These scenarios walk the paths behind those, in
order, with real credentials: a session by cookie and by page key, a handoff token minted and
redeemed (both ways), a replayed token, a session conflict, the limits (value size, number of
values, declared body length), the page-origin rules, the preflight and the asset revalidation.
Every answer goes through the same Schemathesis checks as the generated run (status, content
type, headers, body schema, no 5xx) and must also have the status the scenario expects.

usage: scenarios.py RUN_SPEC BASE_URL PUBLIC_ORIGIN ORIGIN_A ORIGIN_B MAX_VALUES MAX_VALUE_BYTES
(ORIGIN_A and ORIGIN_B: two trusted origins; MAX_*: the broker's session limits.)
"""

from __future__ import annotations

import re
import sys

import requests
import schemathesis
from cookie_names import PARTITIONED, UNPARTITIONED
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
COOKIE = re.compile(rf"({re.escape(UNPARTITIONED)}|{re.escape(PARTITIONED)})=([A-Za-z0-9_-]{{43}});")


class Run:
    def __init__(self, spec: str, base: str) -> None:
        self.schema = schemathesis.openapi.from_path(spec)
        self.base = base
        self.http = requests.Session()
        self.count = 0
        self.failures: list[str] = []

    def call(self, name, method, path, status, *, headers=None, body=None, key=None, cookies=None, raw=None):
        """Sends one request, validates the answer against the spec, checks its status."""
        self.count += 1
        operation = self.schema[path][method]
        params = {"key": key} if key is not None else None
        # `body` is sent as JSON; `raw`, a body that is not JSON of the schema, as it is.
        data = {"body": body, "media_type": "application/json"} if body is not None else {}
        case = operation.Case(path_parameters=params, headers=dict(headers or {}), **data)
        cookie = "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())
        extra = {"Cookie": cookie} if cookie else {}
        send = {"data": raw} if raw is not None else {}
        response = case.call(base_url=self.base, session=self.http, headers=extra, **send)
        problems = []
        if response.status_code != status:
            problems.append(f"expected {status}, got {response.status_code}: {response.text[:300]}")
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as e:  # every failed check, as Schemathesis words it
            problems.append(str(e).strip())
        if problems:
            self.failures.append(f"{name}: {method} {path}\n  " + "\n  ".join("\n  ".join(p.splitlines()) for p in problems))
        self.http.cookies.clear()  # credentials travel only as each scenario says
        return response

    def expect(self, ok: bool, message: str) -> None:
        """One more check of an answer, beyond what the spec says."""
        self.count += 1
        if not ok:
            self.failures.append(message)


def header(response, name: str) -> str | None:
    """The first value of a response header (Schemathesis keeps them lowercase, as lists)."""
    values = response.headers.get(name.lower())
    return values[0] if values else None


def set_cookies(response) -> list[str]:
    return list(response.headers.get("set-cookie", []))


def cookies_of(response) -> dict[str, str]:
    return dict(COOKIE.match(c).groups() for c in set_cookies(response) if COOKIE.match(c))


def body(response) -> dict:
    try:
        value = response.json()
    except Exception:
        return {}
    return value if isinstance(value, dict) else {}


def main() -> int:
    if len(sys.argv) != 8:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)  # the usage line
        return 2
    spec, base, public, a, b, max_values, max_value_bytes = sys.argv[1:]
    max_values, max_value_bytes = int(max_values), int(max_value_bytes)
    run = Run(spec, base)
    json_h = {"Content-Type": "application/json"}

    def hdr(origin, page=None, key=None):
        h = {"Origin": origin}
        if page:
            h["Baton-Page-Origin"] = page
        if key:
            h["Baton-Page-Key"] = key
        return h

    # Cookie mode: a session created on A, read back, its cookies re-issued when only one arrives.
    r = run.call("create by PUT (cookies)", "PUT", "/v1/session/{key}", 200, key="chat", headers=hdr(a), body={"value": "hello"})
    jar = cookies_of(r)
    run.expect(set(jar) == {UNPARTITIONED, PARTITIONED} and len(set(jar.values())) == 1, f"create by PUT: expected both cookies with one id, got {set_cookies(r)!r}")
    sid = jar.get(UNPARTITIONED, "")
    both = {UNPARTITIONED: sid, PARTITIONED: sid}
    r = run.call("read with both cookies", "GET", "/v1/session", 200, headers=hdr(a), cookies=both)
    run.expect(body(r).get("values") == {"chat": "hello"}, f"read with both cookies: unexpected body {r.text}")
    run.expect(not set_cookies(r), "read with both cookies: re-issued cookies that already agree")
    r = run.call("read with the partitioned cookie only", "GET", "/v1/session", 200, headers=hdr(a), cookies={PARTITIONED: sid})
    run.expect(cookies_of(r) == both, f"partitioned cookie only: expected both cookies re-issued, got {set_cookies(r)!r}")
    run.call("same-origin read without Origin", "GET", "/v1/session", 200, headers={"Sec-Fetch-Site": "same-origin"}, cookies=both)
    # The iframe page carries the session for a frame's request with its cookie (issue 23).
    r = run.call("iframe page with the session", "GET", "/iframe.html", 200, headers={"Sec-Fetch-Dest": "iframe"}, cookies={PARTITIONED: sid})
    run.expect('<script id="baton-session" type="application/json">{"chat":"hello"}</script>' in r.text, f"iframe page with the session: no session block in {r.text[:300]!r}")
    run.expect(header(r, "cache-control") == "no-store" and not header(r, "etag"), "iframe page with the session: not no-store, or a tag")
    run.expect(cookies_of(r) == both, f"iframe page with the partitioned cookie only: expected both cookies re-issued, got {set_cookies(r)!r}")
    r = run.call("iframe page, a cookie but not a frame", "GET", "/iframe.html", 200, headers={"Sec-Fetch-Dest": "document"}, cookies=both)
    run.expect('<script id="baton-session"' not in r.text and header(r, "cache-control") == "no-cache", "iframe page opened top-level: carried the session")
    run.call("untrusted Origin", "GET", "/v1/session", 403, headers=hdr("https://evil.example.net"), cookies=both)
    run.call("no Origin, cross-site", "GET", "/v1/session", 403, headers={"Sec-Fetch-Site": "cross-site"}, cookies=both)

    # Limits: the value size, the number of values, a declared body over the limit, bad input.
    run.call("value over max_value_bytes", "PUT", "/v1/session/{key}", 413, key="big", headers=hdr(a), cookies=both, body={"value": "x" * (max_value_bytes + 1)})
    for i in range(1, max_values):
        run.call(f"fill value {i + 1}/{max_values}", "PUT", "/v1/session/{key}", 200, key=f"k{i}", headers=hdr(a), cookies=both, body={"value": str(i)})
    run.call("one value too many", "PUT", "/v1/session/{key}", 413, key="one-more", headers=hdr(a), cookies=both, body={"value": "x"})
    run.call("overwrite at the limit", "PUT", "/v1/session/{key}", 200, key="chat", headers=hdr(a), cookies=both, body={"value": "hello again"})
    run.call("declared body over the limit", "PUT", "/v1/session/{key}", 413, key="chat", headers={**hdr(a), **json_h}, cookies=both, raw="x" * (6 * max_value_bytes + 4097))
    run.call("declared body over the limit, on a GET", "GET", "/v1/session", 413, headers=hdr(a), cookies=both, raw="x" * (6 * max_value_bytes + 4097))
    run.call("not JSON", "PUT", "/v1/session/{key}", 400, key="chat", headers={**hdr(a), **json_h}, cookies=both, raw="{")
    run.call("no Content-Type", "PUT", "/v1/session/{key}", 415, key="chat", headers=hdr(a), cookies=both, raw='{"value": "x"}')
    run.call("bad key", "DELETE", "/v1/session/{key}", 400, key="a b", headers=hdr(a), cookies=both)
    run.call("delete a value", "DELETE", "/v1/session/{key}", 204, key="k1", headers=hdr(a), cookies=both)

    # Handoff A -> B by cookies: mint, redeem, replay, wrong audience, conflict.
    run.call("mint for an untrusted audience", "POST", "/v1/handoff", 400, headers=hdr(a), cookies=both, body={"audience": "https://evil.example.net"})
    r = run.call("mint for B", "POST", "/v1/handoff", 200, headers=hdr(a), cookies=both, body={"audience": b})
    token = body(r).get("token", "")
    run.call("redeem for another origin", "POST", "/v1/handoff/redeem", 401, headers=hdr(a), body={"token": token, "origin": a})
    r = run.call("redeem on B (direct call)", "POST", "/v1/handoff/redeem", 200, headers=hdr(b), body={"token": token, "origin": b})
    b_jar = cookies_of(r)
    run.expect(set(b_jar) == {UNPARTITIONED, PARTITIONED} and b_jar.get(UNPARTITIONED) != sid, f"redeem on B: expected both cookies with a fresh id, got {set_cookies(r)!r}")
    run.call("replayed token", "POST", "/v1/handoff/redeem", 401, headers=hdr(b), body={"token": token, "origin": b})
    r = run.call("read on B", "GET", "/v1/session", 200, headers=hdr(b), cookies=b_jar)
    run.expect(body(r).get("values", {}).get("chat") == "hello again", f"read on B: the session did not carry over: {r.text}")
    r = run.call("mint another for B", "POST", "/v1/handoff", 200, headers=hdr(a), cookies=both, body={"audience": b})
    token2 = body(r).get("token", "")
    r = run.call("a session of B's own", "PUT", "/v1/session/{key}", 200, key="mine", headers=hdr(b), body={"value": "b"})
    other = cookies_of(r)
    run.call("redeem into a session with values", "POST", "/v1/handoff/redeem", 409, headers=hdr(b), cookies=other, body={"token": token2, "origin": b})
    run.call("redeem from the iframe without origin", "POST", "/v1/handoff/redeem", 401, headers=hdr(public), body={"token": token2})

    # Page mode: a page key from the iframe (Origin = public origin), then a handoff to B's page.
    run.call("page origin not the caller", "GET", "/v1/session", 403, headers=hdr(a, page=b))
    run.call("page origin untrusted", "GET", "/v1/session", 403, headers=hdr(public, page="https://evil.example.net"))
    r = run.call("create by PUT (page key)", "PUT", "/v1/session/{key}", 200, key="chat", headers=hdr(public, page=a), body={"value": "paged"})
    page_key = body(r).get("page_key", "")
    run.expect(bool(page_key) and not set_cookies(r), f"page mode PUT: expected a page_key and no cookie, got {r.text} / {set_cookies(r)!r}")
    run.call("read by page key", "GET", "/v1/session", 200, headers=hdr(public, page=a, key=page_key))
    run.call("the key for another page", "GET", "/v1/session", 204, headers=hdr(public, page=b, key=page_key))
    r = run.call("mint by page key", "POST", "/v1/handoff", 200, headers=hdr(public, page=a, key=page_key), body={"audience": b})
    token3 = body(r).get("token", "")
    run.call("redeem for a page other than Baton-Page-Origin", "POST", "/v1/handoff/redeem", 401, headers=hdr(public, page=a), body={"token": token3, "origin": b})
    r = run.call("redeem on B's page (page key)", "POST", "/v1/handoff/redeem", 200, headers=hdr(public, page=b), body={"token": token3, "origin": b})
    b_key = body(r).get("page_key", "")
    run.expect(bool(b_key) and b_key != page_key and not set_cookies(r), f"page mode redeem: expected a new page_key and no cookie, got {r.text}")
    run.call("read on B's page", "GET", "/v1/session", 200, headers=hdr(public, page=b, key=b_key))
    run.call("end by page key", "DELETE", "/v1/session", 204, headers=hdr(public, page=b, key=b_key))
    run.call("A's key after the end", "GET", "/v1/session", 204, headers=hdr(public, page=a, key=page_key))

    # End by cookie: both cookies expired, the session gone on every site.
    r = run.call("end by cookie", "DELETE", "/v1/session", 204, headers=hdr(a), cookies=both)
    removed = set_cookies(r)
    run.expect(len(removed) == 2 and all("Max-Age=0" in c for c in removed), f"end by cookie: expected both cookies expired, got {removed!r}")
    run.call("read after the end", "GET", "/v1/session", 204, headers=hdr(a), cookies=both)
    run.call("read on B after the end", "GET", "/v1/session", 204, headers=hdr(b), cookies=b_jar)
    run.call("mint without a session", "POST", "/v1/handoff", 204, headers=hdr(a), cookies=both, body={"audience": b})

    # CORS preflight, assets, health.
    run.call("preflight", "OPTIONS", "/v1/session/{key}", 204, key="chat", headers={**hdr(b), "Access-Control-Request-Method": "PUT"})
    run.call("preflight from an untrusted origin", "OPTIONS", "/v1/handoff", 403, headers=hdr("https://evil.example.net"))
    for path in ["/iframe.html", "/iframe.js", "/cookie-provider.js", "/cookie-provider.min.js", "/baton.mjs", "/cookie-provider.d.ts"]:
        for encoding in ["identity", "gzip", "br"]:
            r = run.call(f"{path} ({encoding})", "GET", path, 200, headers={"Accept-Encoding": encoding})
            run.call(f"{path} revalidated ({encoding})", "GET", path, 304, headers={"Accept-Encoding": encoding, "If-None-Match": header(r, "etag") or ""})
    r = run.call("iframe page with an inactive storage-access grant", "GET", "/iframe.html", 200, headers={"Sec-Fetch-Storage-Access": "inactive"})
    run.expect(header(r, "activate-storage-access") == "load", "iframe page: no Activate-Storage-Access: load for Sec-Fetch-Storage-Access: inactive")
    # The versioned URLs are not in the spec (their names change with every build): named by the
    # first 16 hex digits of the identity ETag, served the same, cacheable for a year.
    for stable, versioned in [("/cookie-provider.js", "/cookie-provider.{}.js"), ("/baton.mjs", "/baton.{}.mjs"), ("/iframe.js", "/iframe.{}.js")]:
        tag = requests.get(base + stable, headers={"Accept-Encoding": "identity"}, timeout=10).headers.get("etag", "").strip('"')
        r = requests.get(base + versioned.format(tag[:16]), timeout=10)
        run.expect(r.status_code == 200 and r.headers.get("cache-control") == "public, max-age=31536000, immutable", f"versioned URL {versioned.format(tag[:16])}: {r.status_code} {r.headers.get('cache-control')!r}")
    run.call("liveness", "GET", "/healthz", 200)
    run.call("readiness", "GET", "/readyz", 200)

    for failure in run.failures:
        print(f"FAIL {failure}\n")
    print(f"scenarios: {run.count - len(run.failures)} passed, {len(run.failures)} failed")
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())

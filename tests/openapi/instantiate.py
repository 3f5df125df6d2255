"""Writes the copy of docs/openapi.yaml that the conformance run tests: the reference spec with the
deployment-specific values filled in for the broker scripts/schemathesis.sh starts.

The reference spec describes any deployment, so it can only say "an origin" where the broker
checks "this broker's public origin or one of its trusted origins". Generated from that, nearly
every request would be refused by the `Origin` guard (403) and nothing behind it would be tested.
Here those schemas become the run's own origins:

- `AllowedOrigin` (the `Origin` header): an enum of the public origin and the trusted origins
  given, and the `Origin` header becomes required (`Sec-Fetch-Site` is dropped from the generated
  requests: the same-origin `GET` without `Origin` is one of tests/openapi/scenarios.py's, and
  the Rust tests'). Schemathesis then also checks that a request missing `Origin`, or with
  another one, is refused (403).
- `TrustedOrigin` (`Baton-Page-Origin`, a handoff's `audience`, a redeem's `origin`): an enum of
  the trusted origins given.
- `LinkUrl` (a handoff's `url`): a link to the last trusted origin given, and a redirect link of
  the first one naming it.
- The links that carry a page key (`$response.body#/page_key`) also carry the session cookie the
  answer set: a browser sends it by itself, but Schemathesis would not (the cookie is `Secure`
  and the run is plain http), so the link passes it explicitly, with Schemathesis' own `#regex:`
  extension of runtime expressions (not standard OpenAPI, hence not in the reference spec).

Nothing else changes: every status, header and schema is checked as the reference spec says.
The cookie names come from tests/data/cookies.json (`cookie_names.py`), and the run stops if the
reference spec names any others.

usage: instantiate.py SPEC OUT PUBLIC_ORIGIN TRUSTED_ORIGIN...
"""

import sys
from urllib.parse import quote

import yaml
from cookie_names import UNPARTITIONED, check_spec


def main() -> int:
    if len(sys.argv) < 5:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    spec_path, out_path, public_origin, *trusted = sys.argv[1:]
    with open(spec_path, encoding="utf-8") as f:
        text = f.read()
    spec = yaml.safe_load(text)
    check_spec(spec, text)
    schemas = spec["components"]["schemas"]
    params = spec["components"]["parameters"]
    for name in ("AllowedOrigin", "TrustedOrigin", "LinkUrl"):
        if name not in schemas:
            raise SystemExit(f"instantiate.py: {spec_path} has no components.schemas.{name}")
    schemas["AllowedOrigin"] = {
        "description": schemas["AllowedOrigin"].get("description", ""),
        "type": "string",
        "enum": [public_origin, *trusted],
    }
    schemas["TrustedOrigin"] = {
        "description": schemas["TrustedOrigin"].get("description", ""),
        "type": "string",
        "enum": list(trusted),
    }
    linked = trusted[-1] + "/landing"
    schemas["LinkUrl"] = {
        "description": schemas["LinkUrl"].get("description", ""),
        "type": "string",
        "enum": [linked, f"{trusted[0]}/go?to={quote(linked, safe='')}"],
    }
    params["Origin"]["required"] = True
    params["Origin"].pop("examples", None)
    sec_fetch = {"$ref": "#/components/parameters/SecFetchSite"}
    for item in spec["paths"].values():
        if "parameters" in item:
            item["parameters"] = [p for p in item["parameters"] if p != sec_fetch]
    for link in spec["components"].get("links", {}).values():
        carried = link.get("parameters", {})
        if carried.get("header.Baton-Page-Key") == "$response.body#/page_key":
            carried[f"cookie.{UNPARTITIONED}"] = f"$response.header.Set-Cookie#regex:{UNPARTITIONED}=([A-Za-z0-9_-]+);"
    spec["servers"] = [{"url": "/"}]
    # Plain YAML, no anchors: the same header object used twice is written out twice.
    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data):
            return True

    with open(out_path, "w", encoding="utf-8") as f:
        yaml.dump(spec, f, Dumper=Dumper, sort_keys=False, allow_unicode=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

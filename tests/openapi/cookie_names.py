"""The broker's two cookie names, read from tests/data/cookies.json (their home is src/cookie.rs;
a unit test there checks the file agrees), so that the OpenAPI checks never spell them out.

`check_spec` fails the run when docs/openapi.yaml names any other `__Host-` cookie, or its cookie
security schemes are not these two: the reference spec must say the names clients really see.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_CORPUS = Path(__file__).resolve().parents[1] / "data" / "cookies.json"
_NAMES = json.loads(_CORPUS.read_text(encoding="utf-8"))
UNPARTITIONED: str = _NAMES["unpartitioned"]
PARTITIONED: str = _NAMES["partitioned"]
BOTH = (UNPARTITIONED, PARTITIONED)


def check_spec(spec: dict, spec_text: str) -> None:
    """Raises SystemExit unless the spec's cookie parameters, and every `__Host-` name its text
    mentions, are the corpus's names."""
    schemes = spec["components"].get("securitySchemes", {}).values()
    params = {s.get("name") for s in schemes if s.get("in") == "cookie"}
    mentioned = set(re.findall(r"__Host-[A-Za-z0-9_-]*[A-Za-z0-9_]", spec_text))
    problems = []
    if params != set(BOTH):
        problems.append(f"cookie security schemes {sorted(params)}, expected {sorted(BOTH)}")
    if not mentioned <= set(BOTH):
        problems.append(f"names {sorted(mentioned - set(BOTH))} that are not the broker's cookies")
    if problems:
        raise SystemExit(f"docs/openapi.yaml disagrees with {_CORPUS.name}: " + "; ".join(problems))

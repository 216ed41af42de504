"""The fleet console's untrusted inputs on central's listener: a search term, an
``Authorization`` value, a login's ``next`` and a conflict as a site reported it.

An input is lines: the search term (``fleet.classify``, then each lookup's field and the
subnet test for an address), the ``Authorization`` header as ``central.auth.Readers.bearer``
takes it (an absent tokens file and the legacy read token), the login form's
``next`` (``central.console.safe_next``: a path on this server or ``/``), and the rest as a
conflict's JSON (a site's report, stored as sent) through ``fleet.explain`` and the site
page's filter (``reads.matches``) with the term as the needle.

Outcomes: the term's kind or ``Invalid``; whether a token was found; the redirect kind.
"""

from __future__ import annotations

import json
from pathlib import Path

from central.auth import Readers
from central.console import fleet, reads, safe_next
from central.schema import SEARCH_KEYS
from ddi.errors import Invalid
from fuzz.core import Target

READERS = Readers(tokens_file=Path("/nonexistent/ddi-fuzz/tokens.json"), read_token="sesame")
"""A tokens file that is absent (no token, yet every ``ddi_`` secret is hashed and looked up)
and the legacy read token."""


def check(data: bytes) -> str:
    text = data.decode("utf-8", "surrogateescape")
    term_text, _, rest = text.partition("\n")
    header, _, rest = rest.partition("\n")
    target, _, conflict_text = rest.partition("\n")
    labels = []
    try:
        term = fleet.classify(term_text)
    except Invalid:
        labels.append("term:invalid")
    else:
        assert all(field in SEARCH_KEYS for field, _ in term.lookups)
        if term.address is not None:
            fleet.contains("198.18.0.0/15", term.address)
        labels.append(f"term:{term.what}")
    token = READERS.bearer(header if header.isascii() and header.isprintable() else None)
    labels.append("token" if token is not None else "no-token")
    where = safe_next(target)
    assert where.startswith("/")
    assert not where.startswith("//")
    labels.append("next:same" if where == target else "next:root")
    try:
        conflict = json.loads(conflict_text) if conflict_text else {}
    except (ValueError, RecursionError):
        conflict = None
    if isinstance(conflict, dict):
        conflict.setdefault("site", "s1")
        for key in ("edge_image", "central_image"):
            if not isinstance(conflict.get(key), dict | None):
                conflict[key] = None  # the store keeps what a report decoded to: objects
        explained = fleet.explain(conflict)
        assert explained.summary
        reads.matches(conflict, term_text.lower())
        labels.append("conflict")
    return " ".join(labels)


def seeds() -> list[bytes]:
    conflict = {
        "id": 7,
        "field": "ip",
        "value": "198.18.1.10",
        "edge_image": {"hostname": "web1", "ip": "198.18.1.10"},
        "central_image": {"id": "c1", "hostname": "rack1", "mac": "52:54:00:00:00:01"},
    }
    body = json.dumps(conflict).encode()
    return [
        b"52:54:00:aa:bb:01\nBearer ddi_" + b"A" * 43 + b"\n/sites/s1?kind=host\n" + body,
        b"198.18.2.50\nBearer sesame\n/\n",
        b"2001:db8::5\nbearer  x\n//evil.example/\n{}",
        b"web1.s1.example.\n\nhttps://x\n[]",
        b'5254.00aa.bb01\nBasic abc\n/search?q=x\n{"central_image": 3}',
        b"\n\n\n",
    ]


def target() -> Target:
    return Target(
        name="fleet",
        doc="the fleet console's inputs: a search term, an Authorization value, a login's "
        "next and a reported conflict, through classify, Readers.bearer, safe_next and explain",
        check=check,
        seeds=seeds,
        allowed=(),
        max_len=4096,
        dictionary=(b"\n", b"Bearer ", b"ddi_", b":", b"//", b"{", b"}", b"/128"),
    )

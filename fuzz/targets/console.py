"""The site console's inputs: a query parameter's name and value (``name=value``), as the
console's pages read them: the time filters (``parse_time``), the lease search box
(``lease_matches`` over a few leases), the history's subject (``subject_filter``), the change
log's kind (``kinds_of``), and the error a refused one becomes on the page (``problem_of``).

Outcomes: a parsed value, a match count, or the field's ``Invalid`` as the page shows it; any
other exception, or an ``Invalid`` the page could not explain, is a crash.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Network

from ddi.console.pages import MAX_QUERY, lease_matches
from ddi.console.problems import problem_of
from ddi.console.timefilter import parse_time
from ddi.errors import Invalid
from ddi.ipam.change_query import kinds_of, subject_filter
from ddi.ipam.models import Lease
from ddi.ipam.models6 import Lease6, Lease6Kind
from fuzz.core import Target, Unexpected

NOW = 1_800_000_000.0
_LEASES = [
    Lease(ip=IPv4Address("198.18.0.100"), mac="52:54:00:00:00:01", hostname="laptop",
          start=NOW - 60, end=NOW + 600, subnet="lan"),
    Lease(ip=IPv4Address("198.18.0.101"), mac=None, client_id="01:02", start=NOW - 60,
          end=NOW + 600, subnet="lan"),
]  # fmt: skip
_LEASES6 = [
    Lease6(kind=Lease6Kind.PD, prefix=IPv6Network("2001:db8:100::/56"), duid="00:01", iaid=1,
           mac="52:54:00:00:00:01", start=NOW, end=NOW + 600, preferred_end=NOW + 300,
           subnet="lan6"),
]  # fmt: skip


def _explained(exc: Invalid) -> str:
    problem = problem_of(exc)
    if problem is None or not problem.message or problem.field != exc.field:
        raise Unexpected(f"an Invalid the page cannot explain: {exc!r}")
    return f"invalid:{exc.field}"


def check(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    name, _, value = text.partition("=")
    if len(value) > MAX_QUERY:  # the page refuses it before reading it
        return "too-long"
    try:
        if name in ("since", "until"):
            when = parse_time(name, value, NOW)
            return "time:none" if when is None else "time"
        if name == "q":
            found = lease_matches(value.strip(), _LEASES, _LEASES6)
            if not value.strip() and len(found) != len(_LEASES) + len(_LEASES6):
                raise Unexpected("an empty search must list every lease")
            return f"matches:{min(len(found), 3)}"
        if name == "subject":
            field, _ = subject_filter(value)
            return f"subject:{field}"
        if name == "kind":
            return f"kinds:{len(kinds_of([value]))}"
    except Invalid as exc:
        return _explained(exc)
    return "ignored"


def seeds() -> list[bytes]:
    return [
        b"since=2d", b"until=2026-12-04", b"since=2026-12-04 10:30", b"until=yesterday",
        b"q=198.18.0.100", b"q=52-54-00-00-00-01", b"q=LAP", b"q=2001:db8:100::5", b"q=",
        b"subject=198.18.0.100", b"subject=52:54:00:00:00:01", b"subject=printer-2",
        b"subject=..", b"kind=host", b"kind=nope", b"other=1",
    ]  # fmt: skip


def target() -> Target:
    return Target(
        name="console",
        doc="site console query parameters (name=value): time filters, the lease search, the "
        "history subject and the change log kind, and the page's words for a refusal",
        check=check,
        seeds=seeds,
        max_len=512,
        dictionary=(
            b"since=",
            b"until=",
            b"q=",
            b"subject=",
            b"kind=",
            b"T10:30",
            b"+01:00",
            b"2026-12-04",
            b"52:54:00",
            b"198.18.0.",
            b"2001:db8::",
        ),
    )

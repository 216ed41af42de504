"""What the fleet console says about sites, conflicts and search terms: pure functions of
values and ``now`` (no I/O, no clock).

* A site's link is ``up`` when central heard from it (an upload or its cursor poll) within
  ``stale_after`` seconds, ``stale`` when longer ago, ``never`` when not once since enrolment.
* Its backlog age is what central can know without the edge saying it (the sync protocol
  carries no queue depth): while the link is up, how late the newest applied change arrived
  (central's receipt time minus the change's time at the edge, so the two clocks' skew is in
  it); while stale, unknown: anything the edge wrote since the last contact is still there.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ddi.errors import Invalid
from ddi.ipam import validate

LinkState = Literal["up", "stale", "never"]

LINK_TEXT: dict[str, tuple[str, str]] = {
    "up": ("\u2714", "up"),
    "stale": ("\u26a0", "stale"),
    "never": ("\u2716", "never seen"),
}
"""Each state's icon and words: the page never says it with colour alone."""


def link_state(heard_from: float | None, *, now: float, stale_after: float) -> LinkState:
    if heard_from is None:
        return "never"
    return "up" if now - heard_from <= stale_after else "stale"


def backlog_age(state: LinkState, last_change: tuple[float, float] | None) -> float | None:
    """Seconds the newest applied change took to reach central (``(time at the edge,
    received at)``), 0 for none; None when it cannot be known (stale or never seen)."""
    if state != "up":
        return None
    if last_change is None:
        return 0.0
    edge_time, received = last_change
    return max(0.0, received - edge_time)


def ago(seconds: float | None) -> str:
    """``12 s ago``, ``3 min ago``, ``2 h ago``, ``4 d ago``; ``never`` for None."""
    if seconds is None:
        return "never"
    return f"{duration(seconds)} ago"


def duration(seconds: float) -> str:
    value = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if value >= size:
            return f"{math.floor(value / size)} {unit}"
    return f"{math.floor(value)} s"


def iso(when: float) -> str:
    """An epoch time as HTML's ``<time datetime>`` wants it: ``2026-12-05T01:02:03Z``."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- search terms ---


@dataclass(frozen=True, slots=True, kw_only=True)
class Term:
    """A search term, classified: which image fields to look it up in, with which values."""

    text: str
    what: Literal["mac", "ipv4", "ipv6", "name"]
    lookups: tuple[tuple[str, str], ...]
    """``(field, value)`` pairs, each an exact match on one of ``central.schema.SEARCH_KEYS``."""
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None


MAX_TERM = 253
"""Characters of a search term: the longest DNS name in text (RFC 1035 §2.3.4)."""


def classify(raw: str) -> Term:
    """What ``raw`` is (a MAC, an IPv4 or IPv6 address, else a name) and where to look.

    Raises:
        Invalid: empty or longer than ``MAX_TERM``.
    """
    text = raw.strip()
    if not text:
        raise Invalid("q", raw, "give a MAC, an IP address or a name")
    if len(text) > MAX_TERM:
        raise Invalid("q", raw[:40], f"longer than {MAX_TERM} characters")
    try:
        mac = validate.parse_mac(text)
    except Invalid:
        pass
    else:
        return Term(text=text, what="mac", lookups=(("mac", mac),))
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        if isinstance(address, ipaddress.IPv4Address):
            return Term(text=text, what="ipv4", lookups=(("ip", str(address)),), address=address)
        return Term(
            text=text,
            what="ipv6",
            lookups=(("ip6", str(address)), ("prefix", f"{address}/128")),
            address=address,
        )
    name = text.lower().rstrip(".")
    lookups = [("hostname", name), ("name", name)]
    first = name.split(".", 1)[0]
    if first != name:
        # A host's FQDN: its hostname is the first label (the site domain is appended).
        lookups.append(("hostname", first))
    return Term(text=text, what="name", lookups=tuple(lookups))


def contains(cidr: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return address in ipaddress.ip_network(cidr, strict=False)
    except (TypeError, ValueError):
        return False


# --- conflicts ---


@dataclass(frozen=True, slots=True, kw_only=True)
class Explained:
    """A conflict in words, and the commands that resolve it either way."""

    summary: str
    central_fix: str
    """The command that withdraws central's reservation (then make it again without the
    collision)."""
    edge_fix: str
    """The command that settles it at the site, keeping one side."""


def explain(conflict: dict[str, Any]) -> Explained:
    """Why the site refused central's reservation, and how to resolve it.

    The site applies a central reservation only when it takes nothing the site owns (its
    hosts, active leases, records); otherwise it keeps serving its own object and reports the
    conflict. Central resolves it by withdrawing or changing its reservation; the site by
    ``ddi sync resolve ID --keep central`` (its colliding hosts are replaced) or
    ``--keep edge`` (central's reservation is set aside).
    """
    site = str(conflict.get("site", ""))
    field = str(conflict.get("field", ""))
    value = str(conflict.get("value", ""))
    central = conflict.get("central_image") or {}
    edge = conflict.get("edge_image") or {}
    central_id = str(central.get("id") or conflict.get("object_id") or "")
    described = _describe(central)
    if field == "id":
        summary = (
            f"Central's reservation ({described}) has the id of a host the site made itself;"
            " the site keeps its own host."
        )
    elif edge:
        summary = (
            f"Central's reservation ({described}) wants {field} {value}, which the site"
            f" already gives to {_describe(edge)}; the site keeps serving its own."
        )
    else:
        summary = (
            f"The site cannot apply central's reservation ({described}): {field} {value}"
            " (for example an address outside every subnet of the site)."
        )
    remove = f"ddi-central reserve remove --site {site} {central_id}"
    return Explained(
        summary=summary,
        central_fix=remove,
        # The id central keeps is the site's own conflict id (the site's report carries it).
        edge_fix=(
            f"ddi sync resolve {conflict.get('id', '')} --keep central|edge --reason '...'"
            f"   (on {site})"
        ),
    )


def _describe(image: dict[str, Any]) -> str:
    if "rtype" in image:
        what = "record"
    elif "state" in image:
        what = "the lease of"
    else:
        what = "host"
    parts = [
        str(image[key])
        for key in ("hostname", "ip", "mac", "name")
        if isinstance(image.get(key), str | int) and image.get(key) != ""
    ]
    return f"{what} {' '.join(parts)}" if parts else "(no details)"

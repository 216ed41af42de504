"""Reservations an operator makes in the IPAM (down direction): pure decisions from what the
IPAM marks for ddi and what this task queued before, to what the down log must get.

An IP address is *marked* for ddi by the tag ``ddi-reserve``; its site follows from its
namespace (``config.placement``), its MAC from the custom field ``ddi_mac``, its hostname from
the first label of its DNS name (``ip-A-B-C-D`` when it has none: a reservation needs a name at
the edge). Every look compares the full list of marked addresses with the reservations the task
holds (a full reconcile: a deletion or a removed tag leaves nothing a ``last_updated`` cursor
could find), so the plan is: queue what is new or changed, withdraw what is no longer marked,
and report, once, what cannot become a reservation.

The reservation's id is derived from the IPAM object's id (``host_id``): the same address
object is the same reservation on every collector and after every restart.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ddi.errors import Invalid
from ddi.ipam import validate
from ddi.ipam.models import Host, Owner

TAG = "ddi-reserve"
"""The tag that marks an IPAM address as a reservation for ddi."""
_IDS = uuid.UUID("1f0c53e2-54b1-4bd8-9a62-8f5d3c1b7a40")
"""The uuid5 namespace of reservation ids made from IPAM object ids."""
MAX_ID = 200
"""Longest IPAM object id taken (Nautobot's are UUIDs, NetBox's integers)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Marked:
    """An IPAM address marked for ddi, as the IPAM holds it."""

    ipam_id: str
    site: str
    address: str
    """As the IPAM gives it, with or without a mask (``198.18.0.20/24``)."""
    dns_name: str = ""
    mac: str = ""
    """The ``ddi_mac`` custom field ("" when unset)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Held:
    """A reservation the task made from an IPAM address (its row in ``nautobot_reserve``)."""

    ipam_id: str
    site: str
    host: Host | None
    """What the down log holds for it; None when the address never became one (refused)."""
    noted: frozenset[str] = frozenset()
    """Conflict and refusal keys already written to the IPAM object's journal."""
    refused: Host | None = None
    """The request central refused last (None once one went through)."""
    refused_at: str = ""
    """The site's cursor (``epoch:applied_seq``) then: central decides from the site's
    objects, so the same request is tried again only once they changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Queue:
    """Send ``host`` down to ``site`` (an upsert) for IPAM object ``ipam_id``."""

    ipam_id: str
    site: str
    host: Host


@dataclass(frozen=True, slots=True, kw_only=True)
class Withdraw:
    """Remove ``host`` from ``site`` (its IPAM object is gone, unmarked or moved)."""

    ipam_id: str
    site: str
    host: Host


@dataclass(frozen=True, slots=True, kw_only=True)
class Unusable:
    """An address that cannot become a reservation, and why (journaled once per ``key``)."""

    ipam_id: str
    site: str
    field: str
    value: str
    reason: str

    @property
    def key(self) -> str:
        return f"invalid:{self.field}:{self.value}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Served:
    """An address whose request the site's own reservation already fulfils (same IP and
    MAC): nothing to send, and whatever was sent for it before is withdrawn."""

    ipam_id: str
    site: str
    host_id: str
    """The site's reservation."""

    @property
    def key(self) -> str:
        return f"served:{self.host_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    withdraw: list[Withdraw] = field(default_factory=list)
    queue: list[Queue] = field(default_factory=list)
    unusable: list[Unusable] = field(default_factory=list)
    served: list[Served] = field(default_factory=list)


SiteHosts = Mapping[tuple[str, str], tuple[str, str]]
"""``(site, ip)`` → ``(host id, MAC)`` of each site's own (edge-owned) reservations."""


def host_id(ipam_id: str) -> str:
    """The reservation id (32 hex digits) of IPAM object ``ipam_id``."""
    return uuid.uuid5(_IDS, ipam_id[:MAX_ID]).hex


def hostname_of(dns_name: str, ip: ipaddress.IPv4Address) -> str:
    """The first label of ``dns_name``; ``ip-A-B-C-D`` without one.

    Raises:
        Invalid: a label that is no RFC 1123 hostname.
    """
    label = dns_name.strip().split(".", 1)[0]
    if not label:
        return "ip-" + str(ip).replace(".", "-")
    return validate.parse_hostname(label)


def reservation(marked: Marked) -> Host:
    """The central-owned reservation ``marked`` asks for.

    Raises:
        Invalid: no IPv4 address, no or a bad MAC, or a bad name.
    """
    text = marked.address.split("/", 1)[0]
    try:
        ip = ipaddress.ip_address(text[:64])
    except ValueError:
        raise Invalid("ip", text[:64], "not an IP address") from None
    if not isinstance(ip, ipaddress.IPv4Address):
        # The down log carries IPv4 reservations (the previous version's wire).
        raise Invalid("ip", text, "central reservations are IPv4")
    if not marked.mac:
        raise Invalid("mac", "", "set the ddi_mac custom field to the client's MAC")
    return Host(
        id=host_id(marked.ipam_id),
        ip=ip,
        hostname=hostname_of(marked.dns_name[:255], ip),
        mac=validate.parse_mac(marked.mac[:64]),
        owner=Owner.CENTRAL,
    )


def plan(
    marked: Iterable[Marked],
    held: Mapping[str, Held],
    own: SiteHosts | None = None,
    cursors: Mapping[str, str] | None = None,
) -> Plan:
    """What to send down so the down log holds one reservation per marked address.

    Withdrawals come first: an address moved from one object to another frees its IP, MAC
    or name before the new object claims it. An address the site already reserves for the
    same MAC itself (``own``) needs nothing: that is also where an address lands once the
    site refused it and the up direction wrote the site's reservation onto it.
    """
    own = own or {}
    cursors = cursors or {}
    out = Plan()
    seen: set[str] = set()
    for m in sorted(marked, key=lambda m: m.ipam_id):
        if m.ipam_id in seen:
            continue  # listed twice (a page boundary moved): the first wins
        seen.add(m.ipam_id)
        before = held.get(m.ipam_id)
        try:
            host = reservation(m)
        except Invalid as exc:
            out.unusable.append(
                Unusable(ipam_id=m.ipam_id, site=m.site, field=exc.field,
                         value=str(exc.value)[:100], reason=exc.reason)
            )  # fmt: skip
            if before is not None and before.host is not None:
                out.withdraw.append(Withdraw(ipam_id=m.ipam_id, site=before.site, host=before.host))
            continue
        if (
            before is not None
            and before.site == m.site
            and before.refused == host
            and before.refused_at == cursors.get(m.site, "")
        ):
            continue  # refused as it is, and the site has not changed since
        mine = own.get((m.site, str(host.ip)))
        if mine is not None and mine[0] != host.id and mine[1] == host.mac:
            out.served.append(Served(ipam_id=m.ipam_id, site=m.site, host_id=mine[0]))
            if before is not None and before.host is not None:
                out.withdraw.append(Withdraw(ipam_id=m.ipam_id, site=before.site, host=before.host))
            continue
        if before is not None and before.host is not None:
            if before.site == m.site and before.host == host:
                continue
            if before.site != m.site:
                out.withdraw.append(Withdraw(ipam_id=m.ipam_id, site=before.site, host=before.host))
        out.queue.append(Queue(ipam_id=m.ipam_id, site=m.site, host=host))
    for ipam_id, before in sorted(held.items()):
        if ipam_id not in seen and before.host is not None:
            out.withdraw.append(Withdraw(ipam_id=ipam_id, site=before.site, host=before.host))
    return out

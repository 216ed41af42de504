"""Who owns a DNS name: the one rule the DHCP hostnames, the zones and the store's writes share.

Rules (README "DHCP" and "DNS"):
* A reservation owns its names: its hostname under the site domain (and, for the store and
  the DHCP server, under its subnet's domain). A static record owns the name it sits at.
* A reservation comes before a record when both claim a name; each of them comes before a
  lease. A bound lease's hostname is published only at a name neither claims and at an
  address no reservation holds; otherwise it is refused and counted as a collision, except
  when the owner is the reservation of the lease's own address (its record stands for it).
* A reservation and an address record (A, AAAA, CNAME) never share a name: the store refuses
  the second one. Records of other types (MX, TXT...) sit beside a reservation.

Pure: the callers gather the claims on a name from their own data (the index's dictionaries, the
store's rows) and ask here.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from ddi.ipam.models import Host, Record

__all__ = [
    "ADDRESS_TYPES",
    "lease_collides",
    "lease_publishes",
    "name_owner",
    "write_conflict",
]

ADDRESS_TYPES = frozenset({"A", "AAAA", "CNAME"})
"""Record types that say where a name is: a reservation's name never carries one."""

Owner = Host | Record


def name_owner(*, hosts: Iterable[Host] = (), records: Iterable[Record] = ()) -> Owner | None:
    """The owner of a name that ``hosts`` (reservations named so) and ``records`` (static
    records at it) claim: the first reservation, else the first record, else None (then a
    bound lease may take the name)."""
    for host in hosts:
        return host
    for record in records:
        return record
    return None


def lease_publishes(owner: Owner | None, reserved: Host | None) -> bool:
    """Whether a bound lease gets A and PTR records: nothing owns its name (``owner``) and no
    reservation holds its address (``reserved``)."""
    return owner is None and reserved is None


def lease_collides(
    ip: IPv4Address | IPv6Address, owner: Owner | None, reserved: Host | None
) -> bool:
    """Whether a bound lease (DHCPv4 or DHCPv6) at ``ip`` is refused its name and counted: it
    does not publish, unless the name's owner is the reservation of that very address."""
    if isinstance(owner, Host) and ip in (owner.ip, owner.ip6):
        return False
    return not lease_publishes(owner, reserved)


def write_conflict(
    claimant: Owner, *, hosts: Iterable[Host] = (), records: Iterable[Record] = ()
) -> Owner | None:
    """What keeps the store from writing ``claimant`` (a reservation, or a record) at a name
    that ``hosts`` and ``records`` already claim, or None when it may be written."""
    if isinstance(claimant, Host):
        return name_owner(records=(r for r in records if r.rtype.upper() in ADDRESS_TYPES))
    if claimant.rtype.upper() not in ADDRESS_TYPES:
        return None
    return name_owner(hosts=hosts)

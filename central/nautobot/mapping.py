"""What a site's objects become in a source-of-truth IPAM (Nautobot, or any ``adapter.Ipam``):
pure functions from the pull feed's images to the objects the IPAM should hold.

Each ddi object *claims* IPAM keys: a subnet (v4 or v6) claims its prefix; a reservation
claims its IPv4 and IPv6 addresses; a bound lease (v4, or a v6 IA_NA) claims its address.
Several objects may claim one address (a reserved host's own lease does), and the IPAM holds
one object per address and namespace, so what it should hold for a key is the *merge* of the
claims on it: a reservation wins over a lease (status Reserved, the reservation's name and
MAC), a bound lease alone makes a DHCP address. No claim left: the key is deleted.

Leases that are released, expired or declined claim nothing; delegated prefixes (IA_PD) are
not mapped.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_NAME = 255
"""Nautobot's dns_name length (RFC 1035 §2.3.4: 255 octets for a name)."""


class Status(enum.StrEnum):
    """The IPAM status of an address (Nautobot's built-in status names)."""

    RESERVED = "Reserved"
    DHCP = "DHCP"
    ACTIVE = "Active"


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """One ddi object's claim on an IPAM key (``prefix:CIDR`` or ``ip:ADDRESS``)."""

    kind: str
    """The ddi kind: subnet, subnet6, host, lease, lease6."""
    object_id: str
    key: str
    dns_name: str = ""
    mac: str = ""
    description: str = ""

    def to_image(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "object_id": self.object_id,
            "key": self.key,
            "dns_name": self.dns_name,
            "mac": self.mac,
            "description": self.description,
        }

    @classmethod
    def from_image(cls, image: Mapping[str, Any]) -> Claim:
        return cls(
            kind=str(image["kind"]),
            object_id=str(image["object_id"]),
            key=str(image["key"]),
            dns_name=str(image.get("dns_name", "")),
            mac=str(image.get("mac", "")),
            description=str(image.get("description", "")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixState:
    """A prefix the IPAM should hold in the site's namespace."""

    prefix: str
    description: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressState:
    """An IP address the IPAM should hold in the site's namespace (host mask: /32, /128)."""

    address: str
    dns_name: str
    mac: str
    status: Status
    sources: tuple[str, ...]
    """``kind:object_id`` of every claim merged into it, sorted (a comment for operators)."""


Desired = PrefixState | AddressState


class Unmapped(ValueError):
    """An image the mapping cannot read (a key missing or not an address); counted."""


def _name(value: object) -> str:
    text = "" if value is None else str(value)
    return text[:MAX_NAME].rstrip(".").lower()


def _host_key(text: object) -> str:
    try:
        address = ipaddress.ip_address(str(text))
    except ValueError:
        raise Unmapped(f"not an address: {str(text)[:60]!r}") from None
    return f"ip:{address}"


def claims(kind: str, object_id: str, image: Mapping[str, Any] | None) -> tuple[Claim, ...]:
    """The keys the object ``kind``/``object_id`` with ``image`` claims (none once deleted:
    ``image`` None).

    Raises:
        Unmapped: the image lacks a field the kind needs, or holds no address there.
    """
    if image is None:
        return ()
    try:
        return _claims(kind, object_id, image)
    except (KeyError, TypeError) as exc:
        raise Unmapped(f"{kind} {object_id[:60]}: {exc!r}") from None


def _claims(kind: str, object_id: str, image: Mapping[str, Any]) -> tuple[Claim, ...]:
    base = {"kind": kind, "object_id": object_id}
    if kind in ("subnet", "subnet6"):
        try:
            network = ipaddress.ip_network(str(image["cidr"]), strict=True)
        except ValueError:
            raise Unmapped(f"not a network: {str(image['cidr'])[:60]!r}") from None
        return (Claim(**base, key=f"prefix:{network}", description=_name(image.get("name"))),)
    if kind == "host":
        keys = [image[f] for f in ("ip", "ip6") if image.get(f)]
        return tuple(
            Claim(
                **base,
                key=_host_key(k),
                dns_name=_name(image.get("hostname")),
                mac=_name(image.get("mac")),
            )
            for k in keys
        )
    if kind == "lease":
        if image["state"] != "bound":
            return ()
        return (
            Claim(
                **base,
                key=_host_key(image["ip"]),
                dns_name=_name(image.get("hostname")),
                mac=_name(image.get("mac")),
            ),
        )
    if kind == "lease6":
        if image["state"] != "bound" or image["kind"] != "na":
            return ()
        network = ipaddress.ip_network(str(image["prefix"]), strict=False)
        return (
            Claim(
                **base,
                key=_host_key(network.network_address),
                dns_name=_name(image.get("hostname")),
                mac=_name(image.get("mac")),
            ),
        )
    return ()  # records and kinds a newer edge adds: not IPAM objects


_RANK = {"host": 0, "lease": 1, "lease6": 1}


def merge(key: str, on_key: Iterable[Claim]) -> Desired | None:
    """What the IPAM should hold for ``key`` given every claim on it; None: nothing."""
    found = sorted(on_key, key=lambda c: (_RANK.get(c.kind, 2), c.kind, c.object_id))
    if not found:
        return None
    kind, _, value = key.partition(":")
    if kind == "prefix":
        return PrefixState(prefix=value, description=found[0].description)
    first = found[0]
    address = ipaddress.ip_address(value)
    # A name or MAC the reservation lacks is taken from the lease on the same address.
    dns_name = next((c.dns_name for c in found if c.dns_name), "")
    mac = next((c.mac for c in found if c.mac), "")
    return AddressState(
        address=f"{address}/{address.max_prefixlen}",
        dns_name=dns_name,
        mac=mac,
        status=Status.RESERVED if first.kind == "host" else Status.DHCP,
        sources=tuple(sorted(f"{c.kind}:{c.object_id}" for c in found)),
    )


ObjectKey = tuple[str, str, str]
"""``(site, kind, object_id)`` of a ddi object."""
SiteKey = tuple[str, str]
"""``(site, key)`` of an IPAM object."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """A page of the feed read as claims: each touched object's claims after the page."""

    after: dict[ObjectKey, tuple[Claim, ...]]
    unmapped: int
    """Entries whose image could not be read (counted; the object then claims nothing)."""


def read_page(objects: Iterable[ObjectKey], current: Mapping[ObjectKey, Mapping[str, Any]]) -> Page:
    """The claims of every object a page of the feed touched, from each object's *current*
    image at central (``current``; absent: deleted), not the entry's: replaying old entries
    then rebuilds today's state, so a replay writes nothing the IPAM already holds."""
    after: dict[ObjectKey, tuple[Claim, ...]] = {}
    unmapped = 0
    for obj in objects:
        try:
            after[obj] = claims(obj[1], obj[2], current.get(obj))
        except Unmapped:
            unmapped += 1
            after[obj] = ()
    return Page(after=after, unmapped=unmapped)


def affected_keys(page: Page, before: Mapping[ObjectKey, tuple[Claim, ...]]) -> set[SiteKey]:
    """Every key a touched object claimed before the page or claims after it."""
    keys: set[SiteKey] = set()
    for obj, now in page.after.items():
        for c in (*before.get(obj, ()), *now):
            keys.add((obj[0], c.key))
    return keys


def keys_in_entries(changes: Iterable[Mapping[str, Any]]) -> set[SiteKey]:
    """Every key an entry's image in a page of the feed names (unreadable images: none).

    A round that wrote but never committed (it failed mid-way, or its collector died) leaves
    writes in the IPAM that the claim table does not know. Each was made from an image that
    some entry after the cursor carries, so the redo reaches it here, even when the object
    has since moved or been deleted."""
    keys: set[SiteKey] = set()
    for c in changes:
        image = c.get("image")
        if not isinstance(image, Mapping) or not image:
            continue
        try:
            found = claims(str(c["kind"]), str(c["object_id"]), image)
        except Unmapped:
            continue
        keys.update((str(c["site"]), claim.key) for claim in found)
    return keys


def plan(page: Page, on_keys: Mapping[SiteKey, Iterable[Claim]]) -> dict[SiteKey, Desired | None]:
    """What the IPAM should hold for every affected key (None: nothing), given the claims
    held on those keys before the page (``on_keys``, from the claim table)."""
    held: dict[SiteKey, list[Claim]] = {}
    for (site, key), found in on_keys.items():
        held[(site, key)] = [c for c in found if (site, c.kind, c.object_id) not in page.after]
    for obj, now in page.after.items():
        for c in now:
            held.setdefault((obj[0], c.key), []).append(c)
    keys = set(on_keys) | set(held)
    return {k: merge(k[1], held.get(k, ())) for k in keys}


def objects_touched(changes: Iterable[Mapping[str, Any]]) -> set[ObjectKey]:
    """``(site, kind, object_id)`` of every entry of a page of the feed."""
    return {(str(c["site"]), str(c["kind"]), str(c["object_id"])) for c in changes}

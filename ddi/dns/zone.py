"""A DNS zone's data, kept compact, and the wire and name helpers the zones share.

A name's records are kept as compact keys ``(type, TTL, rdata text)`` (the SOA as a marker
standing for the zone's current SOA); dnslib RRs are built when a node is read, and for the
journal's deltas (:class:`Delta`, one IXFR step). Nearly every name holds one derived record (a
host's A, an address's PTR): those live in one dict the zones share, ``Zones.plain``, keyed by
the owner's wire name and holding the address as an int or the PTR target's wire name. The
compiled answers (``ddi.dns.compiled``) read that dict as it is, so these names are stored once.

What the zones hold, and how they follow the IPAM index, is :mod:`ddi.dns.zones`.
Pure: no I/O, no clock; records are dnslib values.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from dnslib import AAAA, CNAME, MX, NS, PTR, QTYPE, RD, RR, SRV, TXT, A, DNSLabel

from ddi.dns.wire import QType

SOA_TYPE = int(QType.SOA)
NS_TYPE = int(QType.NS)
CNAME_TYPE = int(QType.CNAME)

Key = tuple[int, int, str]
"""A record's identity and content: type, TTL and rdata in presentation form."""
Plain = dict[bytes, "int | bytes"]
"""Owner's wire name → its one plain record: an A's address as an int, or a PTR's target in
wire form (the type and TTL are the owning zone's ``plain_type`` and ``plain_ttl``)."""
A_TYPE = int(QType.A)
PTR_TYPE = int(QType.PTR)
AAAA_TYPE = int(QType.AAAA)


def name_wire(name: str) -> bytes | None:
    """``name`` (absolute form) in uncompressed wire form, or None when it cannot be a key: a
    label empty, longer than 63 octets, not ASCII or holding a zero byte, or the name longer
    than 255 octets (RFC 1035 §2.3.4)."""
    if not name.isascii() or len(name) > 253 or "\x00" in name:
        return None
    parts = name.encode().split(b".")
    lengths = list(map(len, parts))
    if 0 in lengths or max(lengths) > 63:
        return None
    # map() instead of a comprehension: run for every name at start-up, a fifth cheaper.
    return b"".join(map(bytes.__add__, map(_LENGTHS.__getitem__, lengths), parts)) + b"\x00"


_LENGTHS = tuple(bytes((n,)) for n in range(64))


_OCTETS = {str(n): n for n in range(256)}


def canonical_ipv4(text: str) -> int | None:
    """The address of ``text`` as an int when it is a dotted quad in canonical form (what
    ``str(IPv4Address)`` writes: no leading zeros, no spaces), else None."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    a, b, c, d = map(_OCTETS.get, parts)
    if a is None or b is None or c is None or d is None:
        return None
    return a << 24 | b << 16 | c << 8 | d


def under(wire: bytes, suffix: bytes) -> bool:
    """The key wire name ``wire`` is ``suffix`` or below it (label boundaries respected)."""
    start = len(wire) - len(suffix)
    if start < 0 or not wire.endswith(suffix):
        return False
    pos = 0
    while pos < start:
        pos += wire[pos] + 1
    return pos == start


def wire_text(wire: bytes) -> str:
    """A key wire name (from :func:`name_wire`) back in absolute form."""
    parts = []
    pos = 0
    while wire[pos]:
        end = pos + 1 + wire[pos]
        parts.append(wire[pos + 1 : end].decode())
        pos = end
    return ".".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Delta:
    """One IXFR step (RFC 1995 §4): the zone moved from ``old_serial`` to ``new_serial`` by
    removing then adding these records (SOA excluded)."""

    old_serial: int
    new_serial: int
    removed: tuple[Any, ...]
    added: tuple[Any, ...]


def absolute(name: str) -> str:
    """``Host.Site.Example.`` → ``host.site.example`` (the key form used throughout)."""
    return name.rstrip(".").lower()


def reverse_name(ip: IPv4Address) -> str:
    return ".".join(reversed(str(ip).split("."))) + ".in-addr.arpa"


def reverse_networks(cidr: IPv4Network) -> list[IPv4Network]:
    """The octet-boundary networks whose reverse zones cover ``cidr``."""
    boundary = max(8, min(24, -(-cidr.prefixlen // 8) * 8))
    if cidr.prefixlen >= boundary:
        return [cidr.supernet(new_prefix=boundary)]
    return list(cidr.subnets(new_prefix=boundary))


def reverse_origin(net: IPv4Network) -> str:
    octets = str(net.network_address).split(".")[: net.prefixlen // 8]
    return ".".join(reversed(octets)) + ".in-addr.arpa"


def record_rdata(rtype: str, value: str) -> RD:
    """Presentation-form rdata of a static record → dnslib rdata. Names in ``value`` are absolute.

    Raises:
        ValueError: the value does not fit the type.
    """
    parts = value.split()
    try:
        match rtype:
            case "A":
                return A(str(IPv4Address(value.strip())))
            case "AAAA":
                return AAAA(value.strip())
            case "CNAME":
                return CNAME(label(absolute(value.strip())))
            case "PTR":
                return PTR(label(absolute(value.strip())))
            case "NS":
                return NS(label(absolute(value.strip())))
            case "MX":
                pref, host = parts
                return MX(label(absolute(host)), int(pref))
            case "SRV":
                prio, weight, port, target = parts
                return SRV(int(prio), int(weight), int(port), label(absolute(target)))
            case "TXT":
                return TXT(_txt_strings(value))
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{rtype} {value!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - dnslib raises its own DNSError on bad rdata
        raise ValueError(f"{rtype} {value!r}: {exc}") from None
    raise ValueError(f"unsupported record type {rtype}")


def _txt_strings(value: str) -> list[bytes]:
    """``"a b" "c"`` → [b"a b", b"c"]; unquoted text is one string (split at 255 bytes)."""
    text = value.strip()
    if not text.startswith('"'):
        raw = text.encode()
        return [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    out: list[bytes] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        if text[i] != '"':
            raise ValueError("text outside quotes")
        j = i + 1
        buf = []
        while j < len(text) and text[j] != '"':
            if text[j] == "\\" and j + 1 < len(text):
                j += 1
            buf.append(text[j])
            j += 1
        if j >= len(text):
            raise ValueError("unclosed quote")
        chunk = "".join(buf).encode()
        if len(chunk) > 255:
            raise ValueError("a TXT string is longer than 255 bytes")
        out.append(chunk)
        i = j + 1
    return out


def make_rr(owner: DNSLabel, key: Key) -> Any:
    """The dnslib RR of ``key`` (valid by construction: built from rdata that parsed)."""
    rtype, ttl, text = key
    return RR(owner, rtype, ttl=ttl, rdata=record_rdata(QTYPE[rtype], text))


def label(name: str) -> DNSLabel:
    """A dnslib label for an absolute name (already validated: letters, digits, '-', '_').

    Built from a tuple of labels: dnslib's parsing of a ``str`` name compares bytes with str,
    which ``python -bb`` turns into an error."""
    return DNSLabel(tuple(part.encode() for part in name.split(".") if part))


@dataclass(slots=True)
class Zone:
    """One zone's current content. Names are keys in :func:`absolute` form."""

    origin: str
    serial: int
    soa: Any
    """The SOA RR (rebuilt on every serial change)."""
    data: dict[str, str | Key | tuple[Key, ...]] = field(default_factory=dict)
    """Each owner name's records as keys, grouped by type; an SOA key stands for ``soa``.
    One key is held bare, and one record of ``plain_type`` with ``plain_ttl`` as its rdata
    text alone, unless it is in ``plain``. See :meth:`keys`."""
    plain_type: int = 1
    plain_ttl: int = 300
    plain: Plain = field(default_factory=dict)
    """The names holding one record of ``plain_type`` and ``plain_ttl`` in canonical form (a
    host's A or PTR), shared by the zones of one :class:`Zones`: the entries under
    ``origin_wire`` and under none of ``inner`` are this zone's."""
    origin_wire: bytes = b""
    inner: tuple[bytes, ...] = ()
    """The wire names of the zones nested in this one (their names are not this zone's)."""
    children: dict[str, int] = field(default_factory=dict)
    """Count of owner names strictly below each name: a name with children exists (RFC 8020
    empty non-terminal) even without RRsets."""
    journal: deque[Delta] = field(default_factory=deque)
    delegations: set[str] = field(default_factory=set)
    """Non-apex names with NS RRsets: zone cuts."""

    def contains(self, name: str) -> bool:
        return name == self.origin or name.endswith("." + self.origin)

    @property
    def rrsets(self) -> Mapping[str, dict[int, list[Any]]]:
        """Every node, as :meth:`node` builds it (read-only)."""
        return _Nodes(self)

    def keys(self, name: str) -> tuple[Key, ...]:
        """``name``'s record keys (empty when it has none)."""
        held = self.data.get(name)
        if held is None:
            wire = name_wire(name) if self.plain else None
            value = None if wire is None else self.plain.get(wire)
            if value is None:
                return ()
            return ((self.plain_type, self.plain_ttl, self._plain_text(value)),)
        if isinstance(held, str):
            return ((self.plain_type, self.plain_ttl, held),)
        return (held,) if isinstance(held[0], int) else held

    def node(self, name: str) -> dict[int, list[Any]] | None:
        """The RRsets at ``name`` (dnslib RRs built on each call), or None."""
        keys = self.keys(name)
        if not keys:
            return None
        owner = label(name)
        out: dict[int, list[Any]] = {}
        for key in keys:
            rr = self.soa if key[0] == SOA_TYPE else make_rr(owner, key)
            out.setdefault(key[0], []).append(rr)
        return out

    def _plain_text(self, value: int | bytes) -> str:
        if isinstance(value, int):
            return str(IPv4Address(value))
        return wire_text(value)

    def has(self, name: str) -> bool:
        """``name`` holds records."""
        if name in self.data:
            return True
        wire = name_wire(name) if self.plain else None
        return wire is not None and wire in self.plain

    def names(self) -> Iterator[str]:
        """Every name holding records (those of ``data``, then the plain ones)."""
        yield from self.data
        for wire in self.plain_wires():
            yield wire_text(wire)

    def plain_wires(self) -> Iterator[bytes]:
        """The wire names of this zone's entries in ``plain``."""
        suffix, inner = self.origin_wire, self.inner
        for wire in self.plain:
            if under(wire, suffix) and not (inner and any(under(wire, i) for i in inner)):
                yield wire

    def count(self) -> int:
        return len(self.data) + sum(1 for _ in self.plain_wires())

    def exists(self, name: str) -> bool:
        return name in self.children or self.has(name)

    def cut_above(self, name: str) -> str | None:
        """The closest zone cut at or above ``name`` (below the apex), if any."""
        if not self.delegations:
            return None
        while name != self.origin and name:
            if name in self.delegations:
                return name
            name = name.partition(".")[2]
        return None

    def all_records(self) -> Iterator[Any]:
        """Every RR except the SOA, in a stable order (for AXFR)."""
        for name in sorted(self.names()):
            for rtype, rrs in sorted(self.node(name).items()):  # type: ignore[union-attr]
                if rtype == SOA_TYPE and name == self.origin:
                    continue
                yield from rrs

    def deltas_since(self, serial: int) -> list[Delta] | None:
        """The journal steps from ``serial`` to now, or None when it does not reach back."""
        steps = list(self.journal)
        for i, d in enumerate(steps):
            if d.old_serial == serial:
                return steps[i:]
        return None

    def _set(self, name: str, keys: tuple[Key, ...], wire: bytes | None) -> None:
        """Put ``keys`` at ``name`` (``wire``: its :func:`name_wire`)."""
        plain = self.plain
        had_plain = wire is not None and plain.pop(wire, None) is not None
        had = had_plain or self.data.pop(name, None) is not None
        if keys:
            value = self._plain_value(keys)
            if value is not None and wire is not None:
                plain[wire] = value
            else:
                self.data[name] = self._compact(keys)
            if not had:
                self._count_ancestors(name, 1)
        elif had:
            self._count_ancestors(name, -1)
        if name != self.origin and any(k[0] == NS_TYPE for k in keys):
            self.delegations.add(name)
        elif self.delegations:
            self.delegations.discard(name)

    def _plain_value(self, keys: tuple[Key, ...]) -> int | bytes | None:
        """The ``plain`` form of ``keys``: one record of the zone's plain type and TTL whose
        text is canonical (read back from the value, it is the same key); else None."""
        if len(keys) != 1:
            return None
        rtype, ttl, text = keys[0]
        if ttl != self.plain_ttl or rtype != self.plain_type:
            return None
        if rtype == A_TYPE:
            return canonical_ipv4(text)
        if rtype == PTR_TYPE:
            # Split at the dots and joined again: the text reads back the same.
            return name_wire(text)
        return None

    def _compact(self, keys: tuple[Key, ...]) -> str | Key | tuple[Key, ...]:
        if len(keys) != 1:
            return keys
        key = keys[0]
        if key[0] == self.plain_type and key[1] == self.plain_ttl:
            return key[2]
        return key

    def _count_ancestors(self, name: str, step: int) -> None:
        while name != self.origin:
            name = name.partition(".")[2]
            count = self.children.get(name, 0) + step
            if count:
                self.children[name] = count
            else:
                self.children.pop(name, None)


class _Nodes(Mapping[str, dict[int, list[Any]]]):
    """A zone's nodes as a read-only mapping of name → RRsets."""

    __slots__ = ("_zone",)

    def __init__(self, zone: Zone) -> None:
        self._zone = zone

    def __getitem__(self, name: str) -> dict[int, list[Any]]:
        node = self._zone.node(name)
        if node is None:
            raise KeyError(name)
        return node

    def __iter__(self) -> Iterator[str]:
        return self._zone.names()

    def __len__(self) -> int:
        return self._zone.count()

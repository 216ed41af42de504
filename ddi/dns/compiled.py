"""Answers compiled from the zones: the UDP and TCP hot path, a lookup and a copy.

Every (name, type) the local zones answer is encoded once, when the zone changes, as the
bytes that follow the question; NXDOMAIN and NODATA are one template per zone (its SOA) with
the question's offset spliced in. A query is answered without decoding it:

1. The header is checked with byte compares: a QUERY (QR and opcode zero), one question, no
   answer or authority records, at most one additional record, which must be an EDNS version 0
   OPT (RFC 6891 §6.1.1) ending the message.
2. The question name runs to the first zero byte. Lower-cased (ASCII letters only, RFC 4343), it
   is the key of one dict lookup. A table key holds no zero byte but its root label and no
   length byte above 63, so a query that hits a key has exactly that name, uncompressed.
3. A hit writes the reply into the query's own buffer: the 10 header bytes after the ID (flags:
   QR, AA, RD and CD copied, RFC 1035 §4.1.1, RFC 4035 §3.2.2), the question stays where the
   client put it (its case kept, RFC 4343 §4.1), the answer after it, then our OPT when the
   query had one (RFC 6891 §6.2.5: our payload size, no options).
4. A miss walks the name's suffixes to the closest zone apex: NXDOMAIN there, or NODATA when
   the name exists without the type; the authority SOA's owner is a pointer to the apex inside
   the question (RFC 1035 §4.1.4, RFC 2308 §2).

Anything else returns 0 and takes the responder's full path, which gives the same bytes
(tests/unit/dns/test_compiled.py compares both): a name at or below a zone cut, a CNAME owner
asked for another type (the chain), ANY and the meta types, class ANY, a name outside the
zones, a reply that needs TC (the full path truncates), TSIG, transfers, NOTIFY, forwarding.

Layout (memory: about 140 bytes a name, ``statistics()['bytes']``): nearly every name holds
one derived record, a host's A or an address's PTR; those are read from the zones' own store,
``Zones.plain`` (the wire name → the address as an int, or the target's wire name), and their
answer is packed in place with ``struct`` (nothing is kept per name beyond what the zones
keep). ``table`` holds the other names, looked up after ``plain``: it maps the wire
name to the bytes ``type, class, answer sections, meta``: the first four equal the question's
type and class, so a hit is checked with ``startswith`` and the value is written over the
question's tail; ``meta`` (one byte, written past the reply's end) picks the precomputed headers
and the metric label. A name with several types holds a dict from type-and-class to such
bytes; one with none (an empty non-terminal, RFC 8020) holds ``b""``; a plain name at or
below a zone cut is in ``full`` instead (the full path: a referral). A serial bump touches the
zone's template and its apex only.

Pure: no sockets, no clock.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from dnslib import DNSHeader, DNSQuestion, DNSRecord

from ddi.dns.engine import (
    AA,
    LOCAL,
    QR,
    RA,
    Answer,
    DnsEngine,
    Reason,
    Transport,
    qtype_label,
    rcode_label,
)
from ddi.dns.wire import HEADER, QType, Rcode, pack, rr_tail
from ddi.dns.zone import Zone, absolute, label, name_wire, under
from ddi.dns.zones import ApplyResult

__all__ = ["Compiled", "Negative", "name_wire"]

MAX_METAS = 256
"""Distinct (flags, counts, label) shapes: the meta is one byte."""
SLOW = b""
"""In a name's dict: other types take the full path (a CNAME owner: the chain)."""

_HEADER_BITS = {
    bytes((flags, low, 0, 1, 0, 0, 0, 0, 0, additional)): (flags & 1)
    | (2 if low & 0x10 else 0)
    | (4 if additional else 0)
    for flags in range(8)
    for low in range(256)
    for additional in (0, 1)
}
"""Each header after the ID the table answers → its bits (1 RD, 2 CD, 4 EDNS): QR and opcode
zero (a QUERY, RFC 1035 §4.1.1), any AA/TC/RD and low byte, one question, no answer or
authority record, at most one additional (the OPT). One dict lookup checks the header."""
_IN = b"\x00\x01"
_OPT_QUERY = struct.Struct("!BHHxBxxH")  # root, TYPE, payload size, (ext rcode), version, RDLEN
_OPTION = struct.Struct("!HH")
_RR_FIXED = struct.Struct("!HHIH")
_COUNTS = struct.Struct("!HHHHH")
_OPT_TYPE = int(QType.OPT)
_FULL_PATH_TYPES = frozenset(int(t) for t in (QType.OPT, QType.TKEY, QType.TSIG, QType.IXFR,
                              QType.AXFR, QType.MAILB, QType.MAILA, QType.ANY))  # fmt: skip
"""Query types the full path decides even at a name that exists (meta types, transfers)."""
_POINTERS = tuple((0xC000 | offset).to_bytes(2, "big") for offset in range(12 + 256))
"""A compression pointer to each offset a question name can start a suffix at."""
_TO_QUESTION = _POINTERS[12]
_A = int(QType.A)
_PTR = int(QType.PTR)
_CNAME = int(QType.CNAME)
_SOA = int(QType.SOA)
_NS = int(QType.NS)
_MX = int(QType.MX)
_SRV = int(QType.SRV)
_NXDOMAIN = int(Rcode.NXDOMAIN)
_NOERROR = int(Rcode.NOERROR)


_PACK_A = struct.Struct("!HHHIHI").pack_into  # pointer to the question, TYPE, CLASS, TTL,
# RDLENGTH, address (RFC 1035 §3.4.1)
_PACK_PTR = struct.Struct("!HHHIH").pack_into  # the same before a PTR's target (§3.3.12)
_ROOM = bytes(16 + 255 + 11)
_A_QUESTION = struct.pack("!HH", _A, 1)
_PTR_QUESTION = struct.pack("!HH", _PTR, 1)


@dataclass(frozen=True, slots=True)
class Negative:
    """A zone's negative answers: its SOA's wire after the owner, and its apex's wire length."""

    soa: bytes
    origin_length: int


class Compiled:
    """The compiled answers of ``engine``'s zones (build once, then ``update`` per change)."""

    def __init__(self, engine: DnsEngine) -> None:
        self.engine = engine
        self.zones = engine.zones
        settings = engine.settings
        self.udp_size = settings.edns_udp_size
        self._flags = QR | AA | (RA if settings.forwarding else 0)
        self.opt = struct.pack("!BHHIH", 0, _OPT_TYPE, settings.edns_udp_size, 0, 0)
        self.table: dict[bytes, bytes | dict[bytes, bytes]] = {}
        self._get = self.table.get
        self.plain = self.zones.plain
        """The zones' plain names (``Zones.plain``), answered from there as they are: a name
        the table holds is answered from the table instead."""
        self._plain_get = self.plain.get
        self._plain_ttl = self.zones.settings.ttl
        self.negatives: dict[bytes, Negative | None] = {}
        """Each apex's wire name → its templates; each zone cut → None (the full path)."""
        self.heads: list[tuple[bytes, ...]] = []
        """Per meta: the 10 header bytes after the ID for (RD, CD, EDNS) = bits (1, 2, 4)."""
        self.labels: list[tuple[str, str]] = []
        """Per meta: the (qtype, rcode) metric label."""
        self.counts = [0] * MAX_METAS
        """Per meta: replies sent since ``drain`` (the UDP loop counts into it)."""
        self._metas: dict[tuple[int, int, int, int, str], int] = {}
        self._negative_metas: dict[int, int] = {}
        """``rcode << 16 | qtype`` → meta, for the negative answers."""
        self._nodata_heads = self._heads(self._flags, 0, 1, 0)
        self._nxdomain_heads = self._heads(self._flags | _NXDOMAIN, 0, 1, 0)
        self._a_meta = self._meta(self._flags, 1, 0, 0, _A) or 0
        self._ptr_meta = self._meta(self._flags, 1, 0, 0, _PTR) or 0
        self._a_heads = self.heads[self._a_meta]
        self._ptr_heads = self.heads[self._ptr_meta]
        self.full: set[bytes] = set()
        """Plain names at or below a zone cut: the full path answers them (a referral)."""
        self._refs: dict[str, set[str]] = {}
        """Target name → the names whose answers carry its addresses (NS, MX, SRV)."""
        self._deps: dict[str, tuple[str, ...]] = {}
        self._cuts: frozenset[str] = frozenset()
        self.left_out = 0
        """Names (or types) the table leaves to the full path, counted at the last build."""
        self.rebuild()

    # --- the hot path --------------------------------------------------------------------------

    def write(self, data: bytes, buf: Any, o: int, end: int, udp: bool) -> int:
        """Write the reply to the query ``data`` into ``buf`` at ``o``, where ``data`` already
        lies (the ID stays; nothing past ``end`` is written).

        Returns:
            ``length << 8 | meta``, or 0 when the full path must answer (``buf`` is then
            untouched).
        """
        bits = _HEADER_BITS.get(data[2:12])
        if bits is None:
            return 0
        p = data.find(b"\x00", 12)
        if p < 0:
            return 0
        q = p + 5
        if bits < 4:
            if q != len(data):
                return 0
            limit = 512 if udp else 65535
        else:
            limit = self._edns_limit(data, q, udp)
            if not limit:
                return 0
        name = data[12 : p + 1].lower()
        plain: Any = self._plain_get(name)  # most names: their A or PTR, packed here
        if plain is not None:
            if self.full and name in self.full:
                return 0
            tail = data[p + 1 : q]
            if plain.__class__ is int:
                if tail != _A_QUESTION:
                    return self._negative(data, name, buf, o, end, p, bits, limit, _NOERROR)
                size = q + 16
                total = size + 11 if bits & 4 else size
                if total > limit or o + total > end:
                    return 0
                buf[o + 2 : o + 12] = self._a_heads[bits]
                _PACK_A(buf, o + q, 0xC00C, _A, 1, self._plain_ttl, 4, plain)
                kind = self._a_meta
            else:
                if tail != _PTR_QUESTION:
                    return self._negative(data, name, buf, o, end, p, bits, limit, _NOERROR)
                size = q + 12 + len(plain)
                total = size + 11 if bits & 4 else size
                if total > limit or o + total > end:
                    return 0
                buf[o + 2 : o + 12] = self._ptr_heads[bits]
                _PACK_PTR(buf, o + q, 0xC00C, _PTR, 1, self._plain_ttl, len(plain))
                buf[o + q + 12 : o + size] = plain
                kind = self._ptr_meta
            if bits & 4:
                buf[o + size : o + total] = self.opt
            return total << 8 | kind
        value: Any = self._get(name)  # bytes, or a dict of them (one check per hit)
        if value is None:
            return self._negative(data, name, buf, o, end, p, bits, limit, _NXDOMAIN)
        tail = data[p + 1 : q]
        if value.__class__ is dict:
            found = value.get(tail)
            if found is None:
                if SLOW in value:
                    return 0
                return self._negative(data, name, buf, o, end, p, bits, limit, _NOERROR)
            value = found
        elif not value.startswith(tail):
            return self._negative(data, name, buf, o, end, p, bits, limit, _NOERROR)
        size = p + len(value)  # the question's tail is rewritten, the meta byte goes past it
        total = size + 11 if bits & 4 else size
        if total > limit or o + size + 11 > end:
            return 0
        meta: int = value[-1]
        buf[o + 2 : o + 12] = self.heads[meta][bits]
        buf[o + p + 1 : o + size + 1] = value
        if bits & 4:
            buf[o + size : o + total] = self.opt
        return total << 8 | meta

    def _edns_limit(self, data: bytes, q: int, udp: bool) -> int:
        """The reply size limit a query with an OPT record after its question (at ``q``) sets,
        or 0 when that record is not a lone, well-formed version 0 OPT ending the message
        (the full path: FORMERR or BADVERS)."""
        n = len(data)
        if q + 11 > n:
            return 0
        root, rtype, payload, version, rdlength = _OPT_QUERY.unpack_from(data, q)
        if root or rtype != _OPT_TYPE or version or q + 11 + rdlength != n:
            return 0
        if rdlength and not _options_fit(data, q + 11, n):
            return 0
        if not udp:
            return 65535
        # RFC 6891 §6.2.5: the client's size capped at ours, never below 512.
        limit = payload if payload < self.udp_size else self.udp_size
        return limit if limit > 512 else 512

    def _negative(
        self,
        data: bytes,
        name: bytes,
        buf: Any,
        o: int,
        end: int,
        p: int,
        bits: int,
        limit: int,
        rcode: int,
    ) -> int:
        """NXDOMAIN or NODATA from the zone template, or 0 (the full path decides)."""
        q = p + 5
        if data[p + 3 : q] != _IN or ((data[p + 1] << 8) | data[p + 2]) in _FULL_PATH_TYPES:
            return 0
        if len(name) > 255 or not name.isascii() or b"." in name:
            # The full path: FORMERR for a name too long (RFC 1035 §2.3.4), REFUSED for one
            # that cannot be a zone name (and a label of 46 octets, whose length is a dot).
            return 0
        last = len(name) - 1
        negatives = self.negatives
        pos = 0
        while pos < last:
            zone: Any = negatives.get(name[pos:] if pos else name, False)
            if zone is not False:
                break
            length = name[pos]
            if length > 63:
                return 0
            pos += length + 1
        else:
            return 0  # outside every zone
        if zone is None:
            return 0  # at or below a zone cut: a referral
        soa = zone.soa
        size = q + 2 + len(soa)
        total = size + 11 if bits & 4 else size
        if total > limit or o + total > end:
            return 0
        heads = self._nxdomain_heads if rcode else self._nodata_heads
        buf[o + 2 : o + 12] = heads[bits]
        buf[o + q : o + q + 2] = _POINTERS[12 + len(name) - zone.origin_length]
        buf[o + q + 2 : o + size] = soa
        if bits & 4:
            buf[o + size : o + total] = self.opt
        meta = self._negative_metas.get(rcode << 16 | data[p + 1] << 8 | data[p + 2])
        if meta is None:
            meta = self._negative_meta(rcode, (data[p + 1] << 8) | data[p + 2])
        return total << 8 | meta

    def answer(self, data: bytes, transport: Transport) -> tuple[bytes, tuple[str, str]] | None:
        """The compiled reply to ``data`` and its metric label, or None (the full path)."""
        buf = bytearray(data)
        buf.extend(_ROOM)  # a plain answer is packed in place
        done = self.write(data, buf, 0, 65535 + 300, transport is Transport.UDP)
        if not done:
            return None
        return bytes(buf[: done >> 8]), self.labels[done & 0xFF]

    def drain(self) -> Iterable[tuple[tuple[str, str], int]]:
        """The replies written since the last drain, per metric label (and zero them)."""
        counts, labels = self.counts, self.labels
        # Only the metas in use (a few), not the whole table: run once per UDP wake-up.
        for meta in range(len(labels)):
            value = counts[meta]
            if value:
                counts[meta] = 0
                yield labels[meta], value

    # --- building ------------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Compile every zone again."""
        self.table.clear()
        self.full.clear()
        self.negatives.clear()
        self._refs.clear()
        self._deps.clear()
        self.left_out = 0
        zones = self.zones
        cuts: set[str] = set()
        # Outer zones first: a name a nested zone holds is compiled from it (as ``find``).
        for zone in sorted(zones.zones.values(), key=lambda z: z.origin.count(".")):
            self._set_negative(zone)
            for cut in zone.delegations:
                cuts.add(cut)
                wire = name_wire(cut)
                if wire is not None:
                    self.negatives[wire] = None
            for name in zone.data:
                self._compile(name, zone)
            for name in zone.children:
                if not zone.has(name):
                    self._compile(name, zone)
        self._cuts = frozenset(cuts)
        cut_wires = tuple(w for c in cuts if (w := name_wire(c)) is not None)
        if cut_wires:
            for wire in self.plain:
                if any(under(wire, cut) for cut in cut_wires):
                    self.full.add(wire)

    def update(self, result: ApplyResult) -> None:
        """Follow one applied batch (``Zones.apply``'s result): recompile the names it
        touched, their ancestors (empty non-terminals come and go), the names whose answers
        carry their addresses, and each changed zone's apex and negative template."""
        zones = self.zones
        cuts = frozenset(c for z in zones.zones.values() for c in z.delegations)
        if result.rebuilt or cuts != self._cuts:
            self.rebuild()
            return
        names: set[str] = set()
        for name in result.names:
            names.add(name)
            names.update(self._refs.get(name, ()))
            zone = zones.find(name)
            if zone is None:
                continue
            parent = name
            while parent != zone.origin and parent:
                parent = parent.partition(".")[2]
                names.add(parent)
        for origin in result.changed:
            zone = zones.zones.get(origin)
            if zone is not None:
                self._set_negative(zone)
                if origin not in names:
                    self._recompile_soa(zone)
        for name in names:
            zone = zones.find(name)
            if zone is None:
                wire = name_wire(name)
                if wire is not None:
                    self.table.pop(wire, None)
                continue
            self._compile(name, zone)

    def _recompile_soa(self, zone: Zone) -> None:
        """The apex's SOA answer again (a new serial), its other answers kept."""
        wire = name_wire(zone.origin)
        held = None if wire is None else self.table.get(wire)
        if wire is None or held is None:
            self._compile(zone.origin, zone)
            return
        value = self._generic(zone.origin, wire, _SOA)
        if value is not None and isinstance(held, dict) and value[:4] in held:
            held[value[:4]] = value
        else:
            self._compile(zone.origin, zone)

    def _set_negative(self, zone: Zone) -> None:
        wire = name_wire(zone.origin)
        if wire is not None:
            self.negatives[wire] = Negative(rr_tail(zone.soa), len(wire))

    def _compile(self, name: str, zone: Zone) -> None:
        """(Re)compile ``name`` of ``zone``: its entry, or none when it no longer exists."""
        wire = name_wire(name)
        if wire is None:
            self.left_out += 1
            return
        for target in self._deps.pop(name, ()):
            owners = self._refs.get(target)
            if owners is not None:
                owners.discard(name)
                if not owners:
                    del self._refs[target]
        table = self.table
        self.full.discard(wire)
        if self.zones.find(name) is not zone or zone.cut_above(name) is not None:
            table.pop(wire, None)
            if wire in self.plain:
                self.full.add(wire)
            return
        held = zone.data.get(name)
        if held is None:
            if wire in self.plain:
                table.pop(wire, None)  # answered from ``plain``
            elif name in zone.children:
                table[wire] = b""  # an empty non-terminal: NODATA (RFC 8020 §2)
            else:
                table.pop(wire, None)
            return
        if isinstance(held, str):
            value = self._plain(zone, held, len(wire))
            if value is not None:
                table[wire] = value
                return
        keys = zone.keys(name)
        types: list[int] = []
        for key in keys:
            if key[0] not in types:
                types.append(key[0])
        entry: dict[bytes, bytes] = {}
        if _CNAME in types:
            entry[SLOW] = b""
        for rtype in types:
            value = self._generic(name, wire, rtype)
            if value is None:
                self.left_out += 1
                table.pop(wire, None)
                return
            entry[value[:4]] = value
        targets = tuple(_targets(keys))
        if targets:
            self._deps[name] = targets
            for target in targets:
                self._refs.setdefault(target, set()).add(name)
        if len(entry) == 1:
            table[wire] = next(iter(entry.values()))
        else:
            table[wire] = entry

    def _plain(self, zone: Zone, text: str, name_length: int) -> bytes | None:
        """A name's one record of the zone's plain type and TTL (a host's A or PTR), encoded
        without dnslib; None for a plain type encoded the generic way."""
        rtype, ttl = zone.plain_type, zone.plain_ttl
        if rtype == _A:
            rdata = IPv4Address(text).packed
        elif rtype == _PTR:
            target = name_wire(absolute(text))
            if target is None:
                return None
            rdata = target
        else:
            return None
        meta = self._meta(self._flags, 1, 0, 0, rtype)
        if meta is None:
            return None
        tail = _RR_FIXED.pack(rtype, 1, ttl, len(rdata))
        return b"".join((tail[:4], _TO_QUESTION, tail, rdata, bytes((meta,))))

    def _generic(self, name: str, wire: bytes, rtype: int) -> bytes | None:
        """``name``'s answer for ``rtype`` as the engine builds it (additional section
        included), packed once; None when it is not a plain answer."""
        query = DNSRecord(DNSHeader(id=0, bitmap=0), questions=[DNSQuestion(label(name), rtype)])
        decision = self.engine.resolve(query, client=LOCAL, transport=Transport.TCP)
        if not isinstance(decision, Answer) or decision.reason is not Reason.ANSWER:
            return None
        packed = pack(decision.message)
        flags, qd, an, ns, ar = _COUNTS.unpack_from(packed, 2)
        qend = HEADER.size + len(wire) + 4
        meta = self._meta(flags, an, ns, ar, rtype)
        if meta is None or qd != 1:
            return None
        return packed[qend - 4 :] + bytes((meta,))

    # --- headers and labels --------------------------------------------------------------------

    @staticmethod
    def _heads(flags: int, an: int, ns: int, ar: int) -> tuple[bytes, ...]:
        return tuple(
            _COUNTS.pack(
                flags | (0x0100 if bits & 1 else 0) | (0x0010 if bits & 2 else 0),
                1,
                an,
                ns,
                ar + (1 if bits & 4 else 0),
            )
            for bits in range(8)
        )

    def _meta(self, flags: int, an: int, ns: int, ar: int, qtype: int) -> int | None:
        key = (flags, an, ns, ar, qtype_label(qtype))
        meta = self._metas.get(key)
        if meta is None:
            if len(self.heads) >= MAX_METAS:
                return None
            meta = self._metas[key] = len(self.heads)
            self.heads.append(self._heads(flags, an, ns, ar))
            self.labels.append((key[4], rcode_label(flags & 0xF)))
        return meta

    def _negative_meta(self, rcode: int, qtype: int) -> int:
        """The meta of a negative answer (its label); remembered for the labelled types (a
        bounded set), looked up each time for the others."""
        meta = self._meta(self._flags | rcode, 0, 1, 0, qtype)
        if meta is None:  # every meta taken: counted under the first
            return 0
        if qtype_label(qtype) != "other":
            self._negative_metas[rcode << 16 | qtype] = meta
        return meta

    def statistics(self) -> dict[str, int]:
        return {
            "names": len(self.table) + len(self.plain),
            "left_out": self.left_out,
            "bytes": self.size(),
        }

    def size(self) -> int:
        """The bytes of the table and of the plain names: the dicts, their keys and values
        (shared objects counted once)."""
        total = sys.getsizeof(self.table) + sys.getsizeof(self.plain)
        total += sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in self.plain.items())
        for key, value in self.table.items():
            total += sys.getsizeof(key)
            if isinstance(value, dict):
                total += sys.getsizeof(value)
                total += sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in value.items())
            elif value:
                total += sys.getsizeof(value)
        return total


def _options_fit(data: bytes, pos: int, end: int) -> bool:
    """The EDNS options from ``pos`` fill the OPT's RDATA exactly (as the full path reads
    them: a short or overlong option is FORMERR there)."""
    while pos < end:
        if pos + 4 > end:
            return False
        _, length = _OPTION.unpack_from(data, pos)
        pos += 4 + length
    return pos == end


def _targets(keys: Iterable[tuple[int, int, str]]) -> Iterable[str]:
    """The names whose addresses the answers of ``keys`` carry (RFC 1035 §3.3.9/§3.3.11,
    RFC 2782): the targets of NS, MX and SRV records."""
    for rtype, _, text in keys:
        parts = text.split()
        if rtype == _NS and parts:
            yield absolute(parts[0])
        elif rtype == _MX and len(parts) == 2:
            yield absolute(parts[1])
        elif rtype == _SRV and len(parts) == 4:
            yield absolute(parts[3])

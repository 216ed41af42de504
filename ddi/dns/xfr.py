"""Zone transfer replies (AXFR, RFC 5936; IXFR, RFC 1995) and NOTIFY (RFC 1996), as messages.

Rules:
* AXFR: the SOA, every other record, the SOA again, split over as many messages as needed;
  each message repeats the question (RFC 5936 §2.2.1 requires it only in the first).
* IXFR: a client already at (or past) our serial gets the SOA alone (RFC 1995 §2); a client
  whose serial the journal reaches gets the deltas (§4: SOA new, then per step SOA old,
  removed, SOA new, added; then SOA new); otherwise the whole zone AXFR-style (§4).
* NOTIFY: opcode 4, AA set, the zone's SOA in the question and the answer (RFC 1996 §3.7).
* Pure: messages are dnslib values; the transport packs, signs and sends them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from dnslib import RR, SOA, DNSHeader, DNSQuestion, DNSRecord

from ddi.dns.wire import Flag, Opcode, QType
from ddi.dns.zone import Zone

RECORDS_PER_MESSAGE = 200


def _soa(zone: Zone, serial: int) -> Any:
    rd = zone.soa.rdata
    times = (serial, *tuple(rd.times)[1:])
    return RR(zone.soa.rname, QType.SOA, ttl=zone.soa.ttl, rdata=SOA(rd.mname, rd.rname, times))


def axfr_records(zone: Zone) -> list[Any]:
    return [zone.soa, *zone.all_records(), zone.soa]


def ixfr_records(zone: Zone, client_serial: int) -> list[Any]:
    if _serial_ge(client_serial, zone.serial):
        return [zone.soa]
    deltas = zone.deltas_since(client_serial)
    if deltas is None:
        return axfr_records(zone)
    out = [zone.soa]
    for d in deltas:
        out.append(_soa(zone, d.old_serial))
        out.extend(d.removed)
        out.append(_soa(zone, d.new_serial))
        out.extend(d.added)
    out.append(zone.soa)
    return out


def _serial_ge(a: int, b: int) -> bool:
    """RFC 1982 serial comparison: a >= b."""
    return a == b or (0 < (a - b) % 2**32 < 2**31)


def transfer_messages(query: Any, zone: Zone, client_serial: int | None) -> Iterator[Any]:
    """The reply messages to an AXFR (``client_serial`` None) or IXFR query."""
    records = axfr_records(zone) if client_serial is None else ixfr_records(zone, client_serial)
    for chunk in _chunks(records, RECORDS_PER_MESSAGE):
        header = DNSHeader(id=query.header.id, bitmap=int(Flag.QR | Flag.AA))
        reply = DNSRecord(header, questions=list(query.questions[:1]))
        reply.add_answer(*chunk)
        yield reply


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def notify_message(zone: Zone, msg_id: int) -> Any:
    header = DNSHeader(id=msg_id, bitmap=int(Flag.AA) | Opcode.NOTIFY << 11)
    message = DNSRecord(header, q=DNSQuestion(zone.soa.rname, QType.SOA))
    message.add_answer(zone.soa)
    return message

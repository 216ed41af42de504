"""AXFR/IXFR reply sequences, NOTIFY messages, and the encoded-answer cache."""

from __future__ import annotations

from typing import Any

from dnslib import QTYPE, DNSRecord

from ddi.dns.cache import AnswerCache
from ddi.dns.xfr import axfr_records, ixfr_records, notify_message, transfer_messages
from ddi.dns.zone import label


def _serials(records: list[Any]) -> list[int]:
    return [rr.rdata.times[0] for rr in records if rr.rtype == QTYPE.SOA]


def test_axfr_starts_and_ends_with_the_soa(h: Any) -> None:
    z = h.zones(h.FakeView(subnet_list=[h.subnet()], host_list=[h.host("web", "198.18.0.10")]))
    records = axfr_records(z.zones["site.example"])
    assert records[0].rtype == QTYPE.SOA
    assert records[-1].rtype == QTYPE.SOA
    assert sum(rr.rtype == QTYPE.SOA for rr in records) == 2
    assert any(str(rr.rdata) == "198.18.0.10" for rr in records)


def test_ixfr_from_a_journaled_serial_is_the_delta(h: Any) -> None:
    z = h.zones()
    h.apply(z, [h.change(h.host("web", "198.18.0.10", hid="w"), seq=20)])
    h.apply(z, [h.change(h.host("www", "198.18.0.10", hid="w"), seq=21)])
    zone = z.zones["site.example"]
    records = ixfr_records(zone, 10)
    assert _serials(records) == [21, 10, 20, 20, 21, 21]
    records = ixfr_records(zone, 20)
    assert _serials(records) == [21, 20, 21, 21]
    removed, added = records[2], records[4]
    assert str(removed.rname) == "web.site.example."
    assert str(added.rname) == "www.site.example."


def test_ixfr_from_the_current_serial_is_the_soa_alone(h: Any) -> None:
    z = h.zones()
    assert _serials(ixfr_records(z.zones["site.example"], 10)) == [10]
    assert _serials(ixfr_records(z.zones["site.example"], 11)) == [10]


def test_ixfr_from_an_unknown_serial_falls_back_to_axfr(h: Any) -> None:
    z = h.zones()
    h.apply(z, [h.change(h.host("web", "198.18.0.10"), seq=20)])
    zone = z.zones["site.example"]
    assert ixfr_records(zone, 5) == axfr_records(zone)


def test_transfer_is_split_into_messages(h: Any) -> None:
    view = h.FakeView(
        subnet_list=[h.subnet()],
        record_list=[
            h.record(f"n{i}.site.example", "A", f"198.18.0.{i % 250 + 1}") for i in range(450)
        ],
    )
    zone = h.zones(view).zones["site.example"]
    query = DNSRecord.question(label("site.example"), "AXFR")
    messages = list(transfer_messages(query, zone, None))
    assert len(messages) == 3
    assert all(m.header.aa and m.header.id == query.header.id for m in messages)
    total = sum(len(m.rr) for m in messages)
    assert total == len(axfr_records(zone))


def test_notify_message(h: Any) -> None:
    zone = h.zones().zones["site.example"]
    msg = notify_message(zone, 77)
    assert msg.header.opcode == 4
    assert msg.header.aa == 1
    assert msg.questions[0].qtype == QTYPE.SOA
    assert DNSRecord.parse(msg.pack()).header.id == 77


def test_cache_hit_patches_the_id() -> None:
    cache = AnswerCache(10)
    query = b"\x12\x34" + b"question-bytes"
    reply = b"\x12\x34" + b"answer-bytes"
    assert cache.get(0, query) is None
    cache.put(0, query, reply, qtype="A", rcode="NOERROR")
    assert cache.get(0, b"\xab\xcd" + b"question-bytes") == b"\xab\xcd" + b"answer-bytes"
    assert cache.get(1, query) is None  # TCP is a separate table
    assert cache.statistics()["hits"] == 1


def test_cache_invalidation_bumps_generation_and_empties() -> None:
    cache = AnswerCache(10)
    cache.put(0, b"\x00\x01q", b"\x00\x01a", qtype="A", rcode="NOERROR")
    cache.invalidate()
    assert len(cache) == 0
    assert cache.generation == 1
    assert cache.get(0, b"\x00\x01q") is None


def test_cache_is_bounded() -> None:
    cache = AnswerCache(2)
    for i in range(5):
        cache.put(0, bytes([0, 0, i]), b"\x00\x00a", qtype="A", rcode="NOERROR")
    assert len(cache) == 2
    assert cache.get(0, bytes([0, 0, 4])) is not None
    assert cache.get(0, bytes([0, 0, 0])) is None
    disabled = AnswerCache(0)
    disabled.put(0, b"\x00\x00q", b"\x00\x00a", qtype="A", rcode="NOERROR")
    assert len(disabled) == 0

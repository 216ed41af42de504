"""Token buckets per client and per link, the keys read off an undecoded datagram, and when
the server counts as backlogged."""

from __future__ import annotations

from ipaddress import IPv4Address

from ddi.dhcp.admission import (
    BUSY_DEPTH,
    BUSY_QUEUE,
    BUSY_WAIT,
    TokenBuckets,
    backlogged,
    client_key,
    link_key,
)
from ddi.dhcp.packet import BOOTREQUEST, DhcpPacket, encode_packet


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3)
    assert [buckets.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert buckets.allow("b", 0.0)  # another key has its own bucket
    assert buckets.allow("a", 0.5)  # one token back after 1/rate
    assert not buckets.allow("a", 0.5)
    assert [buckets.allow("a", 100.0) for _ in range(4)] == [True, True, True, False]


def test_rate_zero_allows_everything() -> None:
    buckets = TokenBuckets(rate=0, burst=1)
    assert all(buckets.allow("a", 0.0) for _ in range(100))
    assert len(buckets) == 0


def test_keys_are_bounded_and_start_over_full() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, max_keys=2)
    assert buckets.allow("a", 0.0)
    assert buckets.allow("b", 0.0)
    assert not buckets.allow("a", 0.0)
    assert buckets.allow("c", 0.0)  # a third key: the table starts over
    assert len(buckets) == 1
    assert buckets.allow("a", 0.0)  # forgotten, so it starts full again
    assert not buckets.allow("a", 0.0)


def test_a_flood_of_new_keys_keeps_the_table_bounded() -> None:
    buckets = TokenBuckets(rate=1.0, burst=8, max_keys=1024)
    for n in range(200_000):
        assert buckets.allow(n, 0.0)
    assert len(buckets) <= 1024


def test_keys_come_off_the_fixed_header() -> None:
    chaddr = bytes.fromhex("525400000001") + bytes(10)
    direct = encode_packet(DhcpPacket(op=BOOTREQUEST, xid=1, chaddr=chaddr))
    relayed = encode_packet(
        DhcpPacket(op=BOOTREQUEST, xid=1, chaddr=chaddr, giaddr=IPv4Address("10.0.0.1"))
    )
    assert client_key(direct) == bytes.fromhex("525400000001")
    assert link_key(direct, "eth0") == "eth0"
    assert link_key(relayed, "eth0") == IPv4Address("10.0.0.1").packed
    assert client_key(b"\x01" * 20) == b""


def test_backlogged_takes_packets_that_waited_or_a_deep_queue_not_a_passing_burst() -> None:
    # A short queue is never a backlog, however long it waited.
    assert not backlogged(BUSY_QUEUE - 1, 10.0)
    # A queue past BUSY_QUEUE that the server is clearing: its oldest waited milliseconds.
    assert not backlogged(BUSY_QUEUE, 0.0)
    assert not backlogged(BUSY_DEPTH - 1, BUSY_WAIT / 10)
    # Behind: the oldest has waited BUSY_WAIT, or so many wait that they are that much work.
    assert backlogged(BUSY_QUEUE, BUSY_WAIT)
    assert backlogged(BUSY_DEPTH, 0.0)
    assert BUSY_QUEUE < BUSY_DEPTH

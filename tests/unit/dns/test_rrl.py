"""Response-rate limiting: per client prefix and second, slip, exemptions, bounds."""

from __future__ import annotations

import socket
import sys
from ipaddress import IPv4Network, IPv6Network

import pytest
from dnslib import DNSRecord

from ddi.dns import rrl
from ddi.dns.acl import Acl
from ddi.dns.wire import Flag, decode_message, slip_response
from ddi.dns.zone import label

SITE = Acl.of([IPv4Network("198.18.0.0/24"), IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")])


def limiter(ratelimit: int = 5, slip: int = 2) -> rrl.RateLimiter:
    return rrl.RateLimiter(ratelimit=ratelimit, slip=slip, exempt=SITE)


def verdicts(lim: rrl.RateLimiter, host: object, n: int, second: int = 100) -> list[int]:
    return [lim.check(host, second) for _ in range(n)]


def test_past_the_limit_answers_are_dropped_and_every_slipth_slips() -> None:
    lim = limiter(ratelimit=5, slip=2)
    got = verdicts(lim, "203.0.113.9", 11)
    P, D, S = rrl.PASS, rrl.DROP, rrl.SLIP
    assert got == [P, P, P, P, P, D, S, D, S, D, S]
    assert (lim.dropped, lim.slipped) == (3, 3)
    assert verdicts(lim, "203.0.113.9", 1, second=101) == [P]  # a new second, a new count


def test_slip_zero_never_slips_and_one_always_does() -> None:
    assert set(verdicts(limiter(ratelimit=1, slip=0), "203.0.113.9", 5)[1:]) == {rrl.DROP}
    assert set(verdicts(limiter(ratelimit=1, slip=1), "203.0.113.9", 5)[1:]) == {rrl.SLIP}


def test_clients_are_counted_per_ipv4_24_and_ipv6_56() -> None:
    lim = limiter(ratelimit=2)
    assert verdicts(lim, "203.0.113.1", 2) == [rrl.PASS] * 2
    assert lim.check("203.0.113.200", 100) != rrl.PASS  # the same /24
    assert lim.check("203.0.114.1", 100) == rrl.PASS  # another /24
    assert verdicts(lim, "2001:db8:0:ff::1", 2) == [rrl.PASS] * 2
    assert lim.check("2001:db8:0:1::2", 100) != rrl.PASS  # the same /56
    assert lim.check("2001:db8:0:100::1", 100) == rrl.PASS  # another /56
    # An IPv4 client on a dual-stack socket is counted with its /24.
    assert lim.check("::ffff:203.0.113.7", 100) != rrl.PASS


def test_the_sites_own_networks_are_never_limited() -> None:
    lim = limiter(ratelimit=1)
    for host in ("198.18.0.77", "127.0.0.1", "::1", "::ffff:198.18.0.9", "::ffff:127.0.0.1"):
        assert set(verdicts(lim, host, 50)) == {rrl.PASS}
        assert lim.prefixes[host] is None
        assert host in lim.exempt_hosts  # the UDP loops let it through without a check
    assert lim.statistics()["prefixes"] == 0


def test_raw_sender_keys_from_the_batch_socket() -> None:
    lim = limiter(ratelimit=1)
    loopback = int.from_bytes(socket.inet_aton("127.0.0.1"), sys.byteorder)
    assert set(verdicts(lim, loopback, 5)) == {rrl.PASS}
    outside = int.from_bytes(socket.inet_aton("203.0.113.9"), sys.byteorder)
    assert verdicts(lim, outside, 2)[1] != rrl.PASS
    assert lim.check("203.0.113.10", 100) != rrl.PASS  # the same /24 as the raw key
    packed = socket.inet_pton(socket.AF_INET6, "::1")
    assert set(verdicts(lim, packed, 5)) == {rrl.PASS}


def test_an_unreadable_sender_is_not_limited_but_counted_nowhere() -> None:
    lim = limiter(ratelimit=1)
    assert set(verdicts(lim, "not-an-address", 5)) == {rrl.PASS}


def test_state_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rrl, "MAX_PREFIXES", 10)
    monkeypatch.setattr(rrl, "MAX_HOSTS", 10)
    lim = limiter(ratelimit=100)
    for i in range(50):
        lim.check(f"203.0.{i}.1", 100 + i // 20)
        assert len(lim.prefixes) <= 10
        assert lim.statistics()["prefixes"] <= 10


def test_the_slip_reply_is_truncated_and_no_larger_than_the_query() -> None:
    q = DNSRecord.question(label("www.site.example"), "ANY")
    q.header.id = 77
    data = bytes(q.pack())
    reply = slip_response(data)
    assert len(reply) <= len(data)
    message = decode_message(reply)
    assert (message.header.id, message.header.qr, message.header.tc) == (77, 1, 1)
    assert message.header.rd == 1
    assert [str(x.qname) for x in message.questions] == ["www.site.example."]
    assert (message.rr, message.auth, message.ar) == ([], [], [])
    bare = slip_response(data[:12])
    assert len(bare) == 12
    assert bare[2] << 8 & int(Flag.TC)

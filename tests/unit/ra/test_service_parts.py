"""The RA service's pure helpers: the ICMPv6 filter and the link-local address lookup."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

from ddi.ra.service import link_local, solicit_filter

# /proc/net/if_inet6: address, ifindex, prefix length, scope, flags, name (all hex).
TABLE = """\
00000000000000000000000000000001 01 80 10 80       lo
20010db8001000000000000000000001 03 40 00 80     ddi0
fe800000000000000000000000000009 03 40 20 c0     ddi0
fe80000000000000505400fffe000001 03 40 20 80     ddi0
fe80000000000000505400fffe000002 04 40 20 80     ddi1
fe80000000000000505400fffe000003 05 40 20 88     ddi2
"""


def test_link_local_skips_global_tentative_and_other_interfaces() -> None:
    assert link_local(3, TABLE) == IPv6Address("fe80::5054:ff:fe00:1")  # not the tentative one
    assert link_local(4, TABLE) == IPv6Address("fe80::5054:ff:fe00:2")
    assert link_local(5, TABLE) is None  # DAD failed
    assert link_local(9, TABLE) is None
    assert link_local(3, "garbage\nzz 03 40 20 80 ddi0\n") is None


def test_filter_passes_router_solicitations_only() -> None:
    words = struct.unpack("=8I", solicit_filter())

    def passes(kind: int) -> bool:
        return not words[kind >> 5] & (1 << (kind & 31))

    assert passes(133)
    assert [k for k in range(256) if passes(k)] == [133]

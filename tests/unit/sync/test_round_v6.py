"""Capability negotiation for IPv6 objects: what a central of each version answers, what the
edge holds back from one of the previous version, and when it sends what it held."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ddi.ipam.sync_values import SyncCursors
from sync import protocol
from sync.round import CentralCursor, NewEpoch, Ship, read_cursor, start_round

OLD_CURSOR = {"site": "s1", "epoch": 1, "applied_seq": 7, "snapshot": None, "last_seen": 1.0}
"""A previous version's cursor answer: no ``accepts``."""


def cursor(**over: Any) -> CentralCursor:
    parsed = read_cursor(200, json.dumps(OLD_CURSOR | over).encode())
    assert isinstance(parsed, CentralCursor)
    return parsed


@pytest.mark.parametrize(
    ("accepts", "ipv6"),
    [
        (None, False),
        (["ipv6"], True),
        (["ipv6", "from-the-future"], True),
        (["from-the-future"], False),
        ("ipv6", False),
        ([["ipv6"]], False),
        (["ipv6"] * (protocol.MAX_CAPABILITIES + 1), False),
    ],
)
def test_central_capabilities_are_read_strictly(accepts: Any, ipv6: bool) -> None:
    over = {} if accepts is None else {"accepts": accepts}
    assert cursor(**over).ipv6 is ipv6


def local(**over: int) -> SyncCursors:
    return SyncCursors(**({"cursor": 7, "epoch": 1, "last_seq": 9} | over))


def test_held_objects_go_in_a_snapshot_once_central_takes_them() -> None:
    assert start_round(cursor(), local(withheld=1)) == Ship(applied=7)
    assert start_round(cursor(accepts=["ipv6"]), local(withheld=1)) == NewEpoch(at_least=2)
    assert start_round(cursor(accepts=["ipv6"]), local()) == Ship(applied=7)


@pytest.mark.parametrize(
    ("kind", "op", "image", "held"),
    [
        ("subnet6", "upsert", {"name": "lan6"}, True),
        ("lease6", "upsert", {"kind": "na"}, True),
        ("lease6", "delete", {"kind": "na"}, True),
        ("host", "upsert", {"ip": None, "ip6": "2001:db8::5"}, True),
        ("host", "delete", {"ip": None, "ip6": "2001:db8::5"}, False),
        ("host", "upsert", {"ip": "198.18.0.5", "ip6": "2001:db8::5"}, False),
        ("host", "upsert", {"ip": "198.18.0.5"}, False),
        ("lease", "upsert", {"ip": "198.18.0.5"}, False),
        ("subnet", "upsert", {"name": "lan"}, False),
    ],
)
def test_what_a_previous_central_cannot_take(
    kind: str, op: str, image: dict[str, Any], held: bool
) -> None:
    assert protocol.needs_ipv6(kind, op, image) is held

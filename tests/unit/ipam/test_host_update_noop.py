"""An update that changes nothing writes nothing: no change-log entry, no version bump."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from ddi.ipam.models import Host
from ddi.ipam.store import Store

MAC1 = "52:54:00:00:00:01"


async def add_web1(store: Store) -> Host:
    await store.add_host(
        Host(id="", ip=IPv4Address("198.18.0.10"), hostname="web1", mac=MAC1, boot="pxe"),
        actor="op",
        reason="",
    )
    return await store.find_host("web1")


@pytest.mark.parametrize(
    "fields",
    [
        {"hostname": "web1"},
        {"ip": "198.18.0.10", "mac": "52-54-00-00-00-01"},  # same values, other spelling
        {"boot": "pxe", "client_id": None, "boot_file": ""},
        {"dhcp": None},
        {"dhcp": {"mtu": None}},
    ],
)
@pytest.mark.asyncio
async def test_update_to_the_current_values_writes_nothing(
    store: Store, fields: dict[str, object]
) -> None:
    web1 = await add_web1(store)
    seq = await store.last_seq()
    seen: list[object] = []
    store.subscribe(seen.append)
    assert await store.update_host("web1", fields, actor="op", reason="again") is None
    assert await store.last_seq() == seq
    assert await store.find_host("web1") == web1
    assert seen == []


@pytest.mark.asyncio
async def test_a_real_change_after_a_no_op_still_bumps_the_version_once(store: Store) -> None:
    await add_web1(store)
    assert await store.update_host("web1", {"hostname": "web1"}, actor="op", reason="") is None
    change = await store.update_host("web1", {"boot": None}, actor="op", reason="")
    assert change is not None
    assert change.image["version"] == 2

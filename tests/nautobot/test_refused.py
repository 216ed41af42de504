"""An object the real Nautobot refuses as invalid is logged, counted and skipped: the rest of
its page is written and the cursor moves on (it must not hold the feed back for ever)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from central import metrics
from central.nautobot import client, state
from central.nautobot.config import NautobotConfig, Placement
from central.nautobot.task import IpamSync
from central.store import open_store
from ddi.ipam.models import Change, Kind, Op
from sync import protocol
from tests.nautobot.lab import NautobotLab

KEY = protocol.generate_key()


def _lease(seq: int, n: int, hostname: str) -> dict[str, Any]:
    image = {"ip": f"198.18.7.{n}", "mac": f"02:00:00:00:07:{n:02x}", "client_id": None,
             "hostname": hostname, "state": "bound", "start": 1.0, "end": 4e9,
             "subnet": "lab", "circuit_id": None}  # fmt: skip
    return Change(epoch=1, seq=seq, kind=Kind.LEASE, object_id=image["ip"], op=Op.UPSERT,
                  image=image, actor="t", time=1.0).to_image()  # fmt: skip


@pytest.mark.asyncio
async def test_an_address_nautobot_refuses_is_skipped_and_counted(
    nautobot_running: NautobotLab, tmp_path: Path
) -> None:
    store = await open_store(f"sqlite://{tmp_path / 'central.sqlite'}")
    try:
        await store.add_site("s1", protocol.public_key_raw(KEY.public_key()))
        subnet = Change(epoch=1, seq=1, kind=Kind.SUBNET, object_id="lab", op=Op.UPSERT,
                        image={"name": "lab", "cidr": "198.18.0.0/15"}, actor="t",
                        time=1.0).to_image()  # fmt: skip
        # A name with a space: no DNS name, and Nautobot's dns_name rejects it.
        entries = [subnet, _lease(2, 1, "good1"), _lease(3, 2, "bad name"), _lease(4, 3, "good3")]
        batch = protocol.make_batch(site="s1", epoch=1, from_seq=1, to_seq=4, entries=entries,
                                    key=KEY)  # fmt: skip
        assert (await store.apply_batch("s1", batch)).applied_seq == 4
        namespace = f"ns-refused-{tmp_path.name[-30:]}"
        config = NautobotConfig(
            url=nautobot_running.url,
            token=nautobot_running.token,
            sites={"s1": Placement(location=namespace, namespace=namespace)},
        )
        before = _sample("refused")
        sync = IpamSync(store, client.factory(config), batch_size=100, interval=1.0, holder="x")
        assert await state.acquire(store, "nautobot", "x", now=0.0, ttl=1e9)
        result = await sync.round()
        assert result.cursor == 4
        assert result.writes == 3  # the prefix and the two good addresses
        assert _sample("refused") == before + 1
        found = nautobot_running.all(f"/api/ipam/ip-addresses/?namespace={namespace}&tags=ddi")
        assert sorted(a["dns_name"] for a in found) == ["good1", "good3"]
    finally:
        await store.close()


def _sample(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "ddi_central_nautobot_errors_total", {"target": "nautobot", "reason": reason}
    )
    return 0.0 if value is None else value


@pytest.mark.asyncio
async def test_a_prefix_nautobot_will_not_delete_does_not_hold_the_cursor(
    nautobot_running: NautobotLab, tmp_path: Path
) -> None:
    """An operator's own address in one of our prefixes: Nautobot may refuse to delete the
    prefix once the edge drops its subnet. The refusal is counted and logged, the prefix is
    left to the operator, and later changes still arrive."""
    store = await open_store(f"sqlite://{tmp_path / 'central.sqlite'}")
    lab = nautobot_running
    try:
        await store.add_site("s1", protocol.public_key_raw(KEY.public_key()))
        subnet = Change(epoch=1, seq=1, kind=Kind.SUBNET, object_id="lab", op=Op.UPSERT,
                        image={"name": "lab", "cidr": "198.18.0.0/15"}, actor="t",
                        time=1.0).to_image()  # fmt: skip
        batch = protocol.make_batch(site="s1", epoch=1, from_seq=1, to_seq=2,
                                    entries=[subnet, _lease(2, 1, "good1")], key=KEY)  # fmt: skip
        assert (await store.apply_batch("s1", batch)).applied_seq == 2
        namespace = f"ns-keep-{tmp_path.name[-30:]}"
        config = NautobotConfig(
            url=lab.url,
            token=lab.token,
            sites={"s1": Placement(location=namespace, namespace=namespace)},
        )
        sync = IpamSync(store, client.factory(config), batch_size=100, interval=1.0, holder="x")
        assert await state.acquire(store, "nautobot", "x", now=0.0, ttl=1e9)
        assert (await sync.round()).cursor == 2
        # The operator's address: untagged, in our prefix, in the site's namespace.
        ns = _one(lab, f"/api/ipam/namespaces/?name={namespace}")
        active = _one(lab, "/api/extras/statuses/?name=Active")
        lab.api("POST", "/api/ipam/ip-addresses/", {
            "address": "198.18.9.9/32", "namespace": ns["id"], "status": active["id"],
        })  # fmt: skip
        gone = Change(epoch=1, seq=3, kind=Kind.SUBNET, object_id="lab", op=Op.DELETE,
                      image={"name": "lab", "cidr": "198.18.0.0/15"}, actor="t",
                      time=2.0).to_image()  # fmt: skip
        released = _lease(4, 1, "good1")
        released["image"]["state"] = "released"
        later = _lease(5, 2, "good2")
        batch = protocol.make_batch(site="s1", epoch=1, from_seq=3, to_seq=5,
                                    entries=[gone, released, later], key=KEY)  # fmt: skip
        assert (await store.apply_batch("s1", batch)).applied_seq == 5
        before = _sample("refused")
        result = await sync.round()
        assert result.cursor == 5
        assert _sample("refused") >= before + 1
        prefixes = lab.all(f"/api/ipam/prefixes/?namespace={namespace}")
        assert [p["prefix"] for p in prefixes] == ["198.18.0.0/15"]  # left to the operator
        found = lab.all(f"/api/ipam/ip-addresses/?namespace={namespace}")
        assert sorted(a["address"] for a in found) == ["198.18.7.2/32", "198.18.9.9/32"]
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_an_address_deleted_in_nautobot_meanwhile_is_gone_already(
    nautobot_running: NautobotLab, tmp_path: Path
) -> None:
    """An operator deleted one of our addresses by hand; when the edge releases its lease,
    the delete finds nothing, which is what was wanted: the cursor moves on, nothing counted
    as refused, and the other deletions of the page happen. (Nautobot's bulk delete skips an
    id that is gone: this pins that, which the refusal handling relies on not to count it.)"""
    store = await open_store(f"sqlite://{tmp_path / 'central.sqlite'}")
    lab = nautobot_running
    try:
        await store.add_site("s1", protocol.public_key_raw(KEY.public_key()))
        subnet = Change(epoch=1, seq=1, kind=Kind.SUBNET, object_id="lab", op=Op.UPSERT,
                        image={"name": "lab", "cidr": "198.18.0.0/15"}, actor="t",
                        time=1.0).to_image()  # fmt: skip
        entries = [subnet, _lease(2, 1, "one"), _lease(3, 2, "two")]
        batch = protocol.make_batch(site="s1", epoch=1, from_seq=1, to_seq=3, entries=entries,
                                    key=KEY)  # fmt: skip
        assert (await store.apply_batch("s1", batch)).applied_seq == 3
        namespace = f"ns-gone-{tmp_path.name[-30:]}"
        config = NautobotConfig(
            url=lab.url,
            token=lab.token,
            sites={"s1": Placement(location=namespace, namespace=namespace)},
        )
        sync = IpamSync(store, client.factory(config), batch_size=100, interval=1.0, holder="x")
        assert await state.acquire(store, "nautobot", "x", now=0.0, ttl=1e9)
        assert (await sync.round()).cursor == 3
        first = lab.all(f"/api/ipam/ip-addresses/?namespace={namespace}&address=198.18.7.1")
        lab.api("DELETE", f"/api/ipam/ip-addresses/{first[0]['id']}/")
        releases = []
        for seq, n in ((4, 1), (5, 2)):
            released = _lease(seq, n, "x")
            released["image"]["state"] = "released"
            releases.append(released)
        batch = protocol.make_batch(site="s1", epoch=1, from_seq=4, to_seq=5, entries=releases,
                                    key=KEY)  # fmt: skip
        assert (await store.apply_batch("s1", batch)).applied_seq == 5
        before = _sample("refused")
        assert (await sync.round()).cursor == 5
        assert _sample("refused") == before
        assert lab.all(f"/api/ipam/ip-addresses/?namespace={namespace}") == []
    finally:
        await store.close()


def _one(lab: NautobotLab, path: str) -> dict[str, Any]:
    found = lab.all(path)
    assert len(found) == 1, found
    return found[0]

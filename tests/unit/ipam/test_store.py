"""The IPAM store: writes, refusals that change nothing, the change log and its seq."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Awaitable, Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from ddi.errors import Conflict, Invalid, NotFound, StoreError
from ddi.ipam import schema
from ddi.ipam.models import Change, Host, Kind, Lease, LeaseState, Op, Owner, Record, Subnet
from ddi.ipam.store import Store, Transaction, migrate

MAC1 = "52:54:00:00:00:01"
MAC2 = "52:54:00:00:00:02"
MAC9 = "52:54:00:00:00:09"
WEB1_HOLDER = f"host web1 ({MAC1}, 198.18.0.10)"


def host(hostname: str, ip: str, mac: str | None = None, **fields: Any) -> Host:
    return Host(id=fields.pop("id", ""), ip=IPv4Address(ip), hostname=hostname, mac=mac, **fields)


def lease(ip: str, mac: str | None, start: float, end: float, **fields: Any) -> Lease:
    return Lease(ip=IPv4Address(ip), mac=mac, start=start, end=end, subnet="lan", **fields)


async def state(store: Store) -> tuple[object, ...]:
    return (
        await store.subnets(),
        await store.hosts(),
        await store.leases(),
        await store.records(),
        await store.changes(limit=1_000_000),
        await store.last_seq(),
    )


async def refused(store: Store, error: type[StoreError], write: Awaitable[object]) -> Any:
    """Await ``write``, expect ``error``, and check that nothing at all changed."""
    before = await state(store)
    with pytest.raises(error) as caught:
        await write
    assert await state(store) == before
    return caught.value


async def add_web1(store: Store, **fields: Any) -> Change:
    return await store.add_host(host("web1", "198.18.0.10", MAC1, **fields), actor="op", reason="r")


# --- schema and opening ---


@pytest.mark.asyncio
async def test_snapshot_loads_one_copy_of_values_a_host_and_its_lease_share(
    store: Store, clock: Any
) -> None:
    await add_web1(store)
    await store.commit_leases([lease("198.18.0.10", MAC1, 0.0, 3600.0, hostname="web1")])
    await store.commit_leases([lease("198.18.0.50", MAC2, 0.0, 3600.0)])
    snap = await store.snapshot()
    (web1,) = snap.hosts
    reserved, dynamic = snap.leases
    assert (reserved.ip, reserved.mac, reserved.hostname) == (web1.ip, web1.mac, web1.hostname)
    assert reserved.ip is web1.ip
    assert reserved.mac is web1.mac
    assert reserved.hostname is web1.hostname
    assert reserved.subnet is dynamic.subnet
    assert snap.hosts == await store.hosts()
    assert snap.leases == await store.leases()


@pytest.mark.asyncio
async def test_new_store_is_at_schema_version_with_epoch_1(store: Store, db_path: Path) -> None:
    assert await store.epoch() == 1
    db = sqlite3.connect(db_path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


@pytest.mark.asyncio
async def test_reopen_keeps_everything(db_path: Path, store: Store) -> None:
    await add_web1(store)
    before = await state(store)
    await store.close()
    async with await Store.open(db_path) as again:
        assert await state(again) == before


@pytest.mark.asyncio
async def test_database_from_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer"):
        await Store.open(path)


def test_migrations_are_applied_once_each(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        assert migrate(db) == 0
        assert migrate(db) == schema.SCHEMA_VERSION
        assert db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone() == ("1",)
    finally:
        db.close()


# --- hosts: success paths ---


@pytest.mark.asyncio
async def test_add_host_writes_row_and_change(store: Store) -> None:
    last = await store.last_seq()
    change = await store.add_host(
        host("WEB1", "198.18.0.10", "52-54-00-00-00-01", boot="pxe"), actor="alice", reason="new"
    )
    [stored] = await store.hosts()
    assert stored.hostname == "web1"
    assert stored.mac == MAC1
    assert len(stored.id) == 32
    assert stored.version == 1
    assert change.seq == last + 1
    assert change.epoch == 1
    assert (change.kind, change.op, change.object_id) == (Kind.HOST, Op.UPSERT, stored.id)
    assert Host.from_image(change.image) == stored
    assert (change.actor, change.reason) == ("alice", "new")
    assert (await store.changes(after=last)) == [change]


@pytest.mark.asyncio
async def test_find_host_by_every_key(store: Store) -> None:
    await add_web1(store, client_id="01:52:54:00:00:00:01", circuit_id="eth0/1")
    [web1] = await store.hosts()
    for key in (web1.id, "52:54:00:00:00:01", "5254.0000.0001", "198.18.0.10", "WEB1",
                "01:52:54:00:00:00:01", "eth0/1"):  # fmt: skip
        assert await store.find_host(key) == web1
    with pytest.raises(NotFound):
        await store.find_host("web2")


@pytest.mark.asyncio
async def test_host_by_client_id_or_circuit_id_alone(store: Store) -> None:
    await store.add_host(host("a", "198.18.0.20", client_id="web-a"), actor="op", reason="")
    await store.add_host(host("b", "198.18.0.21", circuit_id="sw1:ge-0/0/1"), actor="op", reason="")
    assert (await store.find_host("a")).client_id == "77:65:62:2d:61"
    assert (await store.find_host("198.18.0.21")).hostname == "b"


@pytest.mark.asyncio
async def test_reservation_inside_a_dynamic_pool_is_a_host(store: Store) -> None:
    await store.add_host(host("pooled", "198.18.0.150", MAC2), actor="op", reason="")
    assert (await store.find_host("pooled")).ip == IPv4Address("198.18.0.150")


@pytest.mark.asyncio
async def test_update_host_bumps_version_and_logs(store: Store) -> None:
    await add_web1(store)
    change = await store.update_host(
        "web1", {"ip": "198.18.0.11", "mac": "52:54:00:00:00:03"}, actor="op", reason="moved"
    )
    updated = await store.find_host("web1")
    assert updated.version == 2
    assert updated.ip == IPv4Address("198.18.0.11")
    assert updated.mac == "52:54:00:00:00:03"
    assert Host.from_image(change.image) == updated
    # the old MAC is free again
    await store.add_host(host("web2", "198.18.0.12", MAC1), actor="op", reason="")


@pytest.mark.asyncio
async def test_update_host_may_keep_its_own_values(store: Store) -> None:
    await add_web1(store)
    change = await store.update_host(
        "web1", {"hostname": "web1", "boot": "uefi"}, actor="op", reason=""
    )
    assert change.image["boot"] == "uefi"
    assert change.image["version"] == 2


@pytest.mark.asyncio
async def test_remove_host_logs_its_last_image(store: Store) -> None:
    await add_web1(store)
    [web1] = await store.hosts()
    change = await store.remove_host("198.18.0.10", actor="op", reason="gone")
    assert (change.op, change.object_id) == (Op.DELETE, web1.id)
    assert Host.from_image(change.image) == web1
    assert await store.hosts() == []


# --- hosts: every refusal changes nothing ---


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("ip", "words"),
    [
        ("198.18.5.10", "outside every subnet"),
        ("198.18.0.0", "network address"),
        ("198.18.0.255", "broadcast address"),
        ("198.18.1.255", "broadcast address"),
    ],
)
async def test_add_host_refuses_unusable_address(store: Store, ip: str, words: str) -> None:
    error = await refused(
        store, Invalid, store.add_host(host("web1", ip, MAC1), actor="op", reason="")
    )
    assert error.field == "ip"
    assert error.value == ip
    assert words in str(error)


@pytest.mark.asyncio
async def test_add_host_refuses_gateway(store: Store) -> None:
    error = await refused(
        store, Conflict, store.add_host(host("gw", "198.18.0.1", MAC1), actor="op", reason="")
    )
    assert "gateway of subnet lan" in str(error)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("field", "candidate", "value"),
    [
        ("ip", host("web2", "198.18.0.10", MAC2), "198.18.0.10"),
        ("mac", host("web2", "198.18.0.11", "52-54-00-00-00-01"), MAC1),
        ("client_id", host("web2", "198.18.0.11", MAC2, client_id="ID-1"), "49:44:2d:31"),
        ("circuit_id", host("web2", "198.18.0.11", MAC2, circuit_id="ge-0/0/1"), None),
        ("hostname", host("Web1", "198.18.0.11", MAC2), "web1"),
    ],
)
async def test_add_host_refuses_held_value_naming_holder(
    store: Store, field: str, candidate: Host, value: str | None
) -> None:
    await add_web1(store, client_id="ID-1", circuit_id="ge-0/0/1")
    error = await refused(store, Conflict, store.add_host(candidate, actor="op", reason=""))
    assert error.field == field
    if value is not None:
        assert error.value == value
    assert error.holder == f"host web1 ({MAC1}, 198.18.0.10)"
    assert WEB1_HOLDER in str(error)


@pytest.mark.asyncio
async def test_add_host_refuses_ip_actively_leased_to_another_client(
    store: Store, clock: Any
) -> None:
    now = clock.now
    await store.commit_leases([lease("198.18.0.150", MAC9, now - 10, now + 600)])
    error = await refused(
        store, Conflict, store.add_host(host("web1", "198.18.0.150", MAC1), actor="op", reason="")
    )
    assert error.field == "ip"
    assert MAC9 in error.holder


@pytest.mark.asyncio
async def test_add_host_takes_ip_of_the_same_client_or_an_inactive_lease(
    store: Store, clock: Any
) -> None:
    now = clock.now
    await store.commit_leases(
        [
            lease("198.18.0.150", MAC1, now - 10, now + 600),  # the same client
            lease("198.18.0.151", MAC9, now - 600, now - 1),  # bound but ended
            lease("198.18.0.152", MAC9, now - 10, now + 600, state=LeaseState.RELEASED),
        ]
    )
    await store.add_host(host("web1", "198.18.0.150", MAC1), actor="op", reason="")
    await store.add_host(host("web2", "198.18.0.151", MAC2), actor="op", reason="")
    await store.add_host(host("web3", "198.18.0.152", "52:54:00:00:00:03"), actor="op", reason="")


@pytest.mark.asyncio
async def test_lease_client_is_matched_by_client_id_before_mac(store: Store, clock: Any) -> None:
    now = clock.now
    await store.commit_leases([lease("198.18.0.150", MAC1, now, now + 600, client_id="01:aa:bb")])
    # same MAC but another client-id: another client (RFC 2131 §4.2)
    await refused(
        store,
        Conflict,
        store.add_host(
            host("web1", "198.18.0.150", MAC1, client_id="01:cc:dd"), actor="op", reason=""
        ),
    )
    await store.add_host(
        host("web1", "198.18.0.150", MAC1, client_id="01:aa:bb"), actor="op", reason=""
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["web2.site.example", "web2.lab.site.example"])
async def test_add_host_refuses_hostname_of_static_record(store: Store, name: str) -> None:
    await store.add_record(
        Record(id="", name=name, rtype="A", value="198.18.9.9"), actor="op", reason=""
    )
    error = await refused(
        store, Conflict, store.add_host(host("web2", "198.18.1.20", MAC2), actor="op", reason="")
    )
    assert error.field == "hostname"
    assert f"record {name} A 198.18.9.9" in str(error)


@pytest.mark.asyncio
async def test_add_host_may_share_name_with_mx_or_txt(store: Store) -> None:
    await store.add_record(
        Record(id="", name="web2.site.example", rtype="TXT", value="hello"), actor="op", reason=""
    )
    await store.add_host(host("web2", "198.18.0.20", MAC2), actor="op", reason="")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("candidate", "field"),
    [
        (host("web1", "198.18.0.10", "52:54:00:00:00"), "mac"),
        (host("web_1", "198.18.0.10", MAC1), "hostname"),
        (host("web1.site.example", "198.18.0.10", MAC1), "hostname"),
        (host("web1", "198.18.0.10"), "mac"),
        (host("web1", "198.18.0.10", MAC1, id="not a valid id"), "id"),
        (host("web1", "198.18.0.10", MAC1, client_id=""), None),
    ],
)
async def test_add_host_refuses_malformed_fields(
    store: Store, candidate: Host, field: str | None
) -> None:
    if field is None:  # an empty optional field is "not set", not an error
        await store.add_host(candidate, actor="op", reason="")
        return
    error = await refused(store, Invalid, store.add_host(candidate, actor="op", reason=""))
    assert error.field == field


@pytest.mark.asyncio
async def test_add_host_refuses_duplicate_id(store: Store) -> None:
    await add_web1(store, id="h1")
    await refused(
        store,
        Conflict,
        store.add_host(host("web2", "198.18.0.11", MAC2, id="h1"), actor="", reason=""),
    )


@pytest.mark.asyncio
async def test_update_host_refusals_change_nothing(store: Store) -> None:
    await add_web1(store)
    await store.add_host(host("web2", "198.18.0.11", MAC2), actor="op", reason="")
    error = await refused(
        store, Conflict, store.update_host("web2", {"mac": MAC1}, actor="op", reason="")
    )
    assert error.holder == WEB1_HOLDER
    await refused(
        store, Conflict, store.update_host("web2", {"ip": "198.18.0.10"}, actor="", reason="")
    )
    await refused(
        store, Invalid, store.update_host("web2", {"ip": "10.9.9.9"}, actor="", reason="")
    )
    await refused(store, Invalid, store.update_host("web2", {"ip": "nope"}, actor="", reason=""))
    await refused(store, Invalid, store.update_host("web2", {"hostname": ""}, actor="", reason=""))
    await refused(store, Invalid, store.update_host("web2", {"mac": None}, actor="", reason=""))
    await refused(store, Invalid, store.update_host("web2", {"version": 7}, actor="", reason=""))
    await refused(store, Invalid, store.update_host("web2", {"colour": "red"}, actor="", reason=""))
    await refused(store, NotFound, store.update_host("web3", {"boot": "x"}, actor="", reason=""))


@pytest.mark.asyncio
async def test_update_host_changes_mac_and_frees_old(store: Store) -> None:
    await add_web1(store)
    await store.update_host("web1", {"mac": MAC2, "client_id": "01:02"}, actor="op", reason="")
    web1 = await store.find_host(MAC2)
    assert (web1.mac, web1.client_id, web1.version) == (MAC2, "01:02", 2)
    await store.update_host("web1", {"client_id": ""}, actor="op", reason="")
    assert (await store.find_host("web1")).client_id is None


@pytest.mark.asyncio
async def test_remove_host_unknown_is_not_found(store: Store) -> None:
    await refused(store, NotFound, store.remove_host("web9", actor="op", reason=""))


# --- dry runs ---


@pytest.mark.asyncio
async def test_dry_run_writes_nothing_and_returns_the_change(store: Store, clock: Any) -> None:
    await add_web1(store)
    await store.commit_leases([lease("198.18.0.150", MAC9, clock.now, clock.now + 60)])
    [rec] = [
        await store.add_record(
            Record(id="r1", name="mail.site.example", rtype="A", value="198.18.0.25"),
            actor="op",
            reason="",
        )
    ]
    seen: list[Sequence[Change]] = []
    store.subscribe(seen.append)
    before = await state(store)
    writes = [
        store.add_host(host("web2", "198.18.0.11", MAC2), actor="op", reason="", dry_run=True),
        store.update_host("web1", {"ip": "198.18.0.12"}, actor="op", reason="", dry_run=True),
        store.remove_host("web1", actor="op", reason="", dry_run=True),
        store.add_record(
            Record(id="", name="x.site.example", rtype="TXT", value="t"),
            actor="op",
            reason="",
            dry_run=True,
        ),
        store.remove_record("r1", actor="op", reason="", dry_run=True),
        store.release_lease(IPv4Address("198.18.0.150"), actor="op", reason="", dry_run=True),
    ]
    changes = [await write for write in writes]
    assert await state(store) == before
    assert seen == []
    assert all(isinstance(c, Change) and c.seq == 0 for c in changes)
    assert changes[0].image["hostname"] == "web2"
    assert changes[1].image["ip"] == "198.18.0.12"
    assert changes[1].image["version"] == 2
    assert changes[2].op is Op.DELETE
    assert changes[4].object_id == rec.object_id
    assert changes[5].image["state"] == "released"
    # a refused dry run raises like the real thing
    await refused(
        store,
        Conflict,
        store.add_host(host("web2", "198.18.0.11", MAC1), actor="op", reason="", dry_run=True),
    )
    # and the real write after a dry run takes the next seq
    real = await store.add_host(host("web2", "198.18.0.11", MAC2), actor="op", reason="")
    assert real.seq == before[-1] + 1  # type: ignore[operator]


# --- records ---


@pytest.mark.asyncio
async def test_add_record_normalises(store: Store) -> None:
    change = await store.add_record(
        Record(id="", name="Mail.Site.Example.", rtype="mx", value="10 MX1.site.example."),
        actor="op",
        reason="",
    )
    [record] = await store.records()
    assert (record.name, record.rtype, record.value) == (
        "mail.site.example",
        "MX",
        "10 mx1.site.example",
    )
    assert Record.from_image(change.image) == record
    removed = await store.remove_record(record.id, actor="op", reason="")
    assert removed.op is Op.DELETE
    assert await store.records() == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("record", "error", "field"),
    [
        (Record(id="", name="x.site.example", rtype="HINFO", value="a b"), Invalid, "rtype"),
        (Record(id="", name="x..example", rtype="A", value="198.18.0.9"), Invalid, "name"),
        (Record(id="", name="x.site.example", rtype="A", value="2001:db8::1"), Invalid, "value"),
        (Record(id="", name="x.site.example", rtype="AAAA", value="198.18.0.9"), Invalid, "value"),
        (
            Record(id="", name="x.site.example", rtype="MX", value="mx.site.example"),
            Invalid,
            "value",
        ),
        (
            Record(id="", name="x.site.example", rtype="SRV", value="1 2 x t.example"),
            Invalid,
            "value",
        ),
        (
            Record(id="", name="x.site.example", rtype="A", value="198.18.0.9", ttl=-1),
            Invalid,
            "ttl",
        ),
        (Record(id="", name="web1.site.example", rtype="A", value="198.18.0.9"), Conflict, "name"),
        (
            Record(id="", name="web1.site.example", rtype="CNAME", value="x.example"),
            Conflict,
            "name",
        ),
        (
            Record(id="", name="web1.site.example", rtype="AAAA", value="2001:db8::1"),
            Conflict,
            "name",
        ),
        (
            Record(id="", name="dup.site.example", rtype="A", value="198.18.0.50"),
            Conflict,
            "record",
        ),
        (
            Record(id="", name="dup.site.example", rtype="CNAME", value="x.example"),
            Conflict,
            "name",
        ),
        (Record(id="", name="alias.site.example", rtype="TXT", value="t"), Conflict, "name"),
        (Record(id="r1", name="new.site.example", rtype="TXT", value="t"), Conflict, "id"),
    ],
)
async def test_add_record_refusals_change_nothing(
    store: Store, record: Record, error: type[StoreError], field: str
) -> None:
    await add_web1(store)
    await store.add_record(
        Record(id="r1", name="dup.site.example", rtype="A", value="198.18.0.50"),
        actor="",
        reason="",
    )
    await store.add_record(
        Record(id="r2", name="alias.site.example", rtype="CNAME", value="dup.site.example"),
        actor="",
        reason="",
    )
    caught = await refused(store, error, store.add_record(record, actor="op", reason=""))
    assert caught.field == field
    if record.name == "web1.site.example":
        assert WEB1_HOLDER in str(caught)


@pytest.mark.asyncio
async def test_record_may_share_a_reservation_name_when_not_an_address(store: Store) -> None:
    await add_web1(store)
    for rtype, value in (("MX", "10 mx.site.example"), ("TXT", "v=spf1 -all")):
        await store.add_record(
            Record(id="", name="web1.site.example", rtype=rtype, value=value), actor="", reason=""
        )
    # a name under another domain is not the reservation's
    await store.add_record(
        Record(id="", name="web1.other.example", rtype="A", value="198.18.0.9"), actor="", reason=""
    )


@pytest.mark.asyncio
async def test_remove_record_unknown_is_not_found(store: Store) -> None:
    await refused(store, NotFound, store.remove_record("nope", actor="op", reason=""))


# --- leases ---


@pytest.mark.asyncio
async def test_commit_leases_upserts_by_ip(store: Store, clock: Any) -> None:
    now = clock.now
    first = await store.commit_leases([lease("198.18.0.150", MAC9, now, now + 60)])
    second = await store.commit_leases(
        [lease("198.18.0.150", MAC9, now, now + 120, hostname="laptop")]
    )
    [stored] = await store.leases()
    assert stored.end == now + 120
    assert stored.hostname == "laptop"
    assert second[0].seq == first[0].seq + 1
    assert second[0].actor == "dhcp"
    assert Lease.from_image(second[0].image) == stored
    assert await store.commit_leases([]) == []


@pytest.mark.asyncio
async def test_group_commit_of_1000_leases_is_one_transaction(db_path: Path, clock: Any) -> None:
    commits: list[int] = []

    class CountingStore(Store):
        async def _before_commit(self, tx: Transaction) -> None:
            commits.append(len(tx.changes))

        def _lease_commit_hook(self) -> None:  # in the writer's thread, just before COMMIT
            commits.append(-1)

    async with await CountingStore.open(db_path, clock=clock) as store:
        await store.sync_subnets([Subnet(name="big", cidr=IPv4Network("198.18.0.0/16"))],
                                 actor="config", reason="")  # fmt: skip
        commits.clear()
        notified: list[Sequence[Change]] = []
        store.subscribe(notified.append)
        last = await store.last_seq()
        batch = [
            Lease(
                ip=IPv4Address(0xC6120000 + 256 + i),
                mac=f"02:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}",
                start=clock.now,
                end=clock.now + 600,
                subnet="big",
            )
            for i in range(1000)
        ]
        changes = await store.commit_leases(batch)
        assert commits == [-1]  # one COMMIT, the lease batch's own
        assert [len(n) for n in notified] == [1000]
        assert [c.seq for c in changes] == list(range(last + 1, last + 1001))
        assert len(await store.leases()) == 1000
        assert len(await store.changes(after=last, limit=5000)) == 1000


@pytest.mark.asyncio
async def test_lease_batch_with_a_bad_row_leaves_nothing(store: Store, clock: Any) -> None:
    now = clock.now
    batch = [lease(f"198.18.0.{100 + i}", MAC9, now, now + 60) for i in range(10)]
    batch[7] = lease("198.18.0.107", MAC9, now, now - 60)  # ends before it starts
    error = await refused(store, Invalid, store.commit_leases(batch))
    assert error.field == "leases"


@pytest.mark.asyncio
async def test_failure_just_before_commit_leaves_neither_row_nor_change(
    db_path: Path, clock: Any
) -> None:
    class FailingStore(Store):
        fail = False

        async def _before_commit(self, tx: Transaction) -> None:
            if self.fail:
                raise OSError("disk on fire")

        def _lease_commit_hook(self) -> None:  # in the writer's thread, just before COMMIT
            if self.fail:
                raise OSError("disk on fire")

    async with await FailingStore.open(db_path, clock=clock) as store:
        await store.sync_subnets([Subnet(name="lan", cidr=IPv4Network("198.18.0.0/24"))],
                                 actor="config", reason="")  # fmt: skip
        seen: list[Sequence[Change]] = []
        store.subscribe(seen.append)
        before = await state(store)
        store.fail = True
        with pytest.raises(OSError, match="disk on fire"):
            await store.add_host(host("web1", "198.18.0.10", MAC1), actor="op", reason="")
        with pytest.raises(OSError, match="disk on fire"):
            await store.commit_leases([lease("198.18.0.150", MAC9, clock.now, clock.now + 60)])
        assert await state(store) == before
        assert seen == []
        store.fail = False
        change = await store.add_host(host("web1", "198.18.0.10", MAC1), actor="op", reason="")
        assert change.seq == before[-1] + 1  # type: ignore[operator]
        assert len(seen) == 1


@pytest.mark.asyncio
async def test_release_lease(store: Store, clock: Any) -> None:
    now = clock.now
    await store.commit_leases([lease("198.18.0.150", MAC9, now - 100, now + 500)])
    change = await store.release_lease(IPv4Address("198.18.0.150"), actor="op", reason="bye")
    [released] = await store.leases()
    assert released.state is LeaseState.RELEASED
    assert released.end == now
    assert Lease.from_image(change.image) == released
    await refused(
        store, Invalid, store.release_lease(IPv4Address("198.18.0.150"), actor="op", reason="")
    )
    await refused(
        store, NotFound, store.release_lease(IPv4Address("198.18.0.151"), actor="op", reason="")
    )


@pytest.mark.asyncio
async def test_expire_leases(store: Store, clock: Any) -> None:
    now = clock.now
    await store.commit_leases(
        [
            lease("198.18.0.150", MAC9, now - 100, now - 1),
            lease("198.18.0.151", MAC2, now - 100, now),
            lease("198.18.0.152", MAC1, now - 100, now + 1),
            lease("198.18.0.153", MAC1, now - 100, now - 5, state=LeaseState.DECLINED),
        ]
    )
    changes = await store.expire_leases(now)
    assert sorted(c.object_id for c in changes) == ["198.18.0.150", "198.18.0.151"]
    states = {str(x.ip): x.state for x in await store.leases()}
    assert states == {
        "198.18.0.150": LeaseState.EXPIRED,
        "198.18.0.151": LeaseState.EXPIRED,
        "198.18.0.152": LeaseState.BOUND,
        "198.18.0.153": LeaseState.DECLINED,
    }
    assert await store.expire_leases(now) == []


# --- subnets ---


@pytest.mark.asyncio
async def test_sync_subnets_upserts_changed_deletes_missing_skips_same(store: Store) -> None:
    [lab, lan] = await store.subnets()
    assert await store.sync_subnets([lan, lab], actor="config", reason="reload") == []
    moved = Subnet(name="lan", cidr=lan.cidr, gateway=lan.gateway, lease_time=600)
    changes = await store.sync_subnets([moved], actor="config", reason="reload")
    assert [(c.object_id, c.op) for c in changes] == [("lab", Op.DELETE), ("lan", Op.UPSERT)]
    assert await store.subnets() == [moved]
    assert Subnet.from_image(changes[1].image) == moved


@pytest.mark.asyncio
async def test_sync_subnets_keeps_reservations_of_a_removed_subnet(store: Store) -> None:
    await store.add_host(host("labhost", "198.18.1.20", MAC2), actor="op", reason="")
    [_, lan] = await store.subnets()
    await store.sync_subnets([lan], actor="config", reason="")
    assert [h.hostname for h in await store.hosts()] == ["labhost"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "subnets",
    [
        [Subnet(name="a", cidr=IPv4Network("198.18.0.0/24")),
         Subnet(name="a", cidr=IPv4Network("198.18.1.0/24"))],
        [Subnet(name="a", cidr=IPv4Network("198.18.0.0/23")),
         Subnet(name="b", cidr=IPv4Network("198.18.1.0/24"))],
        [Subnet(name="a", cidr=IPv4Network("198.18.0.0/24"), gateway=IPv4Address("198.18.1.1"))],
    ],
)  # fmt: skip
async def test_sync_subnets_refusals_change_nothing(store: Store, subnets: list[Subnet]) -> None:
    await refused(store, Invalid, store.sync_subnets(subnets, actor="config", reason=""))


@pytest.mark.asyncio
@pytest.mark.parametrize(("start", "end"), [("198.18.0.50", "198.18.0.40"),
                                            ("198.18.0.0", "198.18.0.9"),
                                            ("198.18.0.250", "198.18.0.255"),
                                            ("198.18.0.250", "198.18.1.5")])  # fmt: skip
async def test_sync_subnets_refuses_bad_pools(store: Store, start: str, end: str) -> None:
    from ddi.ipam.models import Pool

    bad = Subnet(name="a", cidr=IPv4Network("198.18.0.0/24"),
                 pools=(Pool(start=IPv4Address(start), end=IPv4Address(end)),))  # fmt: skip
    error = await refused(store, Invalid, store.sync_subnets([bad], actor="config", reason=""))
    assert "pool" in str(error)


# --- the change log ---


@pytest.mark.asyncio
async def test_seq_strictly_increases_across_reopen_and_compaction(
    db_path: Path, clock: Any
) -> None:
    seqs: list[int] = []
    for round_ in range(3):
        async with await Store.open(db_path, clock=clock) as store:
            if round_ == 0:
                await store.sync_subnets([Subnet(name="lan", cidr=IPv4Network("198.18.0.0/24"))],
                                         actor="config", reason="")  # fmt: skip
            for i in range(3):
                change = await store.commit_leases(
                    [lease(f"198.18.0.{100 + i}", MAC9, clock.now, clock.now + round_ + 1)]
                )
                seqs.append(change[0].seq)
            assert await store.last_seq() == seqs[-1]
        # compact the outbox behind the store's back: every entry goes
        db = sqlite3.connect(db_path)
        with db:
            db.execute("DELETE FROM change")
        db.close()
    assert seqs == sorted(set(seqs))
    assert seqs[0] == 2
    async with await Store.open(db_path, clock=clock) as store:
        assert await store.changes() == []
        assert await store.last_seq() == seqs[-1]
        change = await store.commit_leases([lease("198.18.0.120", MAC9, clock.now, clock.now)])
        assert change[0].seq == seqs[-1] + 1


@pytest.mark.asyncio
async def test_changes_pages_by_seq(store: Store, clock: Any) -> None:
    for i in range(5):
        await store.commit_leases([lease(f"198.18.0.{100 + i}", MAC9, clock.now, clock.now + 9)])
    everything = await store.changes()
    assert [c.seq for c in everything] == list(range(1, len(everything) + 1))
    page = await store.changes(after=2, limit=2)
    assert [c.seq for c in page] == [3, 4]
    assert all(isinstance(c.kind, Kind) and c.epoch == 1 for c in everything)


@pytest.mark.asyncio
async def test_listeners_get_each_commit_in_order(store: Store, clock: Any) -> None:
    seen: list[list[int]] = []

    def broken(changes: Sequence[Change]) -> None:
        raise RuntimeError("listener bug")

    store.subscribe(broken)
    store.subscribe(lambda changes: seen.append([c.seq for c in changes]))
    first = await add_web1(store)
    leases = await store.commit_leases(
        [lease("198.18.0.150", MAC9, clock.now, clock.now + 9),
         lease("198.18.0.151", MAC9, clock.now, clock.now + 9)]
    )  # fmt: skip
    assert seen == [[first.seq], [c.seq for c in leases]]


@pytest.mark.asyncio
async def test_concurrent_writes_are_serialised(store: Store, clock: Any) -> None:
    import asyncio

    seen: list[int] = []
    store.subscribe(lambda changes: seen.extend(c.seq for c in changes))
    results = await asyncio.gather(
        *(
            store.commit_leases([lease(f"198.18.0.{100 + i}", MAC9, clock.now, clock.now + 9)])
            for i in range(20)
        ),
        *(
            store.add_host(
                host(f"h{i}", f"198.18.0.{10 + i}", f"52:54:00:00:01:{i:02x}"),
                actor="op",
                reason="",
            )
            for i in range(5)
        ),
    )
    assert len(results) == 25
    assert seen == sorted(seen)
    assert len(set(seen)) == 25


@pytest.mark.asyncio
async def test_owner_is_kept(store: Store) -> None:
    await add_web1(store, owner=Owner.CENTRAL)
    assert (await store.find_host("web1")).owner is Owner.CENTRAL


@pytest.mark.asyncio
async def test_cancelled_writer_leaves_store_and_listeners_agreeing(store: Store) -> None:
    import asyncio

    from ddi.ipam.views import IpamIndex

    index = await IpamIndex.load(store)
    store.subscribe(index.apply)
    for yields in range(0, 60, 2):
        task = asyncio.create_task(
            store.add_host(
                host(f"c{yields}", f"198.18.0.{20 + yields}", f"52:54:00:00:02:{yields:02x}"),
                actor="op",
                reason="",
            )
        )
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # the next write waits for whatever the cancelled one left in flight
        await store.commit_leases([])
        await store.expire_leases(0)
        assert index.state() == (await IpamIndex.load(store)).state()
    assert index.seq == await store.last_seq()


@pytest.mark.asyncio
async def test_central_owned_objects_change_only_through_central(store: Store) -> None:
    await add_web1(store, owner=Owner.CENTRAL)
    await store.add_record(
        Record(id="r1", name="c.site.example", rtype="TXT", value="x", owner=Owner.CENTRAL),
        actor="central",
        reason="",
    )
    error = await refused(
        store, Invalid, store.update_host("web1", {"boot": "x"}, actor="alice", reason="")
    )
    assert "owned by central" in str(error)
    await refused(store, Invalid, store.remove_host("web1", actor="alice", reason=""))
    await refused(store, Invalid, store.remove_record("r1", actor="alice", reason=""))
    await store.update_host("web1", {"boot": "x"}, actor="central", reason="")
    await store.remove_host("web1", actor="central", reason="")
    await store.remove_record("r1", actor="central", reason="")


@pytest.mark.asyncio
async def test_lease_client_matched_by_circuit_id_when_nothing_else(
    store: Store, clock: Any
) -> None:
    now = clock.now
    await store.commit_leases(
        [lease("198.18.0.150", None, now, now + 600, circuit_id="65:74:68:30")]
    )
    await refused(
        store,
        Conflict,
        store.add_host(host("a", "198.18.0.150", circuit_id="eth1"), actor="op", reason=""),
    )
    await store.add_host(host("a", "198.18.0.150", circuit_id="eth0"), actor="op", reason="")


@pytest.mark.asyncio
async def test_single_object_reads(store: Store, clock: Any) -> None:
    await store.add_record(
        Record(id="r1", name="x.site.example", rtype="TXT", value="t"), actor="", reason=""
    )
    assert (await store.find_record("r1")).value == "t"
    with pytest.raises(NotFound):
        await store.find_record("r2")
    assert await store.lease(IPv4Address("198.18.0.150")) is None
    await store.commit_leases([lease("198.18.0.150", MAC9, clock.now, clock.now + 1)])
    found = await store.lease(IPv4Address("198.18.0.150"))
    assert found is not None
    assert found.mac == MAC9


@pytest.mark.asyncio
async def test_unsubscribe_and_closed_store(db_path: Path) -> None:
    store = await Store.open(db_path)
    seen: list[Sequence[Change]] = []
    store.subscribe(seen.append)
    store.unsubscribe(seen.append)
    await store.sync_subnets([Subnet(name="lan", cidr=IPv4Network("198.18.0.0/24"))],
                             actor="config", reason="")  # fmt: skip
    assert seen == []
    await store.close()
    await store.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        await store.expire_leases(0)


@pytest.mark.asyncio
async def test_more_field_refusals(store: Store) -> None:
    await add_web1(store)
    await refused(store, Invalid, store.update_host("web1", {"ip": ""}, actor="", reason=""))
    await refused(
        store,
        Invalid,
        store.add_host(host("v", "198.18.0.30", MAC2, version=0), actor="", reason=""),
    )
    for bad in (
        Record(id="bad id", name="x.site.example", rtype="TXT", value="t"),
        Record(id="", name="x.site.example", rtype="TXT", value="t", version=0),
    ):
        await refused(store, Invalid, store.add_record(bad, actor="", reason=""))

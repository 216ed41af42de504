"""Central IPAM: the first sync of a site's objects into a real Nautobot (run by hand).

    .venv/bin/python -m bench.nautobot_first_sync [--objects 100000] [--batch 1000]

Starts the test lab's Nautobot (``tests/nautobot/lab.py``: PostgreSQL, Redis and
``nautobot-server runserver`` on loopback; needs ``make nautobot`` and redis-server), fills a
central store (SQLite) with one site's feed: one subnet, then half the objects as
reservations and half as bound leases on other addresses, and times the IPAM sync task
(``central.nautobot.task.IpamSync``, the code ``ddi-central serve`` runs) from cursor 0 to
the feed's head. Then it rewinds the cursor and times the replay (every object compared,
nothing written). Prints both, in objects per second.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import tempfile
import time
from pathlib import Path

from central.nautobot import client, state
from central.nautobot.adapter import IpamError
from central.nautobot.config import NautobotConfig
from central.nautobot.task import IpamSync
from central.schema import CHANGE_COLUMNS
from central.store import CentralStore, open_store

SITE = "bench1"
NETWORK = ipaddress.IPv4Network("198.18.0.0/15")


def _images(count: int) -> list[tuple[str, str, dict[str, object]]]:
    """``(kind, object_id, image)``: the subnet, then reservations and leases alternating."""
    out: list[tuple[str, str, dict[str, object]]] = [
        ("subnet", "lab", {"name": "lab", "cidr": str(NETWORK)})
    ]
    for n in range(count - 1):
        ip = str(NETWORK.network_address + 256 + n)
        mac = f"52:54:00:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}"
        if n % 2 == 0:
            host_id = f"{n:032x}"
            image: dict[str, object] = {
                "id": host_id,
                "ip": ip,
                "hostname": f"h{n}",
                "mac": mac,
                "owner": "edge",
            }
            out.append(("host", host_id, image))
        else:
            image = {"ip": ip, "mac": mac, "hostname": f"d{n}", "state": "bound",
                     "start": 0.0, "end": 4e9, "subnet": "lab"}  # fmt: skip
            out.append(("lease", ip, image))
    return out


async def _fill(store: CentralStore, count: int) -> None:
    await store.add_site(SITE, b"\0" * 32)
    images = _images(count)
    now = time.time()
    async with store.transaction() as tx:
        await tx.execute("UPDATE counter SET value = ? WHERE name = 'gseq'", len(images))
        rows = [
            (i + 1, SITE, 1, i + 1, kind, oid, "upsert", json.dumps(image), "bench", "", now, now)
            for i, (kind, oid, image) in enumerate(images)
        ]
        await tx.insert("change", CHANGE_COLUMNS, rows)
        await tx.upsert_objects(
            SITE, [(kind, oid, json.dumps(image), i + 1) for i, (kind, oid, image) in
                   enumerate(images)]
        )  # fmt: skip


async def _drain(sync: IpamSync, store: CentralStore) -> tuple[float, int]:
    head = await state.head(store)
    assert await state.acquire(store, "nautobot", sync.holder, now=time.time(), ttl=3600)
    started = time.monotonic()
    writes = 0
    while await state.cursor(store, "nautobot") < head:
        try:
            result = await sync.round()
        except IpamError as exc:  # as the task does: forget what Nautobot held, redo
            print(f"round failed, redone: {exc}")
            await sync.forget()
            continue
        writes += result.writes
    return time.monotonic() - started, writes


def _raw(lab_url: str, token: str, count: int) -> float:
    """Seconds pynautobot alone takes to bulk-create ``count`` tagged IP addresses with a
    custom field (100 per request, as the task writes), in a scratch namespace: the floor
    under the task's first sync on the same Nautobot."""
    import pynautobot

    api = pynautobot.api(lab_url, token=token)
    ns = api.ipam.namespaces.create(name="bench-raw").id
    status = {s.name: s.id for s in api.extras.statuses.all()}
    tag = api.extras.tags.get(name="ddi").id
    api.ipam.prefixes.create(prefix=str(NETWORK), namespace=ns, status=status["Active"],
                             type="network")  # fmt: skip
    started = time.monotonic()
    for start in range(0, count, 100):
        api.ipam.ip_addresses.create([
            {"address": f"{NETWORK.network_address + 256 + n}/32", "namespace": ns,
             "status": status["Reserved"], "dns_name": f"h{n}", "tags": [tag],
             "custom_fields": {"ddi_mac": "52:54:00:00:00:01", "ddi_site": SITE}}
            for n in range(start, min(count, start + 100))
        ])  # fmt: skip
    return time.monotonic() - started


async def main(count: int, batch: int, raw: bool) -> None:
    from tests.nautobot.lab import nautobot_lab  # the lab lives with the tests

    with nautobot_lab() as lab, tempfile.TemporaryDirectory() as folder:
        print(f"Nautobot {lab.version} up in {lab.timings.total():.1f} s")
        store = await open_store(f"sqlite://{Path(folder) / 'central.sqlite'}")
        try:
            await _fill(store, count)
            config = NautobotConfig(url=lab.url, token=lab.token, batch_size=batch)
            sync = IpamSync(store, client.factory(config), batch_size=batch, interval=1.0)
            seconds, writes = await _drain(sync, store)
            print(
                f"first sync: {count} objects ({writes} writes) in {seconds:.1f} s:"
                f" {count / seconds:.0f} objects/s (batch {batch})"
            )
            await state.release(store, "nautobot", sync.holder)
            await state.rewind(store, "nautobot", 0)
            replay = IpamSync(store, client.factory(config), batch_size=batch, interval=1.0)
            seconds, writes = await _drain(replay, store)
            print(
                f"replay from cursor 0: {count} objects ({writes} writes) in {seconds:.1f} s:"
                f" {count / seconds:.0f} objects/s"
            )
            if raw:
                seconds = await asyncio.to_thread(_raw, lab.url, lab.token, count)
                print(
                    f"pynautobot bulk create alone, same Nautobot: {count} addresses in"
                    f" {seconds:.1f} s: {count / seconds:.0f} objects/s"
                )
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--raw", action="store_true",
                        help="then time pynautobot's bulk create alone, for the ratio")  # fmt: skip
    args = parser.parse_args()
    asyncio.run(main(args.objects, args.batch, args.raw))

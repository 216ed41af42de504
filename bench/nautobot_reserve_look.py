"""Reservations made in Nautobot: how long a look takes (run by hand).

    .venv/bin/python -m bench.nautobot_reserve_look [--addresses 1000]

Starts the test lab's Nautobot (``tests/nautobot/lab.py``), makes a site's namespace and
prefix and ``--addresses`` IP addresses tagged ``ddi-reserve`` (each with a MAC), then times
the down direction's looks (``central.nautobot.down.ReserveSync.look``, what
``ddi-central serve`` runs every ``interval``) against a central store on SQLite: the first
look (every address queued in the down log), and a look with nothing changed (one paged
list from Nautobot, nothing written). Prints both, in seconds and addresses per second.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from central.nautobot import down, reserve_client
from central.nautobot.config import NautobotConfig
from central.store import open_store
from sync import protocol

SITE = "bench1"


def _prepare(lab: object, count: int) -> None:
    api = lab.api  # type: ignore[attr-defined]
    ns = api("POST", "/api/ipam/namespaces/", {"name": SITE})
    active = api("GET", "/api/extras/statuses/?name=Active")["results"][0]
    api("POST", "/api/ipam/prefixes/", {"prefix": "198.18.0.0/15", "namespace": ns["id"],
                                        "status": active["id"], "type": "network"})  # fmt: skip
    tag = api("POST", "/api/extras/tags/", {"name": "ddi-reserve",
                                            "content_types": ["ipam.ipaddress"]})  # fmt: skip
    have = {cf["key"] for cf in api("GET", "/api/extras/custom-fields/?limit=0")["results"]}
    if "ddi_mac" not in have:
        field = {"key": "ddi_mac", "label": "ddi MAC", "type": "text",
                 "content_types": ["ipam.ipaddress"]}  # fmt: skip
        api("POST", "/api/extras/custom-fields/", field)
    for start in range(0, count, 250):
        api("POST", "/api/ipam/ip-addresses/", [
            {"address": f"198.18.{(256 + n) >> 8}.{(256 + n) & 255}/15", "namespace": ns["id"],
             "status": active["id"], "tags": [tag["id"]], "dns_name": f"r{n}",
             "custom_fields": {"ddi_mac": f"52:54:00:00:{n >> 8:02x}:{n & 255:02x}"}}
            for n in range(start, min(count, start + 250))
        ])  # fmt: skip


async def _run(lab: object, count: int) -> None:
    config = NautobotConfig(url=lab.url, token=lab.token)  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(f"sqlite://{Path(folder) / 'central.sqlite'}")
        try:
            await store.add_site(
                SITE, protocol.public_key_raw(protocol.generate_key().public_key())
            )
            task = down.ReserveSync(store, lambda: reserve_client.NautobotReserves(config),
                                    namespace_of=lambda s: s, interval=1.0)  # fmt: skip
            for name in ("first look (all queued)", "look, nothing changed"):
                started = time.perf_counter()
                result = await task.look()
                took = time.perf_counter() - started
                print(f"{name:<26} {took:7.2f} s  {count / took:8.0f} addresses/s  {result}")
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--addresses", type=int, default=1000)
    args = parser.parse_args()
    from tests.nautobot.lab import nautobot_lab

    with nautobot_lab() as lab:
        _prepare(lab, args.addresses)
        asyncio.run(_run(lab, args.addresses))


if __name__ == "__main__":
    main()

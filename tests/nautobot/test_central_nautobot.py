"""ddi-central keeps a real Nautobot in step with a site (issue 17, the up direction).

An edge (``ddi serve``) syncs to ``ddi-central serve`` through a fault-injecting proxy (the
WAN), and central, with ``[nautobot]``, pushes to the lab's Nautobot. Each test ends by
comparing Nautobot's API, object by object, with the edge's own store: every subnet a prefix,
every reservation and bound lease one IP address, nothing else tagged ``ddi``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from central.nautobot import state
from central.store import open_store
from ddi.ipam.models import Lease, LeaseState
from ddi.ipam.models6 import Lease6, Lease6Kind
from ddi.ipam.store import Store
from tests.nautobot.lab import NautobotLab

_HARNESS = Path(__file__).parents[1] / "net" / "sync" / "harness.py"
if "sync_harness" in sys.modules:
    h: Any = sys.modules["sync_harness"]
else:
    _spec = importlib.util.spec_from_file_location("sync_harness", _HARNESS)
    assert _spec is not None
    assert _spec.loader is not None
    h = importlib.util.module_from_spec(_spec)
    sys.modules["sync_harness"] = h
    _spec.loader.exec_module(h)


SUBNETS6 = """[[subnets6]]
name = "lab6"
cidr = "2001:db8:10::/64"
pools = [{ start = "2001:db8:10::1000", end = "2001:db8:10::1fff" }]
pd_pools = [{ prefix = "2001:db8:100::/40", delegated_length = 56 }]

"""
DUID = "00:03:00:01:52:54:00:00:00:99"


@dataclass
class Setup:
    edge: Any
    central: Any
    proxy: Any
    lab: NautobotLab
    namespace: str
    database: Path


@pytest_asyncio.fixture
async def setup(nautobot_running: NautobotLab, tmp_path: Path) -> AsyncIterator[Setup]:
    central_port = h.free_port()
    proxy = h.FaultProxy(central_port)
    await proxy.start()
    central_folder = tmp_path / "central"
    central_folder.mkdir()
    central_key = h.write_key(central_folder / "central.key")
    edge = h.Edge(tmp_path / "edge", f"http://127.0.0.1:{proxy.port}",
                  Path(f"{central_key}.pub"), extra_config=SUBNETS6)  # fmt: skip
    database = central_folder / "central.sqlite"
    central = h.Central(central_folder, f"sqlite://{database}", Path(f"{edge.key}.pub"),
                        port=central_port)  # fmt: skip
    # Each test its own namespace and location in the one lab Nautobot.
    namespace = f"ns-{tmp_path.name[-40:]}"
    (central_folder / "nautobot.token").write_text(nautobot_running.token + "\n")
    with central.config.open("a") as config:
        config.write(
            "\n[nautobot]\n"
            f'url = "{nautobot_running.url}"\n'
            'token_file = "nautobot.token"\n'
            "batch_size = 40\n"
            "interval = 0.2\n"
            # Every test here with a reconcile every 10 s: none may find work but the one
            # that makes some by hand.
            "reconcile_interval = 10\n"
            f'[nautobot.sites.{h.SITE}]\nlocation = "{namespace}"\nnamespace = "{namespace}"\n'
        )
    try:
        yield Setup(edge=edge, central=central, proxy=proxy, lab=nautobot_running,
                    namespace=namespace, database=database)  # fmt: skip
    finally:
        await edge.stop()
        await central.stop()
        await proxy.close()
        if nautobot_running.server is None:
            nautobot_running.start_server()


# --- Nautobot's view and the edge's ---


def nautobot_view(lab: NautobotLab, namespace: str) -> dict[str, dict[str, Any]]:
    """Every object tagged ddi in ``namespace``: ``prefix:CIDR`` / ``ip:ADDR`` → fields."""
    view: dict[str, dict[str, Any]] = {}
    if not lab.all(f"/api/ipam/namespaces/?name={namespace}"):
        return view  # not made yet (filtering on an unknown namespace is a 400)
    for p in lab.all(f"/api/ipam/prefixes/?namespace={namespace}&tags=ddi"):
        key = f"prefix:{p['prefix']}"
        assert key not in view, f"{key} twice in Nautobot"
        view[key] = {"description": p["description"], "site": p["custom_fields"]["ddi_site"]}
    for a in lab.all(f"/api/ipam/ip-addresses/?namespace={namespace}&tags=ddi"):
        key = f"ip:{str(a['address']).split('/')[0]}"
        assert key not in view, f"{key} twice in Nautobot"
        status = a["status"]
        view[key] = {
            "address": a["address"],
            "dns_name": a["dns_name"],
            "mac": a["custom_fields"]["ddi_mac"],
            "status": status["name"] if isinstance(status, dict) else status,
            "site": a["custom_fields"]["ddi_site"],
        }
    return view


def edge_view(db: Path) -> dict[str, dict[str, Any]]:
    """What Nautobot should hold, written out from the edge's store (not through the
    mapping under test): subnets as prefixes, reservations as Reserved addresses, bound
    leases on addresses no reservation holds as DHCP addresses."""
    objects = h.edge_objects(db)
    view: dict[str, dict[str, Any]] = {}
    for (kind, _), image in objects.items():
        if kind in ("subnet", "subnet6"):
            view[f"prefix:{image['cidr']}"] = {"description": image["name"], "site": h.SITE}
    for (kind, _), image in objects.items():
        if kind == "host":
            for field, mask in (("ip", 32), ("ip6", 128)):
                if image.get(field):
                    view[f"ip:{image[field]}"] = {
                        "address": f"{image[field]}/{mask}",
                        "dns_name": image["hostname"],
                        "mac": image["mac"],
                        "status": "Reserved",
                        "site": h.SITE,
                    }
    for (kind, _), image in objects.items():
        if kind == "lease" and image["state"] == "bound" and f"ip:{image['ip']}" not in view:
            view[f"ip:{image['ip']}"] = {
                "address": f"{image['ip']}/32",
                "dns_name": image["hostname"] or "",
                "mac": image["mac"],
                "status": "DHCP",
                "site": h.SITE,
            }
    for (kind, _), image in objects.items():
        # A DHCPv6 address lease (IA_NA); delegated prefixes (IA_PD) are not mapped.
        if kind == "lease6" and image["state"] == "bound" and image["kind"] == "na":
            address = str(image["prefix"]).split("/")[0]
            view.setdefault(f"ip:{address}", {
                "address": f"{address}/128",
                "dns_name": image["hostname"] or "",
                "mac": image["mac"],
                "status": "DHCP",
                "site": h.SITE,
            })  # fmt: skip
    return view


async def in_step(s: Setup, within: float = 120) -> dict[str, dict[str, Any]]:
    """Wait for the edge to reach central and central to reach Nautobot; Nautobot's view."""
    await h.wait_synced(s.edge, s.central, within=within)
    await h.assert_same(s.edge, s.central)
    want = edge_view(s.edge.db)
    seen: dict[str, dict[str, Any]] = {}

    def same() -> bool:
        nonlocal seen
        seen = nautobot_view(s.lab, s.namespace)
        return seen == want

    await until_async(same, "Nautobot to match the edge", within)
    return seen


async def until_async(check: Any, what: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"timed out after {within}s waiting for {what}"
        await asyncio.sleep(0.3)


async def metric(central: Any, name: str) -> float:
    text = await asyncio.to_thread(_get_text, f"{central.url}/metrics")
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(\{{[^}}]*\}})? (\S+)$", line)
        if match:
            total += float(match.group(2))
    return total


def _get_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as answer:
        return str(answer.read().decode())


def _lease(n: int, *, now: float, state: LeaseState = LeaseState.BOUND) -> Lease:
    return Lease(ip=IPv4Address(h.ip_of(n)), mac=f"02:00:00:00:01:{n:02x}", hostname=f"dyn{n}",
                 state=state, start=now, end=now + 3600, subnet="lab")  # fmt: skip


async def offline_leases(edge: Any, leases: list[Lease], leases6: list[Lease6]) -> None:
    store = await Store.open(edge.db)
    try:
        await store.commit_leases(leases)
        await store.commit_leases6(leases6)
    finally:
        await store.close()


# --- tests ---


@pytest.mark.asyncio
async def test_reservations_made_while_the_wan_is_down_reach_nautobot(setup: Setup) -> None:
    s = setup
    await s.central.start()
    await s.edge.start()
    await s.edge.add_hosts(range(30))
    first = await in_step(s)
    assert len(first) == 32  # the two subnets and 30 reservations
    assert first["prefix:198.18.0.0/15"] == {"description": "lab", "site": h.SITE}

    # The WAN goes down (central restarts too, which closes the connections the proxy
    # carried): reservations made now wait in the edge's outbox.
    s.proxy.mode = "drop"
    await s.central.stop()
    await s.central.start()
    await s.edge.add_hosts(range(30, 45))
    client = s.edge.api()
    hosts = {str(x["hostname"]): x for x in client.get("/v1/hosts")["hosts"]}
    why = {"actor": "test", "reason": "wan down"}
    await asyncio.to_thread(client.delete, f"/v1/hosts/{hosts['h3']['id']}", why)
    moved = {"fields": {"ip": h.ip_of(400), "hostname": "h4moved"}} | why
    await asyncio.to_thread(client.patch, f"/v1/hosts/{hosts['h4']['id']}", moved)
    status = await s.edge.status()
    assert status["backlog_entries"] >= 17
    assert f"ip:{h.ip_of(30)}" not in nautobot_view(s.lab, s.namespace)
    s.proxy.mode = "pass"  # the WAN is back
    view = await in_step(s)
    assert f"ip:{h.ip_of(3)}" not in view
    assert view[f"ip:{h.ip_of(400)}"]["dns_name"] == "h4moved"
    assert f"ip:{h.ip_of(4)}" not in view
    assert view[f"ip:{h.ip_of(44)}"]["status"] == "Reserved"


@pytest.mark.asyncio
async def test_nautobot_down_mid_run_loses_and_doubles_nothing(setup: Setup) -> None:
    s = setup
    await s.central.start()
    await s.edge.start()
    await s.edge.add_hosts(range(10))
    await in_step(s)
    s.lab.stop_server()
    await s.edge.add_hosts(range(10, 60))
    dual = h.host_body(60, ip6="2001:db8:10::60")
    await asyncio.to_thread(s.edge.api().post, "/v1/hosts", dual)
    # Leases too: one on a reserved address (the reservation wins), some alone, one released.
    await s.edge.stop()
    now = time.time()
    await offline_leases(
        s.edge,
        [_lease(5, now=now), *(_lease(n, now=now) for n in range(100, 110)),
         _lease(110, now=now, state=LeaseState.RELEASED)],
        [Lease6(kind=Lease6Kind.NA, prefix=IPv6Network("2001:db8:10::1001/128"), duid=DUID,
                iaid=1, hostname="laptop6", start=now, end=now + 7200,
                preferred_end=now + 3600, subnet="lab6"),
         Lease6(kind=Lease6Kind.PD, prefix=IPv6Network("2001:db8:100::/56"), duid=DUID,
                iaid=2, start=now, end=now + 7200, preferred_end=now + 3600, subnet="lab6")],
    )  # fmt: skip
    await s.edge.start()
    await h.wait_synced(s.edge, s.central, within=120)

    async def lagging() -> bool:
        return await metric(s.central, "ddi_central_nautobot_errors_total") > 0

    deadline = time.monotonic() + 60
    while not await lagging():
        assert time.monotonic() < deadline, "central never tried Nautobot while it was down"
        await asyncio.sleep(0.2)
    assert await metric(s.central, "ddi_central_nautobot_lag_entries") > 0
    s.lab.start_server()
    view = await in_step(s)
    # 61 reservations (one dual-stack: two addresses), 10 leases alone, one DHCPv6 lease.
    assert len([k for k in view if k.startswith("ip:")]) == 61 + 1 + 10 + 1
    assert view["prefix:2001:db8:10::/64"] == {"description": "lab6", "site": h.SITE}
    assert view["ip:2001:db8:10::60"]["address"] == "2001:db8:10::60/128"
    assert view["ip:2001:db8:10::1001"]["status"] == "DHCP"
    assert view[f"ip:{h.ip_of(5)}"]["status"] == "Reserved"
    assert view[f"ip:{h.ip_of(100)}"]["status"] == "DHCP"
    assert f"ip:{h.ip_of(110)}" not in view
    log = (s.central.folder / "central.log").read_text()
    assert "retrying in" in log


@pytest.mark.asyncio
async def test_replay_from_cursor_zero_changes_nothing(setup: Setup) -> None:
    s = setup
    await s.central.start()
    await s.edge.start()
    await s.edge.add_hosts(range(25))
    before = await in_step(s)
    # Nautobot matching the edge is not yet the cursor moved: that commit follows the writes.
    await until_async(lambda: _caught_up(s), "the cursor to reach the feed's head", within=60)
    stamps = {
        a["address"]: a["last_updated"]
        for a in s.lab.all(f"/api/ipam/ip-addresses/?namespace={s.namespace}&tags=ddi")
    }
    await s.central.stop()
    store = await open_store(f"sqlite://{s.database}")
    try:
        assert await state.cursor(store, "nautobot") > 0
        await state.rewind(store, "nautobot", 0)
    finally:
        await store.close()
    await s.central.start()
    await until_async(lambda: _caught_up(s), "the replay to reach the feed's head", within=60)
    assert await metric(s.central, "ddi_central_nautobot_writes_total") == 0
    assert nautobot_view(s.lab, s.namespace) == before
    after = {
        a["address"]: a["last_updated"]
        for a in s.lab.all(f"/api/ipam/ip-addresses/?namespace={s.namespace}&tags=ddi")
    }
    assert after == stamps


@pytest.mark.asyncio
async def test_reconcile_undoes_what_was_done_by_hand_in_nautobot(setup: Setup) -> None:
    """A tagged address nothing claims (as a dead collector's late write), one of ours
    deleted and one renamed by hand: the reconcile puts Nautobot back as the edge has it."""
    s, lab = setup, setup.lab
    await s.central.start()
    await s.edge.start()
    await s.edge.add_hosts(range(4))
    before = await in_step(s)
    # The writes are counted when the round commits, after Nautobot shows them.
    await until_async(lambda: _caught_up(s), "the task's round to end", within=60)
    assert await metric(s.central, "ddi_central_nautobot_writes_total") > 0
    ours = {
        str(a["address"]).split("/")[0]: str(a["id"])
        for a in lab.all(f"/api/ipam/ip-addresses/?namespace={s.namespace}&tags=ddi")
    }
    namespace = _one(lab, f"/api/ipam/namespaces/?name={s.namespace}")
    lab.api("POST", "/api/ipam/ip-addresses/", {
        "address": "198.18.3.250/32", "namespace": namespace["id"],
        "status": _one(lab, "/api/extras/statuses/?name=Active")["id"],
        "tags": [_one(lab, "/api/extras/tags/?name=ddi")["id"]],
        "custom_fields": {"ddi_site": h.SITE},
    })  # fmt: skip
    lab.api("DELETE", f"/api/ipam/ip-addresses/{ours[h.ip_of(1)]}/")
    lab.api("PATCH", f"/api/ipam/ip-addresses/{ours[h.ip_of(2)]}/", {"dns_name": "renamed"})
    assert nautobot_view(lab, s.namespace) != before
    await until_async(lambda: nautobot_view(lab, s.namespace) == before, "the reconcile", 60)
    # The log line follows the reconcile's writes, which Nautobot shows first; a reconcile
    # that ran between the hand edits repairs some, the next the rest.
    await until_async(lambda: _reconcile_writes(s) == 3, "the reconcile's 3 writes logged", 30)
    assert await metric(s.central, "ddi_central_nautobot_reconciles_total") >= 1


def _reconcile_writes(s: Setup) -> int:
    log = (s.central.folder / "central.log").read_text()
    return sum(
        int(n) for n in re.findall(r"reconcile found the IPAM out of step, (\d+) writes", log)
    )


def _one(lab: NautobotLab, path: str) -> dict[str, Any]:
    found = lab.all(path)
    assert len(found) == 1, (path, found)
    return found[0]


def _caught_up(s: Setup) -> bool:
    """This collector's task applied entries and its last round ended at the feed's head."""
    text = _get_text(f"{s.central.url}/metrics")
    applied = [ln for ln in text.splitlines() if ln.startswith("ddi_central_nautobot_applied_")]
    lag = [ln for ln in text.splitlines() if ln.startswith("ddi_central_nautobot_lag_entries")]
    return bool(applied) and float(applied[0].split()[-1]) > 0 and lag[0].endswith(" 0.0")

"""Reservations made in a real Nautobot reach the edge (issue 17, the down direction).

An edge (``ddi serve``) syncs through a proxy (the WAN) to ``ddi-central serve`` with
``[nautobot]``; addresses an operator tags ``ddi-reserve`` in Nautobot's API become
central-owned reservations at the edge; edits and deletions follow; what cannot be sent down,
or what the site refuses, shows in ``ddi-central conflicts`` and once as a Note on the address.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sqlite3
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from central.nautobot.reserve import host_id
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


@dataclass
class Setup:
    edge: Any
    central: Any
    proxy: Any
    lab: NautobotLab
    namespace: str
    database: Path


def nautobot_config(lab: NautobotLab, folder: Path, namespace: str, site: str = h.SITE) -> str:
    (folder / "nautobot.token").write_text(lab.token + "\n")
    return (
        "\n[nautobot]\n"
        f'url = "{lab.url}"\n'
        'token_file = "nautobot.token"\n'
        "interval = 0.2\n"
        f'[nautobot.sites.{site}]\nlocation = "{namespace}"\nnamespace = "{namespace}"\n'
    )


@pytest_asyncio.fixture
async def setup(nautobot_running: NautobotLab, tmp_path: Path) -> AsyncIterator[Setup]:
    central_port = h.free_port()
    proxy = h.FaultProxy(central_port)
    await proxy.start()
    folder = tmp_path / "central"
    folder.mkdir()
    central_key = h.write_key(folder / "central.key")
    edge = h.Edge(tmp_path / "edge", f"http://127.0.0.1:{proxy.port}", Path(f"{central_key}.pub"))
    database = folder / "central.sqlite"
    central = h.Central(folder, f"sqlite://{database}", Path(f"{edge.key}.pub"), port=central_port)
    namespace = f"nsd-{tmp_path.name[-40:]}"
    with central.config.open("a") as config:
        config.write(nautobot_config(nautobot_running, folder, namespace))
    try:
        yield Setup(edge=edge, central=central, proxy=proxy, lab=nautobot_running,
                    namespace=namespace, database=database)  # fmt: skip
    finally:
        await edge.stop()
        await central.stop()
        await proxy.close()


# --- Nautobot, as an operator uses it ---


def one(lab: NautobotLab, path: str) -> dict[str, Any]:
    found = lab.all(path)
    assert len(found) == 1, (path, found)
    return found[0]


def reserve(lab: NautobotLab, namespace: str, address: str, *, mac: str = "",
            dns_name: str = "") -> str:  # fmt: skip
    """Make an address tagged ddi-reserve, as an operator would; returns its id."""
    ns = one(lab, f"/api/ipam/namespaces/?name={namespace}")
    active = one(lab, "/api/extras/statuses/?name=Active")
    tag = one(lab, "/api/extras/tags/?name=ddi-reserve")
    made = lab.api("POST", "/api/ipam/ip-addresses/", {
        "address": address, "namespace": ns["id"], "status": active["id"], "dns_name": dns_name,
        "tags": [tag["id"]], "custom_fields": {"ddi_mac": mac or None},
    })  # fmt: skip
    assert isinstance(made, dict)
    return str(made["id"])


def addresses(lab: NautobotLab, namespace: str, host: str) -> list[dict[str, Any]]:
    return lab.all(f"/api/ipam/ip-addresses/?namespace={namespace}&address={host}")


def notes(lab: NautobotLab, ipam_id: str) -> list[str]:
    return [str(n["note"]) for n in lab.all(f"/api/extras/notes/?assigned_object_id={ipam_id}")]


async def until(check: Callable[[], Any], what: str, within: float = 90) -> Any:
    """Poll ``check`` (run in a thread: it may block on HTTP) until it is truthy."""
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {within}s waiting for {what}"
        await asyncio.sleep(0.2)


# --- the edge and central ---


def edge_host(edge: Any, key: str) -> dict[str, Any] | None:
    for (kind, _), image in h.edge_objects(edge.db).items():
        if kind == "host" and key in (image["id"], image["ip"], image["mac"]):
            return image
    return None


def central_conflicts(central: Any) -> list[dict[str, Any]]:
    return list(json.loads(central.cli("conflicts", "--json").stdout))


def refusals(central: Any) -> float:
    """Writes Nautobot refused, from central's ``/metrics``."""
    with urllib.request.urlopen(f"{central.url}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    pattern = r'^ddi_central_nautobot_errors_total\{[^}]*reason="refused"[^}]*\} (\S+)$'
    return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.MULTILINE))


def down_log(database: Path) -> list[dict[str, Any]]:
    con = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return [
            {"op": op, **json.loads(image)}
            for op, image in con.execute("SELECT op, image FROM down ORDER BY dseq")
        ]
    finally:
        con.close()


async def started(s: Setup) -> None:
    await s.central.start()
    await s.edge.start()
    await s.edge.add_hosts([1])
    await h.wait_synced(s.edge, s.central)
    # The up direction made the site's namespace and prefix; the down one its tag.
    await until(lambda: s.lab.all(f"/api/ipam/namespaces/?name={s.namespace}"), "the namespace")
    await until(lambda: s.lab.all(f"/api/ipam/prefixes/?namespace={s.namespace}"), "the prefix")
    await until(lambda: s.lab.all("/api/extras/tags/?name=ddi-reserve"), "the ddi-reserve tag")


# --- tests ---


@pytest.mark.asyncio
async def test_a_reservation_made_in_nautobot_reaches_the_edge_and_follows_edits(
    setup: Setup,
) -> None:
    s = setup
    await started(s)
    ipam_id = reserve(s.lab, s.namespace, "198.18.0.20/15", mac="52-54-00-FF-00-01",
                      dns_name="pxe1.example.net")  # fmt: skip
    host = await until(lambda: edge_host(s.edge, "198.18.0.20"), "the reservation at the edge")
    assert host["id"] == host_id(ipam_id)
    assert (host["owner"], host["mac"], host["hostname"]) == ("central", "52:54:00:ff:00:01",
                                                              "pxe1")  # fmt: skip
    # The site reports it back; the up direction leaves the operator's address as it is (it
    # is Nautobot's own: nothing to write, so nothing refused) and goes on with the rest.
    await h.wait_synced(s.edge, s.central)
    await s.edge.add_hosts([2])
    await until(lambda: addresses(s.lab, s.namespace, h.ip_of(2)), "the edge's next reservation")
    assert await asyncio.to_thread(refusals, s.central) == 0
    [address] = addresses(s.lab, s.namespace, "198.18.0.20")
    assert address["id"] == ipam_id
    assert {t["name"] for t in address["tags"]} == {"ddi-reserve"}
    assert address["dns_name"] == "pxe1.example.net"

    # An edit in Nautobot follows; so does a deletion.
    s.lab.api("PATCH", f"/api/ipam/ip-addresses/{ipam_id}/",
              {"dns_name": "pxe2", "custom_fields": {"ddi_mac": "52:54:00:ff:00:02"}})  # fmt: skip
    await until(
        lambda: (edge_host(s.edge, host["id"]) or {}).get("mac") == "52:54:00:ff:00:02",
        "the edit at the edge",
    )
    assert (edge_host(s.edge, host["id"]) or {})["hostname"] == "pxe2"
    s.lab.api("DELETE", f"/api/ipam/ip-addresses/{ipam_id}/")
    await until(lambda: edge_host(s.edge, host["id"]) is None, "the withdrawal at the edge")
    await h.wait_synced(s.edge, s.central)
    await h.assert_same(s.edge, s.central)
    # Only what Nautobot marked came down: the edge's own reservation (up in Nautobot with
    # the tag ddi) never did.
    ops = [(e["op"], e["id"]) for e in down_log(s.database)]
    assert {i for _, i in ops} == {host["id"]}
    assert ops[-1] == ("delete", host["id"])
    owners = {str(x.get("owner")) for (k, _), x in h.edge_objects(s.edge.db).items() if k == "host"}
    assert owners == {"edge"}


@pytest.mark.asyncio
async def test_conflicts_show_at_central_at_the_edge_and_once_in_nautobot(setup: Setup) -> None:
    s = setup
    await started(s)
    mine = h.host_body(1)
    # Refused by central: the MAC is the edge's own reservation's.
    by_mac = reserve(s.lab, s.namespace, "198.18.0.21/15", mac=mine["mac"], dns_name="dup")
    # Unusable: no MAC.
    no_mac = reserve(s.lab, s.namespace, "198.18.0.22/15", dns_name="nomac")
    # Refused by the site: the WAN is down while the edge reserves an address and Nautobot
    # reserves the same one for another client; central cannot know, the edge refuses.
    s.proxy.mode = "drop"
    await s.proxy.cut()
    await s.edge.add_hosts([2])
    taken = h.ip_of(2)
    by_site = reserve(s.lab, s.namespace, f"{taken}/15", mac="52:54:00:ff:00:09",
                      dns_name="scanner")  # fmt: skip
    await until(lambda: any(e["id"] == host_id(by_site) for e in down_log(s.database)),
                "the reservation queued at central")  # fmt: skip
    s.proxy.mode = "pass"

    def conflicts() -> dict[str, dict[str, Any]] | None:
        rows = {r["object_id"]: r for r in central_conflicts(s.central)}
        return rows if {host_id(by_mac), host_id(by_site)} <= rows.keys() else None

    rows = await until(conflicts, "both conflicts in `ddi-central conflicts`")
    refused = rows[host_id(by_mac)]
    assert (refused["field"], refused["value"]) == ("mac", mine["mac"])
    assert refused["edge_image"]["hostname"] == "h1"
    reported = rows[host_id(by_site)]
    assert (reported["field"], reported["value"]) == ("ip", taken)
    assert reported["edge_image"]["hostname"] == "h2"
    text = s.central.cli("conflicts").stdout
    assert mine["mac"] in text
    assert taken in text
    at_edge = (await asyncio.to_thread(s.edge.api().get, "/v1/sync/conflicts"))["conflicts"]
    assert [(c["object_id"], c["field"]) for c in at_edge] == [(host_id(by_site), "ip")]

    await until(lambda: notes(s.lab, by_site), "the site's conflict noted")
    await until(lambda: notes(s.lab, by_mac), "central's refusal noted")
    await until(lambda: notes(s.lab, no_mac), "the missing MAC noted")

    # The site keeps and serves its own reservation; the operator's address stays as made,
    # the only one at that IP.
    [kept] = addresses(s.lab, s.namespace, taken)
    assert (kept["id"], kept["custom_fields"]["ddi_mac"]) == (by_site, "52:54:00:ff:00:09")
    assert (edge_host(s.edge, taken) or {})["hostname"] == "h2"
    assert edge_host(s.edge, host_id(by_site)) is None

    # Later looks write nothing more: another reservation goes through after them.
    later = reserve(s.lab, s.namespace, "198.18.0.23/15", mac="52:54:00:ff:00:23")
    await until(lambda: edge_host(s.edge, host_id(later)), "a later reservation at the edge")
    assert len(notes(s.lab, by_mac)) == 1
    assert "mac 52:54:00:00:00:01 belongs to another reservation" in notes(s.lab, by_mac)[0]
    assert len(notes(s.lab, no_mac)) == 1
    assert "ddi_mac" in notes(s.lab, no_mac)[0]
    site_notes = [n for n in notes(s.lab, by_site) if "reports a conflict" in n]
    assert len(site_notes) == 1
    assert f"ip {taken} is held there by" in site_notes[0]
    # The operator asks, on that address, for what the site reserves itself: nothing is sent,
    # central's copy is withdrawn and the site's conflict resolved.
    s.lab.api("PATCH", f"/api/ipam/ip-addresses/{by_site}/",
              {"custom_fields": {"ddi_mac": h.host_body(2)["mac"]}})  # fmt: skip

    def withdrawn() -> bool:
        last = [e for e in down_log(s.database) if e["id"] == host_id(by_site)][-1]
        return bool(last["op"] == "delete")

    await until(withdrawn, "central to withdraw its refused copy")
    await until(
        lambda: all(r["resolved_at"] for r in central_conflicts(s.central)
                    if r["object_id"] == host_id(by_site)),
        "the site's conflict resolved",
    )  # fmt: skip

    # The note is written after the withdrawal commits, so the site may resolve first.
    def served() -> list[str]:
        return [n for n in notes(s.lab, by_site) if "reserves this address" in n]

    await until(served, "the note on what the site reserves")
    assert len(served()) == 1
    # Fixed in Nautobot (another MAC), the refused reservation goes through and central's
    # conflict is resolved.
    s.lab.api("PATCH", f"/api/ipam/ip-addresses/{by_mac}/",
              {"custom_fields": {"ddi_mac": "52:54:00:ff:00:21"}})  # fmt: skip
    await until(lambda: edge_host(s.edge, host_id(by_mac)), "the fixed reservation at the edge")
    fixed = next(r for r in central_conflicts(s.central) if r["object_id"] == host_id(by_mac))
    assert fixed["resolved_at"] is not None
    await h.wait_synced(s.edge, s.central)
    await h.assert_same(s.edge, s.central)

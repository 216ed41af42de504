"""IPv6 objects over sync: a central of this version stores them and serves them in its feed;
a central of the previous version (its real code, from git) keeps working, the edge holds the
IPv6 objects back from it, and sends them in a snapshot once central is upgraded."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator
from ipaddress import IPv6Network
from pathlib import Path

import pytest
import pytest_asyncio

from ddi.ipam.models6 import Lease6, Lease6Kind
from ddi.ipam.store import Store
from tests.ci import skip_or_fail

_spec = importlib.util.spec_from_file_location(
    "sync_harness_v6", Path(__file__).with_name("harness.py")
)
assert _spec is not None
assert _spec.loader is not None
h = importlib.util.module_from_spec(_spec)
sys.modules["sync_harness_v6"] = h
_spec.loader.exec_module(h)

REPO = Path(__file__).resolve().parents[3]
PREVIOUS = "f972c57673bbbdd5a433fdc177eb9330b4195bee"
"""The last commit before IPv6 objects: the previous version's central."""
SUBNETS6 = """[[subnets6]]
name = "lab6"
cidr = "2001:db8:10::/64"
pools = [{ start = "2001:db8:10::1000", end = "2001:db8:10::1fff" }]
pd_pools = [{ prefix = "2001:db8:100::/40", delegated_length = 56 }]

"""
DUID = "00:03:00:01:52:54:00:00:00:99"


@pytest.fixture(scope="module")
def previous_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous version's source tree (``git archive``, no change to the repository)."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", PREVIOUS, "central", "ddi", "sync"],
        capture_output=True, timeout=60,
    )  # fmt: skip
    if out.returncode != 0:
        skip_or_fail(f"the previous version {PREVIOUS[:10]} is not in this repository")
    folder = tmp_path_factory.mktemp("previous")
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder


@pytest_asyncio.fixture
async def edge(tmp_path: Path) -> AsyncIterator[tuple[h.Edge, Path]]:
    central_folder = tmp_path / "central"
    central_folder.mkdir()
    central_key = h.write_key(central_folder / "central.key")
    port = h.free_port()
    edge = h.Edge(
        tmp_path / "edge", f"http://127.0.0.1:{port}", Path(f"{central_key}.pub"),
        extra_config=SUBNETS6,
    )  # fmt: skip
    edge.central_port = port  # type: ignore[attr-defined]
    try:
        yield edge, central_folder
    finally:
        await edge.stop()


async def add_v6_objects(edge: h.Edge) -> None:
    """A dual-stack host, an IPv6-only host and two DHCPv6 leases."""

    def hosts() -> None:
        client = edge.api()
        client.post("/v1/hosts", h.host_body(1, ip6="2001:db8:10::21", duid=DUID))
        client.post(
            "/v1/hosts",
            h.host_body(2, ip=None, ip6="2001:db8:10::22", mac=None, duid=DUID[:-2] + "98"),
        )

    await asyncio.to_thread(hosts)
    now = time.time()
    store = await Store.open(edge.db)
    try:
        await store.commit_leases6(
            [
                Lease6(kind=Lease6Kind.NA, prefix=IPv6Network("2001:db8:10::1001/128"),
                       duid=DUID, iaid=1, hostname="laptop", start=now, end=now + 7200,
                       preferred_end=now + 3600, subnet="lab6"),
                Lease6(kind=Lease6Kind.PD, prefix=IPv6Network("2001:db8:100::/56"), duid=DUID,
                       iaid=2, start=now, end=now + 7200, preferred_end=now + 3600,
                       subnet="lab6"),
            ]
        )  # fmt: skip
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_a_central_of_this_version_stores_and_feeds_ipv6_objects(
    central_db: str, edge: tuple[h.Edge, Path]
) -> None:
    site, folder = edge
    central = h.Central(folder, central_db, Path(f"{site.key}.pub"), port=site.central_port)  # type: ignore[attr-defined]
    try:
        await central.start()
        await site.start()
        await add_v6_objects(site)  # the leases while the daemon runs: a store of its own
        await site.stop()
        await site.start()
        await h.wait_synced(site, central, within=60)
        await h.assert_same(site, central)
        state = await central.get(f"/v1/sites/{h.SITE}")
        assert state["accepts"] == ["ipv6"]
        kinds = {(c["kind"], c["object_id"]) for c in await central.feed(site=h.SITE)}
        assert ("subnet6", "lab6") in kinds
        assert ("lease6", "pd:2001:db8:100::/56") in kinds
        hosts = (await central.get(f"/v1/sites/{h.SITE}/hosts"))["hosts"]
        only6 = [x for x in hosts if x["ip"] is None]
        assert [x["ip6"] for x in only6] == ["2001:db8:10::22"]
        leases6 = (await central.get(f"/v1/sites/{h.SITE}/lease6s"))["lease6s"]
        assert sorted(x["prefix"] for x in leases6) == [
            "2001:db8:100::/56",
            "2001:db8:10::1001/128",
        ]
        assert (await site.status())["held_back"] == 0
        assert (await site.status())["withheld"] is False
    finally:
        await central.stop()


@pytest.mark.asyncio
async def test_a_previous_central_keeps_working_and_gets_ipv6_once_upgraded(
    central_db: str, edge: tuple[h.Edge, Path], previous_code: Path
) -> None:
    site, folder = edge
    port = site.central_port  # type: ignore[attr-defined]
    old = h.Central(folder, central_db, Path(f"{site.key}.pub"), port=port, code=previous_code)
    try:
        await old.start()
        await site.start()
        await add_v6_objects(site)
        await site.stop()
        await site.start()
        await site.add_hosts(range(10, 13))  # IPv4 work goes on
        status = await h.wait_synced(site, old, within=60)
        # The subnet6, the IPv6-only host and the leases are held (recorded in the store).
        assert status["withheld"] is True
        assert "accepts" not in await old.get(f"/v1/sites/{h.SITE}")
        mine = h.edge_objects(site.db)
        theirs = await h.central_objects(old)
        held = {
            k
            for k in mine
            if k[0] in ("subnet6", "lease6") or (k[0] == "host" and not mine[k]["ip"])
        }
        assert len(held) == 4  # the subnet6, the IPv6-only host, two leases
        assert theirs.keys() == mine.keys() - held
        for key in theirs:
            assert theirs[key] == mine[key], key  # the dual-stack host with its ip6 and duid
        refusals = await old.get("/v1/sites")
        assert refusals["sites"][0]["refused"] == {}
    finally:
        await old.stop()
    # Upgrade central in place (same database): the held objects arrive in a snapshot.
    new = h.Central.__new__(h.Central)
    new.__dict__ |= old.__dict__ | {"code": None, "proc": None}
    try:
        await new.start()
        await asyncio.to_thread(site.api().post, "/v1/sync/now", {})
        await h.wait_synced(site, new, within=60)
        await h.assert_same(site, new)
        status = await site.status()
        assert status["epoch"] >= 2
        assert status["withheld"] is False
    finally:
        await new.stop()


@pytest.mark.asyncio
async def test_an_edge_of_the_previous_version_syncs_to_this_central(
    central_db: str, tmp_path: Path, previous_code: Path
) -> None:
    folder = tmp_path / "central"
    folder.mkdir()
    central_key = h.write_key(folder / "central.key")
    port = h.free_port()
    old = h.Edge(
        tmp_path / "edge", f"http://127.0.0.1:{port}", Path(f"{central_key}.pub"),
        code=previous_code,
    )  # fmt: skip
    central = h.Central(folder, central_db, Path(f"{old.key}.pub"), port=port)
    try:
        await central.start()
        await old.start()
        await old.add_hosts(range(5))
        await h.wait_synced(old, central, within=60)
        await h.assert_same(old, central)
        assert "withheld" not in await old.status()  # the previous version's agent
        feed = await central.feed(site=h.SITE)
        assert sorted({c["kind"] for c in feed}) == ["host", "subnet"]
    finally:
        await old.stop()
        await central.stop()

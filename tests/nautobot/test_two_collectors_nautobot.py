"""Two ``ddi-central serve`` processes with ``[nautobot]`` behind one PostgreSQL, four edges
uploading to both, the collector running the Nautobot task SIGKILLed mid-run: the survivor
takes the task over, the feed holds every change once, and Nautobot every object once (no
IP address twice), equal to each edge; a reservation made in Nautobot after the kill still
reaches its edge (the down direction moves to the survivor too).

As in ``tests/net/sync/test_two_collectors.py``, each collector has an address of its own (a
proxy), half the edges use each, and the killed one's address is repointed at the survivor.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from central.nautobot.reserve import host_id
from tests import postgres
from tests.ci import skip_or_fail
from tests.nautobot.lab import NautobotLab
from tests.nautobot.test_down import addresses, edge_host, h, reserve, until

SITES = ("s1", "s2", "s3", "s4")
HOSTS = 40


@dataclass
class Cluster:
    centrals: tuple[Any, Any]
    addresses: tuple[Any, Any]
    edges: list[Any]
    lab: NautobotLab
    namespaces: dict[str, str]


@pytest.fixture(scope="module")
def pg() -> Iterator[postgres.Cluster]:
    try:
        with postgres.cluster(prefix="ddi-2c-pg-") as found:
            yield found
    except postgres.Unavailable as exc:
        skip_or_fail(f"PostgreSQL unavailable: {exc}")


@pytest_asyncio.fixture
async def cluster(
    pg: postgres.Cluster, nautobot_running: NautobotLab, tmp_path: Path
) -> AsyncIterator[Cluster]:
    database = pg.create_database()
    first = tmp_path / "central-a"
    first.mkdir()
    key = h.write_key(first / "central.key")
    second = tmp_path / "central-b"
    second.mkdir()
    shutil.copy(key, second / "central.key")
    shutil.copy(f"{key}.pub", second / "central.key.pub")
    a = h.Central(first, database, None)
    b = h.Central(second, database, None)
    tag = tmp_path.name[-30:]
    namespaces = {site: f"n2c-{tag}-{site}" for site in SITES}
    for central in (a, b):
        (central.folder / "nautobot.token").write_text(nautobot_running.token + "\n")
        text = (
            f'\n[nautobot]\nurl = "{nautobot_running.url}"\ntoken_file = "nautobot.token"\n'
            "interval = 0.2\nbatch_size = 100\n"
        )
        for site, namespace in namespaces.items():
            text += (
                f'[nautobot.sites.{site}]\nlocation = "{namespace}"\nnamespace = "{namespace}"\n'
            )
        with central.config.open("a") as config:
            config.write(text)
    proxies = (h.FaultProxy(a.port), h.FaultProxy(b.port))
    for proxy in proxies:
        await proxy.start()
    edges = []
    for i, site in enumerate(SITES):
        edge = h.Edge(tmp_path / site, f"http://127.0.0.1:{proxies[i % 2].port}",
                      Path(f"{key}.pub"), site=site)  # fmt: skip
        a.cli("site", "add", "--id", site, "--public-key", f"{edge.key}.pub")
        edges.append(edge)
    try:
        yield Cluster(centrals=(a, b), addresses=proxies, edges=edges, lab=nautobot_running,
                      namespaces=namespaces)  # fmt: skip
    finally:
        for edge in edges:
            await edge.stop()
        await a.stop()
        await b.stop()
        for proxy in proxies:
            await proxy.close()


def _write(edge: Any, first: int) -> None:
    """``HOSTS`` reservations from number ``first`` on, then deletions of every tenth."""
    client = edge.api()
    numbers = range(first, first + HOSTS)
    ids = [client.post("/v1/hosts", h.host_body(n))["host"]["id"] for n in numbers]
    for host in ids[::10]:
        client.delete(f"/v1/hosts/{host}", {"actor": "test", "reason": "gone"})


async def _leads(central: Any, target: str) -> bool:
    text = await asyncio.to_thread(_metrics, central.url)
    pattern = rf'^ddi_central_nautobot_leader\{{target="{target}"\}} (\S+)$'
    return any(float(m.group(1)) == 1 for m in re.finditer(pattern, text, re.MULTILINE))


def _metrics(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as answer:
        return str(answer.read().decode())


async def _mismatch(cluster: Cluster, survivor: Any, namespace: str, want: list[str]) -> str:
    """What differs between Nautobot and an edge, and the survivor's task metrics: a
    failure that says what went wrong."""
    have = nautobot_ips(cluster.lab, namespace)
    text = await asyncio.to_thread(_metrics, survivor.url)
    task = [ln for ln in text.splitlines() if ln.startswith("ddi_central_nautobot_")]
    return (
        f"Nautobot does not match {namespace}: missing {sorted(set(want) - set(have))},"
        f" extra {sorted(set(have) - set(want))},"
        f" doubled {sorted({ip for ip in have if have.count(ip) > 1})};"
        f" the survivor's task: {task}"
    )


def nautobot_ips(lab: NautobotLab, namespace: str) -> list[str]:
    """Every IP address tagged ddi in ``namespace`` (a list: a doubled one shows twice)."""
    if not lab.all(f"/api/ipam/namespaces/?name={namespace}"):
        return []
    found = lab.all(f"/api/ipam/ip-addresses/?namespace={namespace}&tags=ddi")
    return sorted(str(x["address"]).split("/")[0] for x in found)


def edge_ips(edge: Any) -> list[str]:
    return sorted(
        str(image["ip"]) for (kind, _), image in h.edge_objects(edge.db).items() if kind == "host"
    )


@pytest.mark.asyncio
async def test_two_collectors_with_nautobot_one_killed_mid_run(cluster: Cluster) -> None:
    a, b = cluster.centrals
    await asyncio.gather(a.start(), b.start())
    for edge in cluster.edges:
        await edge.start()
    writing = [asyncio.create_task(asyncio.to_thread(_write, e, 1)) for e in cluster.edges]
    # Kill whichever collector pushes to Nautobot, once Nautobot has a part of the run.
    s1 = cluster.namespaces["s1"]
    await until(lambda: len(nautobot_ips(cluster.lab, s1)) >= 10, "a part of the run in Nautobot")
    leader = await h.wait_for(lambda: _leader(cluster), within=30, what="the task's leader")
    survivor, address = (b, cluster.addresses[0]) if leader is a else (a, cluster.addresses[1])
    pushed = sum(len(nautobot_ips(cluster.lab, ns)) for ns in cluster.namespaces.values())
    assert pushed < len(SITES) * (HOSTS - HOSTS // 10), "Nautobot had it all before the kill"
    leader.kill()
    address.upstream = survivor.port
    await asyncio.gather(*writing)
    # A second wave while the survivor takes the task over.
    await asyncio.gather(*(asyncio.to_thread(_write, e, 1 + HOSTS) for e in cluster.edges))
    for edge in cluster.edges:
        await h.wait_synced(edge, survivor, within=120)
        await h.assert_same(edge, survivor)
    await h.wait_for(lambda: _leads(survivor, "nautobot"), within=60, what="the survivor to lead")

    # Nautobot: each edge's reservations, each address once.
    for edge in cluster.edges:
        namespace = cluster.namespaces[edge.site]
        want = edge_ips(edge)
        assert len(want) == 2 * (HOSTS - HOSTS // 10)
        try:
            await until(lambda ns=namespace, want=want: nautobot_ips(cluster.lab, ns) == want,
                        f"Nautobot to match {edge.site}", within=180)  # fmt: skip
        except AssertionError:
            raise AssertionError(await _mismatch(cluster, survivor, namespace, want)) from None
    feed = await survivor.feed()
    assert [c["gseq"] for c in feed] == list(range(1, len(feed) + 1))
    assert len({(c["site"], c["epoch"], c["seq"]) for c in feed}) == len(feed)

    # The down direction moved to the survivor too.
    s2 = cluster.namespaces["s2"]
    made = reserve(cluster.lab, s2, "198.18.0.20/15", mac="52:54:00:2c:00:20", dns_name="late")
    edge2 = next(e for e in cluster.edges if e.site == "s2")
    await until(lambda: edge_host(edge2, host_id(made)), "a Nautobot reservation at s2")
    await h.wait_synced(edge2, survivor)
    assert [x["id"] for x in addresses(cluster.lab, s2, "198.18.0.20")] == [made]


async def _leader(cluster: Cluster) -> Any:
    for central in cluster.centrals:
        if await _leads(central, "nautobot"):
            return central
    return None

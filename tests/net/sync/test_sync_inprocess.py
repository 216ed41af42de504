"""The agent and the collector in one process over real loopback HTTPS: central's
certificate is pinned, a central-issued reservation reaches the edge's index and the DHCP
engine serves it, and a snapshot interrupted mid-way resumes at central's next page."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY

from central.app import build_app
from central.store import CentralStore, open_store
from ddi.config import SyncConfig, parse_config
from ddi.errors import ConfigError
from ddi.ipam.models import Host, Op, Owner
from ddi.ipam.store import Store
from ddi.ipam.views import IpamIndex
from ddi.site import Site
from sync import protocol
from sync.agent import SyncAgent, service
from tests.unit.dhcp.sim import LAN, ClientSim, Harness

SITE = "s1"


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class World:
    central: CentralStore
    url: str
    edge: Store
    index: IpamIndex
    config: SyncConfig
    site_key: Any
    folder: Path


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    cert, cert_key = self_signed(tmp_path, "central")
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(cert, cert_key)
    central_key = protocol.generate_key()
    site_key = protocol.generate_key()
    (tmp_path / "site.key").write_bytes(protocol.private_key_pem(site_key))
    (tmp_path / "central.pub").write_bytes(protocol.public_key_pem(central_key.public_key()))
    central = await open_store(f"sqlite://{tmp_path}/central.sqlite")
    await central.add_site(SITE, protocol.public_key_raw(site_key.public_key()))
    runner = web.AppRunner(build_app(central, central_key, max_body=1 << 24), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    edge = await Store.open(tmp_path / "edge.sqlite", domain="site.example")
    await edge.sync_subnets([LAN], actor="t", reason="r")
    index = await IpamIndex.load(edge)
    edge.subscribe(index.apply)
    config = SyncConfig(
        central_url=f"https://localhost:{port}",
        site_key=tmp_path / "site.key",
        central_public_key=tmp_path / "central.pub",
        ca_file=cert,
        backoff_base=0.05,
        backoff_cap=0.2,
        poll_interval=0.1,
        timeout=5.0,
    )
    try:
        yield World(central, f"https://localhost:{port}", edge, index, config, site_key, tmp_path)
    finally:
        await runner.cleanup()
        await edge.close()
        await central.close()


@contextlib.asynccontextmanager
async def running(world: World, config: SyncConfig | None = None) -> AsyncIterator[SyncAgent]:
    agent = SyncAgent(store=world.edge, site=SITE, config=config or world.config)
    task = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Any, what: str, within: float = 20.0) -> Any:
    async with asyncio.timeout(within):
        while True:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(0.05)
    raise AssertionError(what)


async def caught_up(world: World) -> bool:
    info = await world.central.site(SITE)
    return info is not None and info.applied_seq == await world.edge.last_seq()


@pytest.mark.asyncio
async def test_pinned_certificate_and_central_reservation_served_by_dhcp(world: World) -> None:
    mac = "52:54:00:12:34:56"
    reservation = Host(id="a" * 32, ip=IPv4Address("198.18.0.50"), hostname="pxe1", mac=mac,
                       owner=Owner.CENTRAL)  # fmt: skip
    await world.central.add_down(SITE, Op.UPSERT, reservation)
    async with running(world) as agent:
        await until(lambda: world.index.host_by_mac(mac), "the reservation in the index")
        await until(lambda: caught_up(world), "central to hold the reservation")
        assert agent.link == "up"
    ack = ClientSim(mac=mac).dora(served_by(world.index))
    assert ack.packet.yiaddr == IPv4Address("198.18.0.50")
    hosts = await world.central.objects(SITE)
    assert any(o["image"].get("owner") == "central" and o["object_id"] == "a" * 32 for o in hosts)


def sent(result: str) -> float:
    value = REGISTRY.get_sample_value("ddi_sync_batches_total", {"result": result})
    return value or 0.0


def served_by(index: IpamIndex) -> Harness:
    harness = Harness()
    harness.index = index
    harness.engine = type(harness.engine)(harness.config, index, domain="site.example")
    return harness


@pytest.mark.asyncio
async def test_a_certificate_other_than_the_pinned_one_is_refused(world: World) -> None:
    other, _ = self_signed(world.folder, "impostor")
    await world.edge.add_host(
        Host(id="", ip=IPv4Address("198.18.0.60"), hostname="h60", mac="52:54:00:00:00:60"),
        actor="t", reason="r",
    )  # fmt: skip
    async with running(world, replace(world.config, ca_file=other)) as agent:
        await until(lambda: agent.last_error, "a failed round")
        assert agent.link == "down"
        assert "certificate" in (agent.last_error or "").lower()
    info = await world.central.site(SITE)
    assert info is not None
    assert info.applied_seq == 0


@pytest.mark.asyncio
async def test_interrupted_snapshot_resumes_at_centrals_next_page(world: World) -> None:
    for n in range(60, 100):
        await world.edge.add_host(
            Host(id="", ip=IPv4Address(f"198.18.0.{n}"), hostname=f"h{n}",
                 mac=f"52:54:00:00:00:{n:02x}"),
            actor="t", reason="r",
        )  # fmt: skip
    rolled = await world.edge.sync.roll_epoch()
    epoch, as_of = rolled.epoch, rolled.as_of
    pages = []
    after = None
    for page in range(2):
        objects = await world.edge.sync.snapshot_page(after, 10)
        p = protocol.make_snapshot_page(site=SITE, epoch=epoch, as_of_seq=as_of, page=page,
                                        after=after, objects=objects, last=False,
                                        key=world.site_key)  # fmt: skip
        pages.append(p)
        after = p.last_key
        await world.central.apply_snapshot_page(SITE, p)
    info = await world.central.site(SITE)
    assert info is not None
    assert (info.snapshot_next_page, info.snapshot_after) == (2, after)
    config = replace(world.config, batch_max_entries=10)
    duplicates = sent("snapshot_duplicate")
    applied = sent("snapshot_applied")
    async with running(world, config) as agent:
        await until(lambda: caught_up(world), "the snapshot to complete")
        # Central commits the last page before it answers; the agent counts on the answer.
        await until(lambda: agent.snapshots_sent, "the agent to count the snapshot")
        assert agent.snapshots_sent == 1
    assert sent("snapshot_duplicate") == duplicates
    assert sent("snapshot_applied") - applied == 3  # pages 2, 3 and the last, 4
    info = await world.central.site(SITE)
    assert info is not None
    assert info.epoch == epoch
    central_hosts = {
        o["object_id"] for o in await world.central.objects(SITE) if o["kind"] == "host"
    }
    assert central_hosts == {h.id for h in await world.edge.hosts()}


@pytest.mark.asyncio
async def test_agent_survives_a_central_that_answers_nonsense(world: World) -> None:
    answers = iter([{"epoch": "x"}, [1, 2], {"epoch": 1, "applied_seq": -4}])

    async def cursor(request: web.Request) -> web.Response:
        return web.json_response(next(answers, {"epoch": 0, "applied_seq": 0}))

    async def batch(request: web.Request) -> web.Response:
        return web.json_response({"result": "applied"})

    app = web.Application()
    app.router.add_get("/v1/sites/s1", cursor)
    app.router.add_post("/v1/sites/s1/batches", batch)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = replace(world.config, central_url=f"http://127.0.0.1:{port}", insecure_http=True)
    before = REGISTRY.get_sample_value("ddi_internal_errors_total", {"area": "sync"}) or 0.0
    try:
        async with running(world, config) as agent:
            await until(lambda: agent._rounds >= 5, "five failed rounds")
            assert agent.link == "down"
            assert "applied_seq" in (agent.last_error or "")
    finally:
        await runner.cleanup()
    after = REGISTRY.get_sample_value("ddi_internal_errors_total", {"area": "sync"}) or 0.0
    assert after == before
    assert (await world.edge.sync.cursors()).cursor == 0


@pytest.mark.asyncio
async def test_the_agent_is_the_sync_service_of_a_site(world: World) -> None:
    base = parse_config(
        {"site": {"id": SITE, "domain": "site.example"}}, path=world.folder / "x.toml"
    )
    with pytest.raises(ConfigError, match="sync"):
        service(Site(config=base, store=world.edge, index=world.index, store_path=world.folder))
    config = replace(base, sync=world.config)
    agent = service(
        Site(config=config, store=world.edge, index=world.index, store_path=world.folder)
    )
    assert agent.name == "sync"
    await world.edge.add_host(
        Host(id="b" * 32, ip=IPv4Address("198.18.0.60"), hostname="svc1", mac="52:54:00:00:00:61"),
        actor="t",
        reason="r",
    )
    async with asyncio.TaskGroup() as tg:
        await agent.start(tg)
        async with asyncio.timeout(20):
            assert await agent.sync_now()
        await agent.reload(config)
        assert agent.statistics()["link"] == "up"
        assert agent.statistics()["backlog_entries"] == 0
        await agent.close()
    assert await caught_up(world)
    await agent.close()  # twice is harmless

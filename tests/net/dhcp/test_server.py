"""The DHCP transport on loopback: a real Store, IpamIndex and sockets, in-process.

The test client plays a relay on 127.0.0.1 (giaddr) that asks, with RFC 8357 sub-option 19,
for replies on its own source port, so no privileged port and no broadcast are needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from ddi import metrics
from ddi.config import Config, DhcpConfig, parse_config
from ddi.dhcp import server as dhcp_server
from ddi.dhcp.admission import BUSY_QUEUE, BUSY_WAIT
from ddi.dhcp.options import MessageType, OptionCode
from ddi.dhcp.packet import BOOTREQUEST, DhcpPacket, decode_packet, encode_packet
from ddi.ipam.models import Host, Lease, LeaseState
from ddi.ipam.store import Store
from ddi.site import Site, open_site
from tests.serving import slowed, started
from tests.waiting import until

DOMAIN = "site.example"
RELAY_INFO = bytes([1, 4]) + b"lo-1" + bytes([19, 0])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_config(
    tmp_path: Path, port: int, *, pool_end: str = "198.18.0.109", **dhcp: Any
) -> Config:
    data = {
        "site": {"id": "s1", "domain": DOMAIN, "data_dir": str(tmp_path)},
        "api": {"socket": str(tmp_path / "api.sock")},
        "subnets": [
            {
                "name": "lan",
                "cidr": "198.18.0.0/24",
                "gateway": "198.18.0.1",
                "relay_agents": ["127.0.0.1"],
                "pools": [{"start": "198.18.0.100", "end": pool_end}],
            }
        ],
        "dhcp": {"port": port, "interfaces": ["lo"], **dhcp},
    }
    return parse_config(data, path=tmp_path / "ddi.toml")


@dataclass
class Running:
    app: Site
    store: Store
    server: dhcp_server.DhcpServer
    port: int


@contextlib.asynccontextmanager
async def running(cfg: Config, store_type: type[Store] = Store) -> AsyncIterator[Running]:
    async with open_site(cfg, store_type=store_type) as app:
        store = app.store
        server = dhcp_server.service(app)
        async with started(server):
            if not server.statistics()["interfaces"]:
                raise RuntimeError("dhcp service did not start")
            yield Running(app=app, store=store, server=server, port=cfg.dhcp.port)


class Relay:
    """A UDP socket on 127.0.0.1 that sends relayed requests and reads the replies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    def request(
        self, mac: int, message_type: MessageType, *, xid: int = 1, **options: bytes
    ) -> DhcpPacket:
        opts: list[tuple[int, bytes]] = [(OptionCode.MESSAGE_TYPE, bytes((message_type,)))]
        for name, value in options.items():
            opts.append((OptionCode[name.upper()], value))
        opts.append((OptionCode.RELAY_AGENT_INFORMATION, RELAY_INFO))
        return DhcpPacket(
            op=BOOTREQUEST,
            xid=xid,
            hops=1,
            giaddr=IPv4Address("127.0.0.1"),
            chaddr=bytes.fromhex("525400") + mac.to_bytes(3, "big") + bytes(10),
            options=tuple(opts),
        )

    def send(self, packet: DhcpPacket | bytes) -> None:
        data = packet if isinstance(packet, bytes) else encode_packet(packet)
        self.sock.sendto(data, ("127.0.0.1", self.port))

    async def receive(self, wait: float = 3.0) -> DhcpPacket:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(wait):
            data = await loop.sock_recv(self.sock, 4096)
        return decode_packet(data)

    async def exchange(self, packet: DhcpPacket) -> DhcpPacket:
        self.send(packet)
        return await self.receive()


@pytest.fixture
def relay_port() -> int:
    return free_udp_port()


def _internal_errors() -> float:
    value = metrics.REGISTRY.get_sample_value("ddi_internal_errors_total", {"area": "dhcp"})
    return value or 0.0


class GatedStore(Store):
    """A store whose lease batches wait in the writer's thread, rows written and COMMIT not yet
    run, until ``gate`` opens."""

    gate: threading.Event
    reached: threading.Event

    def _lease_commit_hook(self) -> None:
        self.reached.set()
        self.gate.wait(10)


class FailingStore(Store):
    """A store whose lease batches fail in the writer's thread just before COMMIT (as a disk
    that refuses the fsync) while ``failing`` is set."""

    failing = True

    def _lease_commit_hook(self) -> None:
        if self.failing:
            raise sqlite3.OperationalError("disk I/O error")


@pytest.mark.asyncio
async def test_the_ack_leaves_only_once_its_lease_is_committed(
    tmp_path: Path, relay_port: int
) -> None:
    GatedStore.gate = threading.Event()
    GatedStore.reached = threading.Event()
    async with running(make_config(tmp_path, relay_port), store_type=GatedStore) as r:
        relay = Relay(r.port)
        try:
            offer = await relay.exchange(relay.request(1, MessageType.DISCOVER, xid=9))
            relay.send(
                relay.request(
                    1,
                    MessageType.REQUEST,
                    xid=9,
                    requested_address=offer.yiaddr.packed,
                    server_identifier=IPv4Address("127.0.0.1").packed,
                )
            )
            await until(GatedStore.reached.is_set, "the batch reaches its COMMIT", 3)
            # Rows written, transaction open, COMMIT not yet run: no ACK, nothing visible.
            with pytest.raises(TimeoutError):
                await relay.receive(wait=0.3)
            assert await r.store.leases() == []
            GatedStore.gate.set()
            ack = await relay.receive()
            assert ack.message_type is MessageType.ACK
            assert [x.ip for x in await r.store.leases()] == [offer.yiaddr]
        finally:
            relay.close()


@pytest.mark.asyncio
async def test_a_lease_commit_that_fails_sends_no_ack_and_serving_goes_on(
    tmp_path: Path, relay_port: int
) -> None:
    async with running(make_config(tmp_path, relay_port), store_type=FailingStore) as r:
        assert isinstance(r.store, FailingStore)
        relay = Relay(r.port)
        try:
            offer = await relay.exchange(relay.request(1, MessageType.DISCOVER, xid=3))
            request = relay.request(1, MessageType.REQUEST, xid=3,
                                    requested_address=offer.yiaddr.packed,
                                    server_identifier=IPv4Address("127.0.0.1").packed)  # fmt: skip
            relay.send(request)
            await until(lambda: r.server.statistics()["commit"]["failed"] == 1, "the failure")
            with pytest.raises(TimeoutError):
                await relay.receive(wait=0.3)
            assert await r.store.leases() == []
            assert r.server.statistics()["sent"] == 1  # the OFFER only
            r.store.failing = False
            ack = await relay.exchange(request)  # the client retransmits
            assert ack.message_type is MessageType.ACK
            assert [x.ip for x in await r.store.leases()] == [offer.yiaddr]
        finally:
            relay.close()


@pytest.mark.asyncio
async def test_relayed_dora_over_loopback_commits_before_the_ack(
    tmp_path: Path, relay_port: int
) -> None:
    errors = _internal_errors()
    async with running(make_config(tmp_path, relay_port)) as r:
        relay = Relay(r.port)
        try:
            offer = await relay.exchange(relay.request(1, MessageType.DISCOVER, xid=7))
            assert offer.message_type is MessageType.OFFER
            assert offer.xid == 7
            assert offer.yiaddr == IPv4Address("198.18.0.100")
            assert offer.get(OptionCode.RELAY_AGENT_INFORMATION) == RELAY_INFO
            assert offer.server_identifier() == IPv4Address("127.0.0.1")
            assert await r.store.leases() == []  # an offer is never written
            request = relay.request(
                1,
                MessageType.REQUEST,
                xid=7,
                requested_address=offer.yiaddr.packed,
                server_identifier=IPv4Address("127.0.0.1").packed,
            )
            ack = await relay.exchange(request)
            assert ack.message_type is MessageType.ACK
            # Durable before acknowledged: the lease is in the database when the ACK arrives.
            leases = await r.store.leases()
            assert [(x.ip, x.mac, x.state) for x in leases] == [
                (offer.yiaddr, "52:54:00:00:00:01", LeaseState.BOUND)
            ]
            changes = await r.store.changes()
            assert any(
                c.kind.value == "lease" and c.object_id == str(offer.yiaddr) for c in changes
            )
            stats = r.server.statistics()
            assert stats["received"] == 2
            assert stats["sent"] == 2
            assert stats["commit"]["committed"] == 1
        finally:
            relay.close()
    assert _internal_errors() == errors


@pytest.mark.asyncio
async def test_malformed_packets_are_counted_and_serving_goes_on(
    tmp_path: Path, relay_port: int
) -> None:
    async with running(make_config(tmp_path, relay_port)) as r:
        relay = Relay(r.port)
        try:
            relay.send(b"\x01" * 100)
            relay.send(os.urandom(300))
            offer = await relay.exchange(relay.request(2, MessageType.DISCOVER))
            assert offer.message_type is MessageType.OFFER
            assert r.server.statistics()["dropped"].get("malformed", 0) >= 1
        finally:
            relay.close()


@pytest.mark.asyncio
async def test_a_burst_beyond_the_queue_is_shed_and_counted(
    tmp_path: Path, relay_port: int
) -> None:
    async with running(make_config(tmp_path, relay_port, queue_size=4)) as r:
        relay = Relay(r.port)
        try:
            for n in range(40):  # sent before the loop runs the server's reader once
                relay.send(relay.request(100 + n, MessageType.DISCOVER, xid=n))
            replies = 0
            with contextlib.suppress(TimeoutError):
                while True:
                    await relay.receive(wait=0.5)
                    replies += 1
            stats = r.server.statistics()
            assert stats["dropped"]["overload"] >= 1
            assert replies + stats["dropped"]["overload"] == 40
        finally:
            relay.close()


@pytest.mark.asyncio
async def test_ended_leases_are_reclaimed_as_changes(tmp_path: Path, relay_port: int) -> None:

    cfg = make_config(tmp_path, relay_port, expire_interval=0.1)
    async with running(cfg) as r:
        old = Lease(ip=IPv4Address("198.18.0.105"), mac="52:54:00:00:00:09",
                    start=time.time() - 100, end=time.time() - 1, subnet="lan")  # fmt: skip
        await r.store.commit_leases([old])
        for _ in range(50):
            await asyncio.sleep(0.05)
            lease = r.app.index.lease_by_ip(old.ip)
            if lease is not None and lease.state is LeaseState.EXPIRED:
                break
        else:
            raise AssertionError("lease not reclaimed")
        sample = metrics.REGISTRY.get_sample_value("ddi_dhcp_pool_addresses", {"subnet": "lan"})
        assert sample == 10


@pytest.mark.asyncio
async def test_pool_gauges_count_leased_quarantined_and_reserved_addresses_once(
    tmp_path: Path, relay_port: int
) -> None:
    cfg = make_config(tmp_path, relay_port, expire_interval=0.1)
    now = time.time()

    def lease(last: int, mac: int, **kw: Any) -> Lease:
        values: dict[str, Any] = {"start": now, "end": now + 3600, "subnet": "lan", **kw}
        return Lease(ip=IPv4Address(f"198.18.0.{last}"), mac=f"52:54:00:00:01:{mac:02x}", **values)

    async with running(cfg) as r:
        await r.store.commit_leases(
            [
                lease(100, 1),  # bound, and reserved below: counted once
                lease(101, 2, state=LeaseState.DECLINED),  # quarantined
                lease(102, 3, start=now - 100, end=now - 1),  # ended: free
                lease(103, 4),  # bound
                lease(50, 5),  # bound, outside the pool
            ]
        )
        # The bound lease's own client reserves its address; another address is reserved free.
        for name, mac, last in (
            ("one", "52:54:00:00:01:01", 100),
            ("two", "52:54:00:00:02:02", 105),
        ):
            host = Host(id="", hostname=name, mac=mac, ip=IPv4Address(f"198.18.0.{last}"))
            await r.store.add_host(host, actor="test", reason="gauges")

        def gauge(name: str) -> float | None:
            return metrics.REGISTRY.get_sample_value(name, {"subnet": "lan"})

        for _ in range(100):
            await asyncio.sleep(0.05)
            if gauge("ddi_dhcp_pool_used_addresses") == 4:  # .100, .101, .103, .105
                break
        else:
            raise AssertionError(f"used: {gauge('ddi_dhcp_pool_used_addresses')}")
        assert gauge("ddi_dhcp_pool_addresses") == 10
        assert gauge("ddi_dhcp_pool_utilisation_ratio") == pytest.approx(0.4)
        states = {
            state: metrics.REGISTRY.get_sample_value("ddi_dhcp_leases", {"state": state.value})
            for state in LeaseState
        }
        assert states[LeaseState.BOUND] == 3
        assert states[LeaseState.DECLINED] == 1
        assert states[LeaseState.EXPIRED] == 1  # the ended one, reclaimed by the sweep


@pytest.mark.asyncio
async def test_unknown_interface_refuses_to_start(tmp_path: Path, relay_port: int) -> None:
    from ddi.errors import ConfigError

    cfg = make_config(tmp_path, relay_port, interfaces=["nosuch0"])
    async with open_site(cfg) as app:
        with pytest.raises(ExceptionGroup) as info:
            async with started(dhcp_server.service(app)):
                pass
        assert info.group_contains(ConfigError)


@pytest.mark.asyncio
async def test_packets_that_waited_too_long_are_dropped_as_stale(
    tmp_path: Path, relay_port: int
) -> None:
    cfg = make_config(tmp_path, relay_port, queue_max_age=0.01, queue_size=10_000)
    async with running(cfg) as r:
        # An engine that takes a millisecond a packet: the queue outlives queue_max_age however
        # fast the real one is (an exhausted pool is answered in microseconds).
        engine_handle = r.server.engine.handle

        def slow_handle(*args: Any) -> Any:
            deadline = time.perf_counter() + 0.001
            while time.perf_counter() < deadline:
                pass
            return engine_handle(*args)

        r.server.engine.handle = slow_handle  # type: ignore[method-assign]
        relay = Relay(r.port)
        try:
            for n in range(400):  # read at once, handled a few per loop iteration
                relay.send(relay.request(1000 + n, MessageType.DISCOVER, xid=n))
            replies = 0
            with contextlib.suppress(TimeoutError):
                while True:
                    await relay.receive(wait=0.5)
                    replies += 1
            dropped = r.server.statistics()["dropped"]
            assert dropped.get("stale", 0) >= 1
            assert replies + sum(dropped.values()) == 400
        finally:
            relay.close()


@pytest.mark.asyncio
async def test_under_overload_a_request_beats_new_discovers(
    tmp_path: Path, relay_port: int
) -> None:
    async with running(make_config(tmp_path, relay_port, queue_size=4)) as r:
        relay = Relay(r.port)
        try:
            offer = await relay.exchange(relay.request(1, MessageType.DISCOVER, xid=1))
            for n in range(40):  # all read before the engine runs: the queue overflows
                relay.send(relay.request(200 + n, MessageType.DISCOVER, xid=100 + n))
            request = relay.request(
                1,
                MessageType.REQUEST,
                xid=1,
                requested_address=offer.yiaddr.packed,
                server_identifier=IPv4Address("127.0.0.1").packed,
            )
            relay.send(request)
            kinds = []
            with contextlib.suppress(TimeoutError):
                while True:
                    kinds.append((await relay.receive(wait=0.5)).message_type)
            # The REQUEST evicted a queued DISCOVER rather than being shed itself.
            assert kinds.count(MessageType.ACK) == 1
            assert kinds.count(MessageType.OFFER) <= 3
            assert r.server.statistics()["dropped"]["overload"] >= 37
        finally:
            relay.close()


@pytest.mark.asyncio
async def test_release_is_committed_without_a_reply_and_reload_takes_effect(
    tmp_path: Path, relay_port: int
) -> None:
    cfg = make_config(tmp_path, relay_port)
    async with running(cfg) as r:
        relay = Relay(r.port)
        try:
            offer = await relay.exchange(relay.request(3, MessageType.DISCOVER))
            server_id = IPv4Address("127.0.0.1").packed
            ack = await relay.exchange(
                relay.request(
                    3,
                    MessageType.REQUEST,
                    requested_address=offer.yiaddr.packed,
                    server_identifier=server_id,
                )
            )
            assert ack.message_type is MessageType.ACK
            release = relay.request(3, MessageType.RELEASE, server_identifier=server_id)
            relay.send(replace(release, ciaddr=ack.yiaddr))
            for _ in range(100):
                await asyncio.sleep(0.02)
                lease = r.app.index.lease_by_ip(ack.yiaddr)
                if lease is not None and lease.state is LeaseState.RELEASED:
                    break
            else:
                raise AssertionError("release not committed")

            new = make_config(tmp_path, relay_port, server_id="198.18.0.1")
            await r.server.reload(new)
            again = await relay.exchange(relay.request(4, MessageType.DISCOVER))
            assert again.server_identifier() == IPv4Address("198.18.0.1")
        finally:
            relay.close()


@pytest.mark.asyncio
async def test_a_flood_of_new_clients_is_limited_per_link_and_known_clients_go_first(
    tmp_path: Path, relay_port: int
) -> None:
    cfg = make_config(tmp_path, relay_port, pool_end="198.18.0.250", link_rate=0.001,
                      link_burst=5, queue_size=10_000)  # fmt: skip
    wave, late = 120, 20
    async with running(cfg) as r:
        known = Lease(ip=IPv4Address("198.18.0.99"), mac="52:54:00:00:00:01",
                      start=time.time(), end=time.time() + 3600, subnet="lan")  # fmt: skip
        await r.store.commit_leases([known])
        slowed(r.server, 0.01)  # 1.2 s for the wave: it is still waiting when the rest comes
        relay = Relay(r.port)
        try:
            for n in range(wave):  # taken in one read: none has waited yet, none is refused
                relay.send(relay.request(300 + n, MessageType.DISCOVER, xid=n))
            await asyncio.sleep(2 * BUSY_WAIT)
            for n in range(late):  # the wave has waited past BUSY_WAIT: backlogged
                relay.send(relay.request(600 + n, MessageType.DISCOVER, xid=1000 + n))
            # An INFORM: answered without a commit, so the order of replies is the order the
            # engine took the packets in.
            relay.send(replace(relay.request(1, MessageType.INFORM, xid=9999), ciaddr=known.ip))
            replies = []
            with contextlib.suppress(TimeoutError):
                while True:
                    replies.append(await relay.receive(wait=1.0))
            xids = [p.xid for p in replies]
            # The bound client went first, ahead of the wave's packets still waiting.
            assert 9999 in xids
            assert any(x < wave for x in xids[xids.index(9999) :])
            # The whole wave was answered; of the late new clients, the link's burst only.
            assert sorted(x for x in xids if x < wave) == list(range(wave))
            assert len([x for x in xids if 1000 <= x < 1000 + late]) == 5
            assert r.server.statistics()["dropped"]["rate-limited-link"] == late - 5
        finally:
            relay.close()


@pytest.mark.asyncio
async def test_a_burst_past_the_queue_depth_the_server_clears_is_not_limited_per_link(
    tmp_path: Path, relay_port: int
) -> None:
    # Twice BUSY_QUEUE at once, with a link rate that would refuse all but one were it
    # charged: the server clears them in milliseconds, so none waited BUSY_WAIT and none is
    # refused (depth alone took the event loop's own pauses for a backlog).
    cfg = make_config(tmp_path, relay_port, pool_end="198.18.0.250", link_rate=0.001,
                      link_burst=1)  # fmt: skip
    burst = 2 * BUSY_QUEUE
    async with running(cfg) as r:
        relay = Relay(r.port)
        try:
            for n in range(burst):
                relay.send(relay.request(300 + n, MessageType.DISCOVER, xid=n))
            replies = []
            with contextlib.suppress(TimeoutError):
                while len(replies) < burst:
                    replies.append(await relay.receive(wait=2.0))
            assert sorted(p.xid for p in replies) == list(range(burst))
            assert "rate-limited-link" not in r.server.statistics()["dropped"]
        finally:
            relay.close()


@pytest.mark.asyncio
async def test_a_boot_storm_the_server_keeps_up_with_is_not_limited_per_link(
    tmp_path: Path, relay_port: int
) -> None:
    # A link rate that would refuse all but one new client, were it charged: below the
    # backlog every new client is answered, whatever the link's bucket holds.
    cfg = make_config(tmp_path, relay_port, pool_end="198.18.0.250", link_rate=0.001,
                      link_burst=1)  # fmt: skip
    storm = BUSY_QUEUE - 4
    async with running(cfg) as r:
        relay = Relay(r.port)
        try:
            for n in range(storm):
                relay.send(relay.request(300 + n, MessageType.DISCOVER, xid=n))
            replies = []
            with contextlib.suppress(TimeoutError):
                while len(replies) < storm:
                    replies.append(await relay.receive(wait=2.0))
            assert sorted(p.xid for p in replies) == list(range(storm))
            assert all(p.message_type is MessageType.OFFER for p in replies)
            assert "rate-limited-link" not in r.server.statistics()["dropped"]
        finally:
            relay.close()


def test_the_default_admission_leaves_a_boot_storm_to_the_servers_capacity() -> None:
    # Defaults a user gets: the per-link bucket (charged only once BUSY_QUEUE packets wait)
    # holds a second of new clients at Kea's measured rate on the bench machine, and a
    # conforming client (RFC 2131 §4.1: retransmissions 4 s apart) never meets its own bucket.
    default = DhcpConfig()
    assert default.link_burst >= 1000
    assert default.link_rate >= 1000
    assert default.client_burst >= 4
    assert default.client_rate >= 0.25
    assert default.queue_size > BUSY_QUEUE


@pytest.mark.asyncio
async def test_one_hardware_address_is_limited_to_its_burst(
    tmp_path: Path, relay_port: int
) -> None:
    async with running(make_config(tmp_path, relay_port, client_rate=0.001)) as r:
        relay = Relay(r.port)
        try:
            for n in range(20):
                relay.send(relay.request(7, MessageType.DISCOVER, xid=n))
            replies = 0
            with contextlib.suppress(TimeoutError):
                while True:
                    await relay.receive(wait=0.5)
                    replies += 1
            assert replies == 8  # dhcp.client_burst
            assert r.server.statistics()["dropped"]["rate-limited-client"] == 12
        finally:
            relay.close()


@pytest.mark.asyncio
async def test_a_reload_changes_the_rate_limits(tmp_path: Path, relay_port: int) -> None:
    async def replies_to(relay: Relay, n: int) -> int:
        for xid in range(n):
            relay.send(relay.request(9, MessageType.DISCOVER, xid=xid))
        got = 0
        with contextlib.suppress(TimeoutError):
            while True:
                await relay.receive(wait=0.5)
                got += 1
        return got

    async with running(make_config(tmp_path, relay_port, client_rate=0)) as r:
        relay = Relay(r.port)
        try:
            assert await replies_to(relay, 20) == 20
            await r.server.reload(make_config(tmp_path, relay_port, client_rate=0.001))
            assert await replies_to(relay, 20) == 8
        finally:
            relay.close()

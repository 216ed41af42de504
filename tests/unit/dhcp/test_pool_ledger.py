"""An exhausted pool is answered without walking it (engine rule 8), the count behind that is
always what a scan would find, and OFFERs are bounded per link (engine rule 2)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ddi.dhcp.decision import DropReason, Reply
from ddi.ipam.allocator import Client, FreeLedger, address_problem
from ddi.ipam.models import Change, Kind, Lease, LeaseState, Op, Pool, Subnet
from ddi.ipam.views import IpamIndex
from tests.unit.dhcp.sim import FAR, LAN, NOW, ClientSim, Harness, dropped, host, reply_of

A = IPv4Address
BIG = Subnet(
    name="big",
    cidr=IPv4Network("10.20.0.0/16"),
    gateway=A("10.20.0.1"),
    lease_time=3600,
    pools=(Pool(start=A("10.20.8.0"), end=A("10.20.15.255")),),  # 2,048 addresses
    interface="eth0",
)


def mac(n: int) -> str:
    return "02:" + ":".join(f"{b:02x}" for b in n.to_bytes(5, "big"))


def full_big_pool() -> tuple[Lease, ...]:
    first = int(BIG.pools[0].start)
    return tuple(
        Lease(ip=A(first + i), mac=mac(i), start=NOW - 60, end=NOW + 3600, subnet="big")
        for i in range(2048)
    )


def test_discover_at_an_exhausted_pool_does_not_walk_it() -> None:
    h = Harness(subnets=(BIG,), leases=full_big_pool())
    looked: list[IPv4Address | int] = []
    lookup, lookup_at = h.index.lease_by_ip, h.index.lease_at

    def counting(ip: IPv4Address) -> Lease | None:
        looked.append(ip)
        return lookup(ip)

    def counting_at(value: int) -> Lease | None:
        looked.append(value)
        return lookup_at(value)

    h.index.lease_by_ip = counting  # type: ignore[method-assign]
    h.index.lease_at = counting_at  # type: ignore[method-assign]
    for n in range(50):
        decision = h.handle(ClientSim(mac=mac(10_000 + n)).discover())
        assert dropped(decision) is DropReason.POOL_EXHAUSTED
    # Before: every DISCOVER looked at all 2,048 addresses.
    assert len(looked) < 50 * 4


def test_an_exhausted_pool_serves_again_when_a_lease_ends_or_is_released() -> None:
    leases = full_big_pool()
    h = Harness(subnets=(BIG,), leases=leases)
    newcomer = ClientSim(mac=mac(99_999))
    assert dropped(h.handle(newcomer.discover())) is DropReason.POOL_EXHAUSTED
    # One lease released (a committed change), one simply ended (time passing).
    h.commit(replace(leases[7], state=LeaseState.RELEASED, end=NOW))
    assert reply_of(h.handle(newcomer.discover())).yiaddr == leases[7].ip
    other = ClientSim(mac=mac(99_998))
    assert dropped(h.handle(other.discover())) is DropReason.POOL_EXHAUSTED
    assert reply_of(h.handle(other.discover(), now=NOW + 3601)).yiaddr != leases[7].ip


def test_offers_are_bounded_per_link() -> None:
    five = replace(LAN, pools=(Pool(start=A("198.18.0.100"), end=A("198.18.0.104")),))
    h = Harness(subnets=(five, FAR), max_offers_per_link=3)
    clients = [ClientSim(mac=mac(n)) for n in range(5)]
    offered = [reply_of(h.handle(c.discover())).yiaddr for c in clients]
    assert len(set(offered)) == 5
    # Only the last three on eth0 are held: the first two addresses are free again.
    assert h.engine.statistics()["offers_outstanding"] == 3
    late = ClientSim(mac=mac(50))
    assert reply_of(h.handle(late.discover())).yiaddr in offered[:2]
    # Another link (a relay) has its own bound.
    relayed = ClientSim(mac=mac(60), giaddr=A("198.18.5.1"))
    assert isinstance(h.handle(relayed.discover()), Reply)
    assert h.engine.statistics()["offers_outstanding"] == 4
    # The client whose offer was forgotten still gets its ACK if the address is free.
    ack = reply_of(h.handle(clients[1].select(reply_of(h.handle(clients[1].discover())))))
    assert ack.yiaddr != A(0)


# --- the count is what a scan would find ------------------------------------------------------

SMALL = replace(
    LAN,
    pools=(
        Pool(start=A("198.18.0.100"), end=A("198.18.0.104")),
        Pool(start=A("198.18.0.1"), end=A("198.18.0.2")),  # holds the gateway
    ),
)
SHRUNK = replace(SMALL, pools=(Pool(start=A("198.18.0.100"), end=A("198.18.0.102")),))
IPS = [A("198.18.0.1"), A("198.18.0.2"), A("198.18.0.100"), A("198.18.0.102"), A("198.18.0.104")]
STATES = [LeaseState.BOUND, LeaseState.DECLINED, LeaseState.RELEASED, LeaseState.EXPIRED]
ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["lease", "host", "unhost", "offer", "unoffer", "subnet", "time"]),
        st.integers(0, len(IPS) - 1),
        st.integers(0, len(STATES) - 1),
        st.integers(0, 100),
    ),
    max_size=40,
)


def scanned_free(
    index: IpamIndex, subnet: Subnet, offered: dict[IPv4Address, str], now: float
) -> int:
    stranger = Client(mac="02:ff:ff:ff:ff:ff", client_id=None)
    first, last = int(subnet.cidr.network_address), int(subnet.cidr.broadcast_address)
    return sum(
        address_problem(A(v), subnet, index, now, client=stranger, offered=offered) is None
        for v in range(first, last + 1)
    )


@settings(max_examples=200, deadline=None)
@given(ACTIONS)
def test_the_ledger_agrees_with_a_scan(script: list[tuple[str, int, int, int]]) -> None:
    index = IpamIndex(subnets=(SMALL,))
    offered: dict[IPv4Address, str] = {}
    ledger = FreeLedger(index, offered, compact_from=2)  # its heap compacted as often as may be
    hosts: dict[IPv4Address, Any] = {}
    seq = 0
    now = NOW

    def apply(kind: Kind, object_id: str, op: Op, image: dict[str, Any]) -> None:
        nonlocal seq
        seq += 1

        index.apply([Change(epoch=1, seq=seq, kind=kind, object_id=object_id, op=op, image=image)])

    for action, at, state, step in script:
        ip = IPS[at]
        match action:
            case "lease":
                lease = Lease(
                    ip=ip, mac=mac(at), state=STATES[state], start=now, end=now + step, subnet="lan"
                )
                apply(Kind.LEASE, str(ip), Op.UPSERT, lease.to_image())
                ledger.touch(ip)
            case "host" if ip not in hosts:
                hosts[ip] = host(ip=str(ip), hostname=f"h{at}", mac=mac(100 + at))
                apply(Kind.HOST, hosts[ip].id, Op.UPSERT, hosts[ip].to_image())
                ledger.touch(ip)
            case "unhost" if ip in hosts:
                gone = hosts.pop(ip)
                apply(Kind.HOST, gone.id, Op.DELETE, gone.to_image())
                ledger.touch(ip)
            case "offer":
                offered[ip] = f"hw:{mac(at)}"
                ledger.touch(ip, "lan")
            case "unoffer":
                offered.pop(ip, None)
                ledger.touch(ip, "lan")
            case "subnet":
                subnet = SHRUNK if state % 2 else SMALL
                apply(Kind.SUBNET, "lan", Op.UPSERT, subnet.to_image())
                ledger.rebuild()
            case "time":
                now += step
        subnet = index.subnet("lan")
        assert subnet is not None
        assert ledger.free(subnet, now) == scanned_free(index, subnet, offered, now)


class CountingIndex(IpamIndex):
    """An index that counts the ledger's walks over every lease."""

    walks = 0

    def leases(self) -> Any:
        self.walks += 1
        return super().leases()


def test_the_ledger_compacts_its_heap_when_entries_are_stale_and_never_walks_for_nothing() -> None:
    index = CountingIndex(subnets=(BIG,))
    ledger = FreeLedger(index, {}, compact_from=16)
    seq = 0

    def commit(lease: Lease) -> None:
        nonlocal seq
        seq += 1
        change = Change(epoch=1, seq=seq, kind=Kind.LEASE, object_id=str(lease.ip),
                        op=Op.UPSERT, image=lease.to_image())  # fmt: skip
        index.apply([change])
        ledger.touch(lease.ip)

    first = int(BIG.pools[0].start)
    fresh = [
        Lease(ip=A(first + i), mac=mac(i), start=NOW, end=NOW + 3600, subnet="big")
        for i in range(500)
    ]
    walks = index.walks
    for lease in fresh:  # new leases: every entry live, nothing to drop
        commit(lease)
    assert index.walks == walks
    assert len(ledger._ends) == 500
    for n in range(2_000):  # one lease renewed over and over: its old ends go stale
        commit(replace(fresh[0], end=NOW + 3600 + n + 1))
    assert index.walks > walks
    assert len(ledger._ends) <= 2 * len(fresh) + 16 + 1
    assert ledger.free(BIG, NOW) == 2048 - 500


def test_the_engine_follows_committed_host_changes() -> None:
    tiny = replace(LAN, pools=(Pool(start=A("198.18.0.100"), end=A("198.18.0.100")),))
    h = Harness(subnets=(tiny,))
    reserved = host(ip="198.18.0.100", hostname="r", mac="52:54:00:00:00:99")
    h.add_host(reserved)
    newcomer = ClientSim(mac=mac(1))
    assert dropped(h.handle(newcomer.discover())) is DropReason.POOL_EXHAUSTED
    h.remove_host(reserved)
    assert reply_of(h.handle(newcomer.discover())).yiaddr == A("198.18.0.100")

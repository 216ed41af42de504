"""``UsageCount`` (every subnet in one pass, fed in chunks) against the per-subnet rule written
out plainly, on random sites: nested subnets, pools reaching past their subnet, hosts and
leases in and out of pools, every lease state, ended leases."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from ddi.ipam.models import Host, Lease, LeaseState, Pool, Subnet
from ddi.ipam.usage import PoolUsage, SubnetUsage, UsageCount, usage_by_subnet

NOW = 1_800_000_000.0
BASE = int(IPv4Address("198.18.0.0"))


def reference(subnet: Subnet, hosts: list[Host], leases: list[Lease], now: float) -> SubnetUsage:
    """The rule of ``ddi.ipam.usage``, one subnet at a time with ``ipaddress``."""
    reserved = {int(h.ip) for h in hosts if h.ip is not None and h.ip in subnet.cidr}
    declined: set[int] = set()
    used: set[int] = set()
    for lease in leases:
        if lease.ip not in subnet.cidr or lease.end <= now:
            continue
        if lease.state is LeaseState.DECLINED:
            declined.add(int(lease.ip))
        elif lease.state is LeaseState.BOUND:
            used.add(int(lease.ip))
    declined -= reserved
    used -= reserved | declined
    pools = []
    for pool in subnet.pools:
        lo, hi = int(pool.start), int(pool.end)
        pools.append(PoolUsage(
            start=str(pool.start), end=str(pool.end), size=hi - lo + 1,
            used=sum(lo <= a <= hi for a in used), reserved=sum(lo <= a <= hi for a in reserved),
            declined=sum(lo <= a <= hi for a in declined),
        ))  # fmt: skip
    return SubnetUsage(name=subnet.name, pools=tuple(pools))


offsets = st.integers(min_value=0, max_value=31)


@st.composite
def subnets(draw: st.DrawFn) -> list[Subnet]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        prefix = draw(st.integers(min_value=26, max_value=30))
        network = IPv4Network((BASE + draw(offsets), prefix), strict=False)
        pools = []
        for _ in range(draw(st.integers(0, 3))):
            lo = draw(st.integers(int(network.network_address) - 4, int(network.broadcast_address)))
            hi = draw(st.integers(lo, lo + 16))
            pools.append(Pool(start=IPv4Address(lo), end=IPv4Address(hi)))
        out.append(Subnet(name=f"s{i}", cidr=network, pools=tuple(pools)))
    return out


hosts_st = st.lists(
    offsets.map(lambda o: Host(id=f"{o:032x}", ip=IPv4Address(BASE + o), hostname=f"h{o}")),
    min_size=2,
    max_size=30,
)
leases_st = st.lists(
    st.builds(
        lambda o, state, end: Lease(
            ip=IPv4Address(BASE + o),
            mac=None,
            state=state,
            start=NOW - 100,
            end=end,
            subnet="s0",
        ),
        offsets,
        st.sampled_from(LeaseState),
        st.sampled_from([NOW - 1, NOW, NOW + 100]),  # ending now: ended
    ),
    min_size=2,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(subnets(), hosts_st, leases_st, st.integers(1, 7))
def test_one_pass_in_chunks_counts_as_the_rule_does(
    sites: list[Subnet], hosts: list[Host], leases: list[Lease], chunk: int
) -> None:
    leases = list({int(lease.ip): lease for lease in leases}.values())  # one per address
    count = UsageCount(sites, NOW)
    for start in range(0, max(len(hosts), len(leases)), chunk):
        count.add_hosts(hosts[start : start + chunk])
        count.add_leases(leases[start : start + chunk])
    expected = [reference(s, hosts, leases, NOW) for s in sites]
    assert count.result() == expected
    assert usage_by_subnet(sites, hosts, leases, NOW) == expected

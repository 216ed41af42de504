"""The integer-keyed index and pool scan answer exactly as the ``IPv4Address``-keyed ones did
(``old_index``), for random committed changes and random questions."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ddi.ipam.allocator import Client, address_problem, next_free
from ddi.ipam.models import Change, Host, Kind, Lease, LeaseState, Op, Pool, Record, Subnet
from ddi.ipam.rows import parse_address
from ddi.ipam.views import IpamIndex
from tests.unit.ipam.old_index import OldIpamIndex, old_next_free, old_taken

A = IPv4Address
NOW = 1_800_000_000.0
LAN = Subnet(
    name="lan",
    cidr=IPv4Network("198.18.0.0/28"),
    gateway=A("198.18.0.1"),
    pools=(Pool(start=A("198.18.0.1"), end=A("198.18.0.6")),),
)
IPS = [A("198.18.0.1"), A("198.18.0.2"), A("198.18.0.3"), A("198.18.0.5"), A("198.18.0.6")]
MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03", None]
CLIENT_IDS = [None, "01:02:00:00:00:00:01", "ff:00:01"]
NAMES = [None, "web1", "Web1", "db"]
STATES = list(LeaseState)

OPS = st.lists(
    st.tuples(
        st.sampled_from(["lease", "unlease", "host", "unhost", "record", "unrecord"]),
        st.integers(0, len(IPS) - 1),
        st.integers(0, len(MACS) - 1),
        st.integers(0, len(CLIENT_IDS) - 1),
        st.integers(0, len(NAMES) - 1),
        st.integers(0, len(STATES) - 1),
        st.integers(-100, 100),
    ),
    max_size=30,
)


def _changes(script: list[tuple[str, int, int, int, int, int, int]]) -> list[Change]:
    changes: list[Change] = []

    def add(kind: Kind, object_id: str, op: Op, image: dict[str, Any]) -> None:
        changes.append(
            Change(
                epoch=1, seq=len(changes) + 1, kind=kind, object_id=object_id, op=op, image=image
            )
        )

    hosts: dict[str, Host] = {}
    for action, at, m, c, n, state, step in script:
        ip, mac, client_id, name = IPS[at], MACS[m], CLIENT_IDS[c], NAMES[n]
        match action:
            case "lease":
                lease = Lease(
                    ip=ip, mac=mac, client_id=client_id, hostname=name, state=STATES[state],
                    start=NOW - 10, end=NOW + step, subnet="lan",
                )  # fmt: skip
                add(Kind.LEASE, str(ip), Op.UPSERT, lease.to_image())
            case "unlease":
                add(Kind.LEASE, str(ip), Op.DELETE, {})
            case "host":
                host = Host(id=f"h{at}{m}", ip=ip, hostname=name or f"h{at}", mac=mac or MACS[0],
                            client_id=client_id)  # fmt: skip
                hosts[host.id] = host
                add(Kind.HOST, host.id, Op.UPSERT, host.to_image())
            case "unhost" if hosts:
                gone = hosts.pop(sorted(hosts)[at % len(hosts)])
                add(Kind.HOST, gone.id, Op.DELETE, gone.to_image())
            case "record":
                record = Record(id=f"r{at}{n}", name=f"{name or 'x'}.site.example", rtype="A",
                                value=str(ip))  # fmt: skip
                add(Kind.RECORD, record.id, Op.UPSERT, record.to_image())
            case "unrecord":
                add(Kind.RECORD, f"r{at}{n}", Op.DELETE, {})
    return changes


@settings(max_examples=300, deadline=None)
@given(OPS, st.integers(-100, 100))
def test_the_integer_index_answers_like_the_old_one(
    script: list[tuple[str, int, int, int, int, int, int]], step: int
) -> None:
    new = IpamIndex(subnets=[LAN], domain="site.example")
    old = OldIpamIndex(subnets=[LAN], domain="site.example")
    for change in _changes(script):
        new.apply([change])
        old.apply([change])
    every = [A(v) for v in range(int(LAN.cidr.network_address), int(LAN.cidr.broadcast_address))]
    for ip in every:
        assert new.lease_by_ip(ip) == old.lease_by_ip(ip)
        assert new.lease_at(int(ip)) == old.lease_by_ip(ip)
        assert new.host_by_ip(ip) == old.host_by_ip(ip)
        assert new.host_at(int(ip)) == old.host_by_ip(ip)
    for mac in MACS:
        assert new.host_by_mac(mac or "") == old.host_by_mac(mac or "")
        for client_id in CLIENT_IDS:
            assert new.lease_by_client(mac, client_id) == old.lease_by_client(mac, client_id)
    for name in NAMES:
        label = name or "x"
        assert new.host_by_name(label) == old.host_by_name(label)
        assert new.leases_named(label) == old.leases_named(label)
        assert new.name_owned(label) == old.name_owned(label)
        assert new.name_owned(f"{label}.site.example") == old.name_owned(f"{label}.site.example")
        assert list(new.records_at(f"{label}.site.example")) == list(
            old.records_at(f"{label}.site.example")
        )
    assert sorted(new.leases(), key=repr) == sorted(old.leases(), key=repr)
    assert sorted(new.hosts(), key=repr) == sorted(old.hosts(), key=repr)
    # The pool scan: the same address, the same reason, for every client and start.
    now = NOW + step
    offered = {IPS[1]: "hw:02:00:00:00:00:09"}
    for mac in MACS:
        for client_id in CLIENT_IDS:
            client = Client(mac=mac, client_id=client_id)
            for start in (None, *IPS):
                kwargs: dict[str, Any] = {"client": client, "offered": offered, "start": start}
                assert next_free(LAN, new, now, **kwargs) == old_next_free(LAN, old, now, **kwargs)
            for ip in IPS[1:]:
                want = old_taken(ip, old, now, client, offered)
                assert address_problem(ip, LAN, new, now, client=client, offered=offered) == want


@given(st.integers(0, 2**32 - 1))
def test_a_stored_address_parses_to_the_address_that_wrote_it(value: int) -> None:
    assert parse_address(str(A(value))) == A(value)


@given(st.text(alphabet="0123456789.+- x\u0663", max_size=18))
def test_text_that_is_no_canonical_dotted_quad_parses_as_ipaddress_would(text: str) -> None:
    try:
        want: A | str = A(text)
    except ValueError as exc:
        want = str(exc)
    try:
        got: A | str = parse_address(text)
    except ValueError as exc:
        got = str(exc)
    assert got == want

"""The allocator on its own: identity rules, the wrapping scan, pool usage."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from ddi.ipam.allocator import Client, Problem, address_problem, next_free
from ddi.ipam.models import Host, Lease, Pool, Subnet
from ddi.ipam.views import IpamIndex

A = IPv4Address
NOW = 1_800_000_000.0
NET = Subnet(
    name="lan",
    cidr=IPv4Network("198.18.0.0/24"),
    pools=(
        Pool(start=A("198.18.0.200"), end=A("198.18.0.201")),
        Pool(start=A("198.18.0.10"), end=A("198.18.0.11")),
    ),
)


def lease(ip: str, *, mac: str | None = None, client_id: str | None = None) -> Lease:
    return Lease(ip=A(ip), mac=mac, client_id=client_id, start=NOW, end=NOW + 60, subnet="lan")


def test_client_id_decides_when_both_sides_have_one() -> None:
    client = Client(mac="52:54:00:00:00:01", client_id="01:02")
    assert client.owns(lease("198.18.0.10", mac="52:54:00:00:00:09", client_id="01:02"))
    assert not client.owns(lease("198.18.0.10", mac="52:54:00:00:00:01", client_id="01:03"))
    assert client.owns(lease("198.18.0.10", mac="52:54:00:00:00:01"))
    host = Host(id="h", ip=A("198.18.0.5"), hostname="h", mac="52:54:00:00:00:01", client_id="09")
    assert not client.is_host(host)
    assert Client(mac=None, client_id="09").is_host(host)
    assert Client(mac=None, client_id=None).key == "hw:None"


def test_address_problems() -> None:
    index = IpamIndex(subnets=(NET,), leases=(lease("198.18.0.11", mac="52:54:00:00:00:09"),))
    me = Client(mac="52:54:00:00:00:01", client_id=None)
    assert address_problem(A("10.0.0.1"), NET, index, NOW, client=me, offered={}) is (
        Problem.OUTSIDE_SUBNET
    )
    assert address_problem(A("198.18.0.50"), NET, index, NOW, client=me, offered={}) is (
        Problem.NOT_IN_POOL
    )
    assert address_problem(A("198.18.0.11"), NET, index, NOW, client=me, offered={}) is (
        Problem.LEASED
    )
    assert address_problem(A("198.18.0.10"), NET, index, NOW, client=me, offered={}) is None


def test_scan_wraps_through_pools_in_address_order() -> None:
    index = IpamIndex(subnets=(NET,))
    me = Client(mac="52:54:00:00:00:01", client_id=None)
    assert next_free(NET, index, NOW, client=me, offered={}) == A("198.18.0.10")
    assert next_free(NET, index, NOW, client=me, offered={}, start=A("198.18.0.201")) == A(
        "198.18.0.201"
    )
    taken = {A("198.18.0.201"): "other"}
    assert next_free(NET, index, NOW, client=me, offered=taken, start=A("198.18.0.201")) == A(
        "198.18.0.10"
    )
    everything = {ip: "other" for ip in map(A, ["198.18.0.10", "198.18.0.11", "198.18.0.200"])}
    everything[A("198.18.0.201")] = "other"
    assert next_free(NET, index, NOW, client=me, offered=everything) is None
    assert next_free(replace(NET, pools=()), index, NOW, client=me, offered={}) is None

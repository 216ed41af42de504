"""Per-host DHCP options in the store: validation naming the field, the change log and the
index, and the schema migration that adds them to an existing database."""

from __future__ import annotations

import sqlite3
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from ddi.errors import Invalid
from ddi.ipam import schema
from ddi.ipam.models import Host, HostDhcpOptions, Route
from ddi.ipam.store import Store
from ddi.ipam.validate import parse_host_dhcp
from tests.unit.ipam.conftest import DOMAIN, LAB, LAN

MAC1 = "52:54:00:00:00:01"
OPTIONS = HostDhcpOptions(
    lease_time=600,
    gateway=IPv4Address("198.18.0.254"),
    dns_servers=(IPv4Address("198.18.0.53"),),
    domain="lab.site.example",
    mtu=9000,
    routes=(Route(destination=IPv4Network("10.0.0.0/8"), gateway=IPv4Address("198.18.0.3")),),
    ntp_servers=(IPv4Address("198.18.0.123"),),
)


def web1(**fields: Any) -> Host:
    return Host(id="", ip=IPv4Address("198.18.0.10"), hostname="web1", mac=MAC1, **fields)


def test_image_round_trips_and_old_images_have_no_options() -> None:
    host = web1(dhcp=OPTIONS)
    assert Host.from_image(host.to_image()) == host
    assert HostDhcpOptions.from_image(OPTIONS.to_image()) == OPTIONS
    old = web1().to_image()
    del old["dhcp"]
    assert Host.from_image(old) == web1()
    assert web1(dhcp=HostDhcpOptions()).dhcp is None
    assert Host.from_image(web1().to_image()) == web1()
    assert HostDhcpOptions(lease_time=60).to_image() == {"lease_time": 60}


@pytest.mark.asyncio
async def test_options_are_stored_logged_and_read_back(store: Store) -> None:
    change = await store.add_host(web1(dhcp=OPTIONS), actor="op", reason="")
    assert change.image["dhcp"]["mtu"] == 9000
    assert (await store.find_host("web1")).dhcp == OPTIONS
    assert Host.from_image((await store.changes())[-1].image).dhcp == OPTIONS


@pytest.mark.asyncio
async def test_update_sets_and_clears_single_options(store: Store) -> None:
    await store.add_host(web1(dhcp=OPTIONS), actor="op", reason="")
    await store.update_host("web1", {"dhcp": {"mtu": 1400, "domain": None}}, actor="op", reason="")
    found = await store.find_host("web1")
    assert found.dhcp is not None
    assert (found.dhcp.mtu, found.dhcp.domain, found.dhcp.lease_time) == (1400, None, 600)
    await store.update_host("web1", {"dhcp": None}, actor="op", reason="")
    assert (await store.find_host("web1")).dhcp is None


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"lease_time": 10}, "lease_time"),
        ({"lease_time": "soon"}, "lease_time"),
        ({"lease_time": 400 * 86400}, "lease_time"),
        ({"mtu": 67}, "mtu"),
        ({"mtu": 65536}, "mtu"),
        ({"gateway": "198.18.1.1"}, "gateway"),
        ({"gateway": "198.18.0.255"}, "gateway"),
        ({"gateway": "nope"}, "gateway"),
        ({"dns_servers": ["198.18.0.1", "x"]}, "dns_servers"),
        ({"dns_servers": "198.18.0.1"}, "dns_servers"),
        ({"ntp_servers": ["1.2.3"]}, "ntp_servers"),
        ({"domain": "bad..name"}, "domain"),
        ({"routes": ["10.0.0.1/8=198.18.0.3"]}, "routes"),
        ({"routes": ["10.0.0.0/8"]}, "routes"),
        ({"routes": ["10.0.0.0/8=198.18.1.3"]}, "routes"),
        ({"routes": ["10.0.0.0/8=198.18.0.3", "10.0.0.0/8=198.18.0.4"]}, "routes"),
        ({"routes": [{"destination": "10.0.0.0/8"}]}, "routes"),
        ({"colour": "red"}, "colour"),
    ],
)
@pytest.mark.asyncio
async def test_bad_options_are_refused_naming_the_field(
    store: Store, options: dict[str, Any], field: str
) -> None:
    await store.add_host(web1(), actor="op", reason="")
    before = await store.changes()
    with pytest.raises(Invalid) as info:
        await store.update_host("web1", {"dhcp": options}, actor="op", reason="")
    assert info.value.field == field
    assert await store.changes() == before
    assert (await store.find_host("web1")).dhcp is None


@pytest.mark.asyncio
async def test_add_refuses_a_router_outside_the_hosts_subnet(store: Store) -> None:
    host = web1(dhcp=HostDhcpOptions(gateway=IPv4Address("198.18.1.1")))
    with pytest.raises(Invalid) as info:
        await store.add_host(host, actor="op", reason="")
    assert info.value.field == "gateway"
    assert await store.hosts() == []


def test_parse_accepts_the_cli_route_form_and_text_numbers() -> None:
    options = parse_host_dhcp(
        {"routes": ["10.0.0.0/8 = 198.18.0.3"], "lease_time": "600", "dns_servers": []}
    )
    assert options == HostDhcpOptions(
        lease_time=600,
        routes=(Route(destination=IPv4Network("10.0.0.0/8"), gateway=IPv4Address("198.18.0.3")),),
    )
    assert parse_host_dhcp({}) is None


def _v1_database(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript(schema.MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
        db.execute(
            "INSERT INTO host (id, ip, hostname, mac, owner, version)"
            " VALUES ('a1', '198.18.0.10', 'web1', ?, 'edge', 3)",
            (MAC1,),
        )
    finally:
        db.close()


@pytest.mark.asyncio
async def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _v1_database(path)
    async with await Store.open(path, domain=DOMAIN) as store:
        await store.sync_subnets([LAN, LAB], actor="config", reason="start")
        [host] = await store.hosts()
        assert (host.id, host.version, host.dhcp) == ("a1", 3, None)
        await store.update_host("a1", {"dhcp": {"mtu": "1400"}}, actor="op", reason="")
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION == 3
        assert db.execute("SELECT dhcp FROM host").fetchone()[0] == '{"mtu": 1400}'
    finally:
        db.close()
    async with await Store.open(path, domain=DOMAIN) as store:
        found = await store.find_host("web1")
        assert found.dhcp == HostDhcpOptions(mtu=1400)
        assert found.version == 4

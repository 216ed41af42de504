"""The admin API's DHCPv6 reads in process: ``/v1/leases6`` over committed leases and
``/v1/boot/explain6`` over the boot profiles and a reservation found by DUID or MAC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ddi.api import build_app
from ddi.app import App
from ddi.config import load_config
from ddi.ipam.models import Host, LeaseState
from ddi.ipam.models6 import Lease6, Lease6Kind
from ddi.site import open_site

SITE = """\
[site]
id = "api6"
domain = "site.example"
data_dir = "data"

[api]
socket = "ddi.sock"

[dhcp]
enabled = false

[boot]
http_enabled = true
http_port = 8080

[boot.profiles.uefi]
efi_bc = "ipxe.efi"
http_x86_64 = "boot/ipxe.efi"

[[subnets6]]
name = "lan6"
cidr = "2001:db8:10::/64"
pools = [{ start = "2001:db8:10::1000", end = "2001:db8:10::10ff" }]
boot = "uefi"
"""

DUID = "00:02:00:00:7e:d9:61:62:63"
NOW = 1_700_000_000.0

Client = TestClient[web.Request, web.Application]


@pytest_asyncio.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    path = tmp_path / "site.toml"
    path.write_text(SITE)
    async with open_site(load_config(path), store_path=tmp_path / "ddi.sqlite") as site:
        await site.store.add_host(
            Host(id="", hostname="pxe6", ip6=IPv6Address("2001:db8:10::21"), duid=DUID),
            actor="test",
            reason="test",
        )
        leases = [
            Lease6(kind=Lease6Kind.NA, prefix=IPv6Network("2001:db8:10::1001/128"), duid=DUID,
                   iaid=1, start=NOW, end=NOW + 60, preferred_end=NOW + 30, subnet="lan6"),
            Lease6(kind=Lease6Kind.PD, prefix=IPv6Network("2001:db8:100::/56"), duid=DUID,
                   iaid=2, state=LeaseState.RELEASED, start=NOW, end=NOW, preferred_end=NOW,
                   subnet="lan6"),
        ]  # fmt: skip
        await site.store.commit_leases6(leases)
        async with TestClient(TestServer(build_app(App(site)))) as test_client:
            yield test_client


async def get(test_client: Client, path: str, **params: str) -> tuple[int, Any]:
    async with test_client.get(path, params=params) as response:
        return response.status, await response.json()


@pytest.mark.asyncio
async def test_leases6_lists_and_filters(client: Client) -> None:
    status, body = await get(client, "/v1/leases6")
    assert status == 200
    assert [(x["kind"], x["prefix"]) for x in body["leases"]] == [
        ("na", "2001:db8:10::1001/128"),
        ("pd", "2001:db8:100::/56"),
    ]
    status, body = await get(client, "/v1/leases6", state="bound")
    assert [x["prefix"] for x in body["leases"]] == ["2001:db8:10::1001/128"]
    status, body = await get(client, "/v1/leases6", subnet="nope")
    assert status == 404
    status, body = await get(client, "/v1/leases6", state="gone")
    assert status == 400


@pytest.mark.asyncio
async def test_explain6_by_duid_finds_the_host_and_the_subnet_profile(client: Client) -> None:
    status, body = await get(client, "/v1/boot/explain6", client=DUID, arch="16")
    assert status == 200
    assert body["host"]["hostname"] == "pxe6"
    assert body["subnet"] == "lan6"
    assert (body["rule"], body["profile"], body["profile_source"]) == (
        "http-url",
        "uefi",
        "subnet",
    )
    # No interface on the subnet: the server's address stays a template field.
    assert body["url"] == "http://{server}:8080/boot/ipxe.efi"
    assert {o["code"] for o in body["options"]} == {16, 59}
    status, body = await get(client, "/v1/boot/explain6", client="52:54:00:00:00:99", arch="7")
    assert body["host"] is None
    assert body["rule"] == "arch-file"
    assert body["url"] == "tftp://{server}/ipxe.efi"


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", ["", "zz:zz:zz:zz:zz:zz", "52:54", "0" * 400])
async def test_explain6_refuses_what_is_no_mac_or_duid(client: Client, bad: str) -> None:
    status, body = await get(client, "/v1/boot/explain6", client=bad)
    assert status == 400
    assert body["field"] == "v6"

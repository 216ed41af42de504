"""Every place that turns untrusted text into a number refuses what is not ASCII digits:
``"²".isdigit()`` is true and ``int("²")`` raises; ``int("٣")`` is 3. Each case used to raise
(a 500, a crashed config load) or accept a non-ASCII number."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ddi.api import build_app
from ddi.app import App
from ddi.config.table import endpoint
from ddi.dns.zones import _ip_of_reverse
from ddi.errors import ConfigError, Invalid
from ddi.ipam.validate import parse_record_value
from ddi.site import open_site
from tests.unit.api.test_api import HOST, write_config

NOT_ASCII = ["²", "٣", "1²", "٥٣"]


@pytest.mark.parametrize("port", NOT_ASCII)
def test_a_config_port_must_be_ascii_digits(port: str) -> None:
    with pytest.raises(ConfigError, match="is not a port number"):
        endpoint("dns.listen", f"198.18.0.1:{port}", 53)


@pytest.mark.parametrize("port", NOT_ASCII)
def test_a_record_port_must_be_ascii_digits(port: str) -> None:
    with pytest.raises(Invalid, match="must be an integer from 0 to 65535"):
        parse_record_value("SRV", f"0 0 {port} web.site.example.")


@pytest.mark.parametrize("octet", NOT_ASCII)
def test_a_reverse_name_with_a_non_ascii_octet_names_no_address(octet: str) -> None:
    assert _ip_of_reverse(f"{octet}.0.18.198.in-addr.arpa") is None
    assert str(_ip_of_reverse("5.0.18.198.in-addr.arpa")) == "198.18.0.5"


@pytest_asyncio.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    config = write_config(tmp_path)
    async with (
        open_site(config, store_path=tmp_path / "ddi.sqlite") as site,
        TestClient(TestServer(build_app(App(site)))) as test_client,
    ):
        yield test_client


@pytest.mark.asyncio
@pytest.mark.parametrize("value", NOT_ASCII)
async def test_api_boot_explain_refuses_a_non_ascii_arch(
    client: TestClient[web.Request, web.Application], value: str
) -> None:
    response = await client.get("/v1/boot/explain", params={"mac": HOST["mac"], "arch": value})
    assert response.status == 400
    assert (await response.json())["field"] == "arch"


@pytest.mark.asyncio
@pytest.mark.parametrize("value", NOT_ASCII)
async def test_api_conflict_resolve_refuses_a_non_ascii_id(
    client: TestClient[web.Request, web.Application], value: str
) -> None:
    response = await client.post(
        f"/v1/sync/conflicts/{value}/resolve",
        json={"keep": "edge", "actor": "t", "reason": "t"},
    )
    assert response.status == 400
    assert (await response.json())["field"] == "id"

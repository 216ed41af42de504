"""The admin API against hostile requests: each is a 4xx, never a 500 or an internal error."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from ddi.api import build_app
from ddi.api.common import MAX_DEPTH
from ddi.app import App
from ddi.site import open_site
from tests.unit.api.test_api import write_config

TOKEN = "t0k"


def internal_errors() -> float:
    return REGISTRY.get_sample_value("ddi_internal_errors_total", {"area": "api"}) or 0.0


@pytest_asyncio.fixture
async def gated(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    config = write_config(tmp_path)
    async with (
        open_site(config, store_path=tmp_path / "ddi.sqlite") as site,
        TestClient(TestServer(build_app(App(site), token=TOKEN))) as client,
    ):
        yield client


async def raw_request(client: TestClient[web.Request, web.Application], head: bytes) -> bytes:
    """Send ``head`` as it is (no client library re-encodes it); the status line back."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(head)
        await writer.drain()
        return await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "value",
    [b"Bearer \xff\xfe", b"\xc3\x28", b"Bearer t0k\x80", "Bearer \u00e9".encode()],
)
async def test_a_non_utf8_authorization_header_is_401(
    gated: TestClient[web.Request, web.Application], value: bytes
) -> None:
    before = internal_errors()
    head = b"GET /v1/hosts HTTP/1.1\r\nHost: x\r\nAuthorization: " + value
    status = await raw_request(gated, head + b"\r\nConnection: close\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 401 "), status
    assert internal_errors() == before
    ok = await raw_request(
        gated, b"GET /v1/hosts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0k\r\n\r\n"
    )
    assert ok.startswith(b"HTTP/1.1 200 "), ok


async def post(
    client: TestClient[web.Request, web.Application], body: bytes | io.BytesIO
) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with client.post("/v1/hosts", data=body, headers=headers) as response:
        return response.status, await response.json()


@pytest.mark.asyncio
@pytest.mark.parametrize("depth", [100_000, 2_000, MAX_DEPTH])
async def test_deeply_nested_json_is_400(
    gated: TestClient[web.Request, web.Application], depth: int
) -> None:
    before = internal_errors()
    # {"mac": [[[...]]]}: MAX_DEPTH lists inside the object are one level too deep.
    body = b'{"mac": ' + b"[" * depth + b"]" * depth + b"}"
    status, answer = await post(gated, body)
    assert status == 400, answer
    assert answer["error"] == "bad_request"
    assert answer["message"] == f"body nests deeper than {MAX_DEPTH} levels"
    assert internal_errors() == before


@pytest.mark.asyncio
async def test_nesting_within_the_cap_is_read(
    gated: TestClient[web.Request, web.Application],
) -> None:
    depth = MAX_DEPTH - 1
    status, answer = await post(gated, b'{"ip": ' + b"[" * depth + b"]" * depth + b"}")
    assert status == 400
    assert answer["field"] == "ip"  # read, then refused for what it is, not for its depth


@pytest.mark.asyncio
async def test_a_body_over_the_cap_is_413(
    gated: TestClient[web.Request, web.Application],
) -> None:
    before = internal_errors()
    big = json.dumps({"reason": "x" * (1024 * 1024)}).encode()
    status, answer = await post(gated, io.BytesIO(big))
    assert status == 413, answer
    assert internal_errors() == before


@pytest.mark.asyncio
async def test_a_long_number_in_the_query_is_400(
    gated: TestClient[web.Request, web.Application],
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for value in ("9" * 5000, "\u00b2"):
        async with gated.get("/v1/changes", params={"after": value}, headers=headers) as r:
            assert r.status == 400, await r.text()

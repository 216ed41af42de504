"""Admin API host writes: a PATCH that changes nothing, and who the change log says wrote."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ddi.api import build_app
from ddi.app import AppContext
from ddi.config import load_config
from ddi.ipam.store import Store
from ddi.ipam.views import IpamIndex

SITE = """\
[site]
id = "apitest"
domain = "site.example"
data_dir = "data"

[api]
socket = "ddi.sock"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"

[dhcp]
enabled = false
"""
HOST = {"mac": "52:54:00:00:02:01", "ip": "198.18.0.20", "hostname": "web1"}
Client = TestClient[web.Request, web.Application]


@pytest_asyncio.fixture
async def context(tmp_path: Path) -> AsyncIterator[AppContext]:
    (tmp_path / "site.toml").write_text(SITE)
    config = load_config(tmp_path / "site.toml")
    store = await Store.open(tmp_path / "ddi.sqlite")
    await store.sync_subnets(config.subnets, actor="config", reason="test")
    index = await IpamIndex.load(store)
    store.subscribe(index.apply)
    yield AppContext(config=config, store=store, index=index)
    await store.close()


@pytest_asyncio.fixture
async def client(context: AppContext) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(context))) as test_client:
        yield test_client


async def call(client: Client, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body)
    async with client.request(method, path, data=data) as response:
        return response.status, await response.json()


@pytest.mark.asyncio
async def test_patch_with_nothing_changing_answers_change_null(
    client: Client, context: AppContext
) -> None:
    status, _ = await call(client, "POST", "/v1/hosts", HOST)
    assert status == 201
    seq = await context.store.last_seq()
    fields = {"hostname": "web1", "mac": "52:54:00:00:02:01", "boot": None, "dhcp": None}
    status, body = await call(client, "PATCH", "/v1/hosts/web1", {"fields": fields})
    assert status == 200
    assert body["change"] is None
    assert body["host"]["version"] == 1
    assert body["dry_run"] is False
    assert await context.store.last_seq() == seq
    status, body = await call(client, "PATCH", "/v1/hosts/web1", {"fields": {"boot_file": "x"}})
    assert status == 200
    assert body["change"]["image"]["version"] == 2

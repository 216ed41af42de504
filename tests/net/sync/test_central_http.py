"""The collector's HTTP surface on loopback: who may read what."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from central.app import build_app
from central.store import open_store
from ddi import metrics as edge_metrics
from sync import protocol

SITE_KEY = protocol.generate_key()
OTHER_KEY = protocol.generate_key()
CENTRAL_KEY = protocol.generate_key()


@pytest_asyncio.fixture
async def central(tmp_path: Path) -> AsyncIterator[str]:
    store = await open_store(f"sqlite://{tmp_path}/c.sqlite")
    await store.add_site("s1", protocol.public_key_raw(SITE_KEY.public_key()))
    await store.add_site("s2", protocol.public_key_raw(OTHER_KEY.public_key()))
    app = build_app(store, CENTRAL_KEY, max_body=1 << 20, read_token="sesame")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await store.close()


async def get(url: str, path: str, **headers: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(url + path, headers=headers) as r:
        return r.status, await r.json(content_type=None)


def signed(path: str, key: Any = SITE_KEY, site: str = "s1", now: float | None = None) -> str:
    return protocol.sign_request(site=site, method="GET", path=path,
                                 now=time.time() if now is None else now, key=key)  # fmt: skip


@pytest.mark.asyncio
async def test_down_log_is_served_signed_to_its_site_only(central: str) -> None:
    path = "/v1/sites/s1/down?after=0&limit=10"
    status, body = await get(central, path, **{protocol.AUTH_HEADER: signed(path)})
    assert status == 200
    data = protocol.canonical(body)
    opened = protocol.open_envelope(data, type_=protocol.DOWN_TYPE, site="s1",
                                    public_key=CENTRAL_KEY.public_key())  # fmt: skip
    assert opened == {"after": 0, "entries": []}
    cases = {
        "bad_signature": {},
        "wrong_site": {protocol.AUTH_HEADER: signed(path, OTHER_KEY, "s2")},
        "stale": {protocol.AUTH_HEADER: signed(path, now=time.time() - 3600)},
    }
    for reason, headers in cases.items():
        status, body = await get(central, path, **headers)
        assert (status, body["reason"]) == (403, reason)
    forged = {protocol.AUTH_HEADER: signed(path, OTHER_KEY)}
    status, body = await get(central, path, **forged)
    assert (status, body["reason"]) == (403, "bad_signature")
    status, body = await get(central, "/v1/sites", Authorization="Bearer sesame")
    assert status == 200
    s1 = next(s for s in body["sites"] if s["site"] == "s1")
    assert s1["refused"] == {"bad_signature": 2, "wrong_site": 1, "stale": 1}


@pytest.mark.asyncio
async def test_feed_and_objects_need_the_read_token(central: str) -> None:
    for path in ("/v1/changes?after=0", "/v1/sites", "/v1/sites/s1/hosts", "/v1/conflicts",
                 "/v1/sites/s1/changes", "/v1/sites/s1"):  # fmt: skip
        status, _ = await get(central, path)
        assert status == 401, path
        status, _ = await get(central, path, Authorization="Bearer wrong")
        assert status == 401, path
        status, _ = await get(central, path, Authorization="Bearer sesame")
        assert status == 200, path
    cursor = "/v1/sites/s1"
    status, body = await get(central, cursor, **{protocol.AUTH_HEADER: signed(cursor)})
    assert (status, body["applied_seq"]) == (200, 0)
    status, body = await get(central, "/v1/changes?after=x", Authorization="Bearer sesame")
    assert status == 400


@pytest.mark.asyncio
async def test_metrics_are_centrals_own(central: str) -> None:
    # The edge's metrics are registered in this process (the default registry): central's
    # /metrics must not render them, or edge alerts (link down) fire on central.
    assert edge_metrics.REGISTRY.get_sample_value("ddi_sync_link_up") is not None
    await get(central, "/v1/sites/nosuch/down")
    async with aiohttp.ClientSession() as s, s.get(central + "/metrics") as r:
        assert r.status == 200
        text = await r.text()
    names = {line.split("{")[0].split()[0] for line in text.splitlines() if line[:1] != "#"}
    assert "ddi_sync_central_entries_applied_total" in names
    assert "ddi_sync_central_refused_total" in names
    assert "process_resident_memory_bytes" in names
    assert "ddi_sync_link_up" not in names
    assert not {n for n in names if n.startswith("ddi_") and not n.startswith("ddi_sync_central")}

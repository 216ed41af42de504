"""The admin API in process: a real store and index behind ``build_app``, the error middleware's
mapping, the token gate, ``reload`` and ``serve`` with an injected shutdown."""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from ddi.api import build_app
from ddi.api import status as status_api
from ddi.app import App, _close_services, reload, serve
from ddi.cli.client import ApiClient, Unreachable
from ddi.config import Config, load_config
from ddi.ipam.models import Host, Lease
from ddi.site import open_site
from ddi.steps import count_usage

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

[boot.profiles.pxe]
bios = "undionly.kpxe"

[dhcp]
enabled = false
"""

HOST = {"mac": "52:54:00:00:02:01", "ip": "198.18.0.20", "hostname": "web1"}


@dataclass
class FakeService:
    """A ``ddi.site.Service`` whose statistics and reload the test chooses."""

    name: str
    snapshot: Callable[[], Mapping[str, Any]] = dict
    on_reload: Callable[[Config], Awaitable[None]] | None = None
    on_close: Callable[[str], None] | None = None

    async def start(self, tg: asyncio.TaskGroup) -> None:
        pass

    async def close(self) -> None:
        if self.on_close is not None:
            self.on_close(self.name)

    async def reload(self, config: Config) -> None:
        if self.on_reload is not None:
            await self.on_reload(config)

    def statistics(self) -> Mapping[str, Any]:
        return self.snapshot()


def write_config(tmp_path: Path, text: str = SITE) -> Config:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return load_config(path)


@pytest_asyncio.fixture
async def context(tmp_path: Path) -> AsyncIterator[App]:
    config = write_config(tmp_path)
    async with open_site(config, store_path=tmp_path / "ddi.sqlite") as site:
        yield App(site)


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@pytest_asyncio.fixture
async def client(context: App) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = build_app(context)
    app.router.add_get("/test/boom", _boom)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def call(
    client: TestClient[web.Request, web.Application],
    method: str,
    path: str,
    body: Any = None,
    **kw: Any,
) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
    async with client.request(method, path, data=data, **kw) as response:
        return response.status, await response.json()


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.asyncio
async def test_add_list_show(client: TestClient[web.Request, web.Application]) -> None:
    status, body = await call(client, "POST", "/v1/hosts", {**HOST, "actor": "alice"})
    assert status == 201
    assert body["dry_run"] is False
    assert body["change"]["actor"] == "api-token:alice"  # over TCP: prefixed, never a local user
    assert body["host"]["hostname"] == "web1"
    status, body = await call(client, "GET", "/v1/hosts")
    assert status == 200
    assert [h["ip"] for h in body["hosts"]] == ["198.18.0.20"]
    status, body = await call(client, "GET", "/v1/hosts/52:54:00:00:02:01")
    assert (status, body["host"]["hostname"]) == (200, "web1")


@pytest.mark.asyncio
async def test_conflict_is_409_naming_field_and_holder(
    client: TestClient[web.Request, web.Application],
) -> None:
    await call(client, "POST", "/v1/hosts", HOST)
    status, body = await call(
        client, "POST", "/v1/hosts", {**HOST, "mac": "52:54:00:00:02:02", "hostname": "web2"}
    )
    assert status == 409
    assert body["error"] == "conflict"
    assert body["field"] == "ip"
    assert body["value"] == "198.18.0.20"
    assert "web1" in body["holder"]
    assert "web1" in body["message"]


@pytest.mark.asyncio
async def test_unknown_host_is_404(client: TestClient[web.Request, web.Application]) -> None:
    status, body = await call(client, "GET", "/v1/hosts/nosuch")
    assert status == 404
    assert (body["error"], body["kind"], body["key"]) == ("not_found", "host", "nosuch")
    status, body = await call(client, "DELETE", "/v1/hosts/nosuch", {"reason": "x"})
    assert status == 404


@pytest.mark.asyncio
async def test_invalid_values_are_422_naming_the_field(
    client: TestClient[web.Request, web.Application],
) -> None:
    cases = {
        "mac": {**HOST, "mac": "zz:zz"},
        "ip": {**HOST, "ip": "300.1.2.3"},
        "hostname": {**HOST, "hostname": "not_a.label"},
        "boot": {**HOST, "boot": "nosuch"},
    }
    for field, payload in cases.items():
        status, body = await call(client, "POST", "/v1/hosts", payload)
        assert status == 422, field
        assert body["error"] == "invalid"
        assert body["field"] == field
    status, body = await call(client, "POST", "/v1/hosts", {**HOST, "boot": "pxe"})
    assert status == 201


@pytest.mark.asyncio
async def test_malformed_requests_are_400(
    client: TestClient[web.Request, web.Application],
) -> None:
    for payload in (
        b"{not json",
        b"[1, 2]",
        {"mac": HOST["mac"], "hostname": "x"},  # no ip
        {**HOST, "ip": 5},
        {**HOST, "colour": "blue"},
        {**HOST, "dry_run": "yes"},
    ):
        status, body = await call(client, "POST", "/v1/hosts", payload)
        assert status == 400, payload
        assert body["error"] == "bad_request"
    status, body = await call(client, "PATCH", "/v1/hosts/web1", {"fields": {}})
    assert status == 400
    for query in ("after=-1", "limit=0", "limit=many"):
        status, body = await call(client, "GET", f"/v1/changes?{query}")
        assert status == 400, query


@pytest.mark.asyncio
async def test_dry_run_answers_seq_0_and_writes_nothing(
    client: TestClient[web.Request, web.Application], context: App
) -> None:
    before = await context.site.store.last_seq()
    status, body = await call(client, "POST", "/v1/hosts", {**HOST, "dry_run": True})
    assert status == 200
    assert body["dry_run"] is True
    assert body["change"]["seq"] == 0
    assert await context.site.store.hosts() == []
    assert await context.site.store.last_seq() == before


@pytest.mark.asyncio
async def test_patch_and_delete_record_actor_and_reason(
    client: TestClient[web.Request, web.Application], context: App
) -> None:
    await call(client, "POST", "/v1/hosts", HOST)
    status, body = await call(
        client,
        "PATCH",
        "/v1/hosts/web1",
        {"fields": {"boot_file": "x.efi"}, "actor": "bob", "reason": "uefi now"},
    )
    assert status == 200
    assert body["host"]["boot_file"] == "x.efi"
    assert body["host"]["version"] == 2
    assert (body["before"]["boot_file"], body["before"]["version"]) == (None, 1)
    status, body = await call(client, "DELETE", "/v1/hosts/web1", {"reason": "gone"})
    assert status == 200
    entries = (await call(client, "GET", "/v1/changes?after=1"))[1]["changes"]
    assert [(c["op"], c["actor"], c["reason"]) for c in entries] == [
        ("upsert", "api-token", ""),  # a TCP client: the token's actor, not a local user
        ("upsert", "api-token:bob", "uefi now"),
        ("delete", "api-token", "gone"),
    ]


@pytest.mark.asyncio
async def test_unknown_route_and_method_answer_json(
    client: TestClient[web.Request, web.Application],
) -> None:
    status, body = await call(client, "GET", "/v1/nothing")
    assert (status, body["error"]) == (404, "not_found")
    status, body = await call(client, "PUT", "/v1/hosts")
    assert (status, body["error"]) == (405, "method_not_allowed")


@pytest.mark.asyncio
async def test_a_bug_is_500_logged_and_counted(
    client: TestClient[web.Request, web.Application], caplog: pytest.LogCaptureFixture
) -> None:
    before = metric("ddi_internal_errors_total", area="api")
    status, body = await call(client, "GET", "/test/boom")
    assert status == 500
    assert body["error"] == "internal"
    assert "a bug" not in body["message"]  # details go to the log, not to the client
    assert metric("ddi_internal_errors_total", area="api") == before + 1
    assert "RuntimeError: a bug" in caplog.text


@pytest.mark.asyncio
async def test_requests_are_counted_by_route_template(
    client: TestClient[web.Request, web.Application],
) -> None:
    labels = {"method": "GET", "route": "/v1/hosts/{key}", "status": "404"}
    before = metric("ddi_api_requests_total", **labels)
    await call(client, "GET", "/v1/hosts/52:54:00:00:09:09")
    assert metric("ddi_api_requests_total", **labels) == before + 1


@pytest.mark.asyncio
async def test_token_gate(context: App) -> None:
    async with TestClient(TestServer(build_app(context, token="t0k"))) as gated:
        status, body = await call(gated, "GET", "/v1/hosts")
        assert (status, body["error"]) == (401, "unauthorized")
        status, _ = await call(gated, "GET", "/v1/hosts", headers={"Authorization": "Bearer no"})
        assert status == 401
        status, _ = await call(gated, "GET", "/v1/hosts", headers={"Authorization": "Bearer t0k"})
        assert status == 200
        status, _ = await call(gated, "GET", "/healthz")
        assert status == 200


@pytest.mark.asyncio
async def test_status_reports_each_area_and_survives_a_broken_one(
    client: TestClient[web.Request, web.Application], context: App
) -> None:
    def broken() -> dict[str, Any]:
        raise ZeroDivisionError

    context.services["dhcp"] = FakeService("dhcp", lambda: {"offers": 3})
    context.services["zz"] = FakeService("zz", broken)
    status, body = await call(client, "GET", "/v1/status")
    assert status == 200
    assert body["site"] == "apitest"
    assert body["store"]["subnets"] == 1
    assert body["statistics"]["dhcp"] == {"offers": 3}
    assert "error" in body["statistics"]["zz"]


@pytest.mark.asyncio
async def test_reload_applies_a_valid_config_and_keeps_the_old_on_error(
    context: App, tmp_path: Path
) -> None:
    seen: list[Config] = []

    async def hook(config: Config) -> None:
        seen.append(config)

    async def broken_hook(config: Config) -> None:
        raise RuntimeError("hook bug")

    context.services["broken"] = FakeService("broken", on_reload=broken_hook)
    context.services["ok"] = FakeService("ok", on_reload=hook)
    old = context.site.config
    old.path.write_text(SITE + "\n[other]\n")
    assert not (await reload(context)).applied
    assert context.site.config is old
    assert seen == []

    old.path.write_text(
        SITE.replace(
            "[boot.profiles.pxe]",
            '[[subnets]]\nname = "b"\ncidr = "198.18.1.0/24"\n\n[boot.profiles.pxe]',
        )
    )
    errors = metric("ddi_internal_errors_total", area="reload")
    assert (await reload(context)).applied
    assert [s.name for s in context.site.config.subnets] == ["lan", "b"]
    assert {s.name for s in await context.site.store.subnets()} == {"lan", "b"}
    assert len(context.site.index.subnets()) == 2
    assert seen == [context.site.config]
    assert metric("ddi_internal_errors_total", area="reload") == errors + 1


@pytest.mark.asyncio
async def test_a_reload_freezes_the_rebuilt_heap_only_when_the_daemon_owns_the_process(
    context: App,
) -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle the reload replaces: freed, not kept frozen

    built: list[Node] = []

    async def rebuild(config: Config) -> None:
        built[:] = [Node()]

    context.services["zones"] = FakeService("zones", on_reload=rebuild)
    try:
        assert (await reload(context)).applied
        assert gc.get_freeze_count() == 0  # embedded: the host process's collector untouched
        context.owns_process = True
        assert (await reload(context)).applied
        assert gc.get_freeze_count() > 0
        assert not any(o is built[0] for o in gc.get_objects(generation=2))
        replaced = weakref.ref(built[0])
        assert (await reload(context)).applied
        assert replaced() is None  # frozen by the last reload, freed by this one
    finally:
        gc.unfreeze()


@pytest.mark.asyncio
async def test_services_close_last_first_each_despite_a_failing_one(
    context: App, caplog: pytest.LogCaptureFixture
) -> None:
    closed: list[str] = []

    def close(name: str) -> None:
        closed.append(name)
        if name == "dns":
            raise RuntimeError("close bug")

    services = [FakeService(name, on_close=close) for name in ("dhcp", "dns", "tftp")]
    context.services.update((s.name, s) for s in services)
    await _close_services(context, services)
    assert closed == ["tftp", "dns", "dhcp"]
    assert context.services == {}
    assert "closing dns failed" in caplog.text


@pytest.mark.asyncio
async def test_serve_runs_until_shutdown_and_removes_its_socket(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    shutdown = asyncio.Event()
    task = asyncio.create_task(serve(config, shutdown=shutdown))
    api = ApiClient(str(config.api.socket), timeout=5)
    for _ in range(200):
        if task.done():
            task.result()
        try:
            status = await asyncio.to_thread(api.get, "/v1/status")
            break
        except Unreachable:
            await asyncio.sleep(0.02)
    else:
        pytest.fail("serve did not answer")
    assert status["site"] == "apitest"
    assert status["store"]["path"] == str(tmp_path / "data" / "ddi.sqlite")
    assert config.api.socket.stat().st_mode & 0o777 == 0o660
    shutdown.set()
    await asyncio.wait_for(task, 10)
    assert not config.api.socket.exists()
    assert (tmp_path / "data" / "ddi.sqlite").exists()


@pytest.mark.asyncio
async def test_status_counts_hosts_leases_and_pools_in_steps(
    client: TestClient[web.Request, web.Application],
    context: App,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Steps of 3 (5,000 in the daemon): the counts come out whole across the turns of the loop.
    monkeypatch.setattr(status_api, "count_usage", functools.partial(count_usage, step=3))
    now = time.time()
    leases = [
        Lease(
            ip=IPv4Address(f"198.18.0.{100 + i}"),
            mac=f"52:54:00:00:03:{i:02x}",
            start=now - 10,
            end=now + 3600 if i < 7 else now - 1,
            subnet="lan",
        )
        for i in range(10)
    ]
    await context.site.store.commit_leases(leases)
    host = Host(id="", hostname="web1", mac="52:54:00:00:02:01", ip=IPv4Address("198.18.0.20"))
    await context.site.store.add_host(host, actor="test", reason="status")
    status, body = await call(client, "GET", "/v1/status")
    assert status == 200
    assert body["store"]["hosts"] == 1
    assert body["store"]["leases"] == 10
    assert body["store"]["leases_bound"] == 7  # three have ended
    assert [subnet["name"] for subnet in body["pools"]] == ["lan"]

"""Admin API host writes: a PATCH that changes nothing, and who the change log says wrote."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ddi.api import build_app
from ddi.app import App
from ddi.config import load_config
from ddi.ipam.models import Op
from ddi.site import open_site
from tests.ci import require_root, skip_or_fail

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
async def context(tmp_path: Path) -> AsyncIterator[App]:
    (tmp_path / "site.toml").write_text(SITE)
    config = load_config(tmp_path / "site.toml")
    async with open_site(config, store_path=tmp_path / "ddi.sqlite") as site:
        yield App(site)


@pytest_asyncio.fixture
async def client(context: App) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(context))) as test_client:
        yield test_client


async def call(client: Client, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body)
    async with client.request(method, path, data=data) as response:
        return response.status, await response.json()


@pytest.mark.asyncio
async def test_patch_with_nothing_changing_answers_change_null(
    client: Client, context: App
) -> None:
    status, _ = await call(client, "POST", "/v1/hosts", HOST)
    assert status == 201
    seq = await context.site.store.last_seq()
    fields = {"hostname": "web1", "mac": "52:54:00:00:02:01", "boot": None, "dhcp": None}
    status, body = await call(client, "PATCH", "/v1/hosts/web1", {"fields": fields})
    assert status == 200
    assert body["change"] is None
    assert body["host"]["version"] == 1
    assert body["dry_run"] is False
    assert await context.site.store.last_seq() == seq
    status, body = await call(client, "PATCH", "/v1/hosts/web1", {"fields": {"boot_file": "x"}})
    assert status == 200
    assert body["change"]["image"]["version"] == 2


# --- who the change log says wrote (SO_PEERCRED on the unix socket, the token on TCP) ---------

NOBODY = 65534
SYSTEM_PYTHON = Path("/usr/bin/python3")
HAS_SYSTEM_PYTHON = SYSTEM_PYTHON.exists()
"""A Python every account may run (the venv's may live under root's home)."""
_RAW_CLIENT = """
import http.client, json, socket, sys

class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sys.argv[1])

conn = Conn("localhost", timeout=10)
conn.request("POST", "/v1/hosts", body=sys.argv[2], headers={"Content-Type": "application/json"})
response = conn.getresponse()
print(json.dumps({"status": response.status, "body": json.loads(response.read())}))
"""


@pytest_asyncio.fixture
async def unix_socket(context: App) -> AsyncIterator[Path]:
    """The API on a unix socket in a folder every account may enter."""
    folder = Path(tempfile.mkdtemp(prefix="ddi-actor-"))
    os.chmod(folder, 0o755)
    path = folder / "ddi.sock"
    runner = web.AppRunner(build_app(context), access_log=None)
    await runner.setup()
    await web.UnixSite(runner, str(path)).start()
    os.chmod(path, 0o666)
    try:
        yield path
    finally:
        await runner.cleanup()
        shutil.rmtree(folder)


async def post_unix(path: Path, body: dict[str, Any]) -> tuple[int, Any]:
    connector = aiohttp.UnixConnector(path=str(path))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post("http://localhost/v1/hosts", data=json.dumps(body)) as response,
    ):
        return response.status, await response.json()


def host_body(n: int, **extra: Any) -> dict[str, Any]:
    return {"mac": f"52:54:00:00:03:{n:02x}", "ip": f"198.18.0.{n}", "hostname": f"h{n}", **extra}


@pytest.mark.asyncio
async def test_root_on_the_unix_socket_may_act_for_a_named_user(unix_socket: Path) -> None:
    require_root("needs root: the peer must be uid 0")
    root = pwd.getpwuid(0).pw_name
    for n, claimed, recorded in (
        (30, None, root),
        (31, root, root),
        (32, "alice", f"{root} as alice"),
    ):
        status, body = await post_unix(unix_socket, host_body(n, actor=claimed))
        assert status == 201, body
        assert body["change"]["actor"] == recorded
    status, body = await post_unix(unix_socket, host_body(33, actor="alice; rm -rf"))
    assert (status, body["field"]) == (400, "actor")


@pytest.mark.asyncio
async def test_another_account_on_the_unix_socket_cannot_claim_a_name(
    unix_socket: Path, context: App
) -> None:
    require_root("needs root (to run a client as nobody)")
    if not HAS_SYSTEM_PYTHON:
        skip_or_fail("needs /usr/bin/python3 (to run a client as nobody)")
    nobody = pwd.getpwuid(NOBODY).pw_name
    for n, claimed in ((40, "root"), (41, "central"), (42, None)):
        result = await asyncio.to_thread(
            subprocess.run,
            [str(SYSTEM_PYTHON), "-c", _RAW_CLIENT, str(unix_socket),
             json.dumps(host_body(n, actor=claimed))],
            user=NOBODY, capture_output=True, text=True, timeout=30, check=False, cwd="/",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        assert answer["status"] == 201, answer
        assert answer["body"]["change"]["actor"] == nobody
    assert [c.actor for c in await context.site.store.changes(after=1)] == [nobody] * 3


@pytest.mark.asyncio
async def test_tcp_listener_records_the_token_and_prefixes_a_named_actor(
    context: App,
) -> None:
    headers = {"Authorization": "Bearer t0k"}
    async with TestClient(TestServer(build_app(context, token="t0k"))) as tcp:
        for n, claimed, recorded in (
            (50, None, "api-token"),
            (51, "alice", "api-token:alice"),
            (52, "root", "api-token:root"),
        ):
            body = json.dumps(host_body(n, actor=claimed))
            async with tcp.post("/v1/hosts", data=body, headers=headers) as response:
                answer = await response.json()
            assert response.status == 201, answer
            assert answer["change"]["actor"] == recorded
        async with tcp.post(
            "/v1/hosts", data=json.dumps(host_body(53, actor="a b")), headers=headers
        ) as response:
            assert (response.status, (await response.json())["field"]) == (400, "actor")


@pytest.mark.asyncio
async def test_claiming_central_over_tcp_cannot_change_a_central_owned_host(
    context: App,
) -> None:
    image = {**host_body(60), "id": "c" * 32}
    assert (await context.site.store.sync.apply_central_host(Op.UPSERT, image)).conflict is None
    headers = {"Authorization": "Bearer t0k"}
    async with TestClient(TestServer(build_app(context, token="t0k"))) as tcp:
        body = json.dumps({"fields": {"boot_file": "x"}, "actor": "central"})
        async with tcp.patch("/v1/hosts/h60", data=body, headers=headers) as response:
            answer = await response.json()
    assert (response.status, answer["field"]) == (422, "owner")
    assert (await context.site.store.find_host("h60")).boot_file is None

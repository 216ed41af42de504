"""Central's token model over its real HTTP listener: scopes (metrics < read < write), tokens
narrowed to some sites, the legacy read token, and ``ddi-central token add|list|rm``."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from central.app import build_app
from central.config import load_central_config
from central.store import CentralStore, open_store
from ddi.errors import ConfigError
from ddi.tokens import TokenFile
from sync import protocol

KEY_1 = protocol.generate_key()
KEY_2 = protocol.generate_key()
CENTRAL_KEY = protocol.generate_key()
BIN = Path(sys.executable).parent


@contextlib.asynccontextmanager
async def serving(store: CentralStore, **options: Any) -> AsyncIterator[str]:
    app = build_app(store, CENTRAL_KEY, **options)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[CentralStore]:
    store = await open_store(f"sqlite://{tmp_path}/c.sqlite")
    await store.add_site("s1", protocol.public_key_raw(KEY_1.public_key()))
    await store.add_site("s2", protocol.public_key_raw(KEY_2.public_key()))
    await store.add_conflicts("s1", [{"id": 1, "object_id": "h1", "field": "ip"}])
    await store.add_conflicts("s2", [{"id": 1, "object_id": "h2", "field": "mac"}])
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def tokens(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "tokens.json"
    file = TokenFile(path)
    secrets = {
        "metrics": file.add("prom", ["metrics"])[1],
        "read": file.add("noc", ["read"])[1],
        "write": file.add("ops", ["write"])[1],
        "s1": file.add("site1-team", ["read"], sites=["s1"])[1],
    }
    return path, secrets


async def get(url: str, path: str, secret: str | None = None) -> tuple[int, Any]:
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as s, s.get(url + path, headers=headers) as r:
        body = await r.text()
        try:
            return r.status, json.loads(body)
        except ValueError:
            return r.status, body


READS = ["/v1/sites", "/v1/changes", "/v1/sites/s1/changes", "/v1/sites/s1/hosts",
         "/v1/sites/s1", "/v1/conflicts"]  # fmt: skip


@pytest.mark.asyncio
async def test_each_scope_reaches_what_it_grants(
    store: CentralStore, tokens: tuple[Path, dict[str, str]]
) -> None:
    path, secret = tokens
    async with serving(store, tokens_file=path) as url:
        for read in READS:
            assert (await get(url, read))[0] == 401, read
            assert (await get(url, read, "ddi_not-a-token"))[0] == 401, read
            assert (await get(url, read, secret["metrics"]))[0] == 403, read
            assert (await get(url, read, secret["read"]))[0] == 200, read
            assert (await get(url, read, secret["write"]))[0] == 200, read
        for scope in ("metrics", "read", "write"):
            status, body = await get(url, "/metrics", secret[scope])
            assert status == 200
            assert "ddi_sync_central" in body
        assert (await get(url, "/metrics"))[0] == 401
        # A token is no site credential: it cannot post a batch.
        async with (
            aiohttp.ClientSession() as s,
            s.post(f"{url}/v1/sites/s1/batches", headers={
                "Authorization": f"Bearer {secret['write']}"}, data=b"{}") as r,
        ):  # fmt: skip
            assert r.status == 400  # no signed header: malformed, whatever the token


@pytest.mark.asyncio
async def test_a_site_token_sees_its_site_only(
    store: CentralStore, tokens: tuple[Path, dict[str, str]]
) -> None:
    path, secret = tokens
    mine = secret["s1"]
    async with serving(store, tokens_file=path) as url:
        status, body = await get(url, "/v1/sites", mine)
        assert status == 200
        assert [s["site"] for s in body["sites"]] == ["s1"]
        status, body = await get(url, "/v1/conflicts", mine)
        assert [c["site"] for c in body["conflicts"]] == ["s1"]
        for read in ("/v1/sites/s2", "/v1/sites/s2/hosts", "/v1/sites/s2/changes",
                     "/v1/conflicts?site=s2"):  # fmt: skip
            status, body = await get(url, read, mine)
            assert status == 403, read
            assert "site s2" in body["message"]
        for read in ("/v1/sites/s1", "/v1/sites/s1/leases", "/v1/sites/s1/changes"):
            assert (await get(url, read, mine))[0] == 200, read
        # The global feed cannot be filtered without breaking its paging.
        status, body = await get(url, "/v1/changes", mine)
        assert status == 403
        assert "/v1/sites/{site}/changes" in body["message"]
        # Every site for a token without a site list.
        status, body = await get(url, "/v1/sites", secret["read"])
        assert [s["site"] for s in body["sites"]] == ["s1", "s2"]


@pytest.mark.asyncio
async def test_the_legacy_read_token_reads_every_site_beside_a_tokens_file(
    store: CentralStore, tokens: tuple[Path, dict[str, str]]
) -> None:
    path, secret = tokens
    async with serving(store, tokens_file=path, read_token="sesame") as url:
        status, body = await get(url, "/v1/sites", "sesame")
        assert status == 200
        assert len(body["sites"]) == 2
        assert (await get(url, "/metrics", "sesame"))[0] == 200
        assert (await get(url, "/v1/sites", secret["s1"]))[0] == 200
        assert (await get(url, "/v1/sites", "sesame2"))[0] == 401
    async with serving(store, read_token="sesame") as url:
        assert (await get(url, "/v1/changes", "sesame"))[0] == 200
        assert (await get(url, "/v1/changes", secret["read"]))[0] == 401


@pytest.mark.asyncio
async def test_tokens_added_and_removed_while_serving_take_effect(
    store: CentralStore, tmp_path: Path
) -> None:
    path = tmp_path / "tokens.json"
    async with serving(store, tokens_file=path) as url:
        assert (await get(url, "/v1/sites", "ddi_x"))[0] == 401
        _, made = TokenFile(path).add("late", ["read"])
        assert (await get(url, "/v1/sites", made))[0] == 200
        TokenFile(path).remove("late")
        assert (await get(url, "/v1/sites", made))[0] == 401


@pytest.mark.asyncio
async def test_signed_polls_record_the_last_contact(store: CentralStore) -> None:
    async with serving(store) as url:
        assert (await store.site("s1")).last_contact is None  # type: ignore[union-attr]
        before = time.time()
        path = "/v1/sites/s1"
        auth = protocol.sign_request(site="s1", method="GET", path=path, now=time.time(), key=KEY_1)
        async with (
            aiohttp.ClientSession() as s,
            s.get(url + path, headers={protocol.AUTH_HEADER: auth}) as r,
        ):
            assert r.status == 200
        info = await store.site("s1")
        assert info is not None
        assert info.last_contact is not None
        assert info.last_contact >= before
        assert info.heard_from == info.last_contact
        # A forged poll is no contact.
        forged = protocol.sign_request(site="s2", method="GET", path="/v1/sites/s2",
                                       now=time.time(), key=KEY_1)  # fmt: skip
        async with (
            aiohttp.ClientSession() as s,
            s.get(url + "/v1/sites/s2", headers={protocol.AUTH_HEADER: forged}) as r,
        ):
            assert r.status == 403
        assert (await store.site("s2")).last_contact is None  # type: ignore[union-attr]


def test_listening_beyond_loopback_needs_a_tokens_file_or_a_read_token(tmp_path: Path) -> None:
    config = tmp_path / "central.toml"
    base = '[central]\nlisten = "0.0.0.0:8443"\nsigning_key = "k"\ninsecure_http = true\n'
    config.write_text(base)
    with pytest.raises(ConfigError, match="tokens_file"):
        load_central_config(config)
    config.write_text(base + 'tokens_file = "tokens.json"\nstale_after = 30\n')
    loaded = load_central_config(config)
    assert loaded.tokens_file == tmp_path / "tokens.json"
    assert loaded.stale_after == 30.0
    config.write_text(base + 'read_token = "sesame"\n')
    assert load_central_config(config).tokens_file is None
    config.write_text(base + 'read_token = "sesame"\nstale_after = 0\n')
    with pytest.raises(ConfigError, match="stale_after"):
        load_central_config(config)


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DDI_CENTRAL_CONFIG": str(config)}
    return subprocess.run([str(BIN / "ddi-central"), "token", *args], capture_output=True,
                          text=True, timeout=60, env=env)  # fmt: skip


@pytest.mark.asyncio
async def test_token_commands_make_tokens_the_listener_accepts(
    store: CentralStore, tmp_path: Path
) -> None:
    config = tmp_path / "central.toml"
    config.write_text('[central]\nsigning_key = "k"\ninsecure_http = true\n')
    refused = _cli(config, "list")
    assert refused.returncode == 2
    assert "tokens_file" in refused.stderr
    config.write_text(config.read_text() + 'tokens_file = "tokens.json"\n')
    made = _cli(config, "add", "site1-noc", "--scope", "read", "--site", "s1")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("ddi_")
    assert _cli(config, "add", "site1-noc", "--scope", "read").returncode == 1
    assert _cli(config, "add", "bad", "--scope", "read", "--site", "no such").returncode == 2
    listed = json.loads(_cli(config, "list", "--json").stdout)
    assert listed == [{"name": "site1-noc", "scopes": ["read"], "sites": ["s1"],
                       "created": listed[0]["created"]}]  # fmt: skip
    assert secret not in (tmp_path / "tokens.json").read_text()
    assert (tmp_path / "tokens.json").stat().st_mode & 0o777 == 0o600
    async with serving(store, tokens_file=tmp_path / "tokens.json") as url:
        assert (await get(url, "/v1/sites/s1/hosts", secret))[0] == 200
        assert (await get(url, "/v1/sites/s2/hosts", secret))[0] == 403
        removed = _cli(config, "rm", "site1-noc")
        assert removed.returncode == 0
        assert (await get(url, "/v1/sites/s1/hosts", secret))[0] == 401
    assert _cli(config, "rm", "site1-noc").returncode == 1

"""The collector's HTTP surface on loopback: who may read what."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from central import metrics as central_metrics
from central.app import build_app
from central.config import load_central_config
from central.store import CentralStore, open_store
from ddi import metrics as edge_metrics
from ddi.errors import ConfigError
from sync import protocol

SITE_KEY = protocol.generate_key()
OTHER_KEY = protocol.generate_key()
CENTRAL_KEY = protocol.generate_key()


@contextlib.asynccontextmanager
async def serving(store: Any, **options: Any) -> AsyncIterator[str]:
    app = build_app(store, CENTRAL_KEY, **({"max_body": 1 << 20, "read_token": "sesame"} | options))
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
    await store.add_site("s1", protocol.public_key_raw(SITE_KEY.public_key()))
    await store.add_site("s2", protocol.public_key_raw(OTHER_KEY.public_key()))
    try:
        yield store
    finally:
        await store.close()


@pytest_asyncio.fixture
async def central(store: CentralStore) -> AsyncIterator[str]:
    async with serving(store) as url:
        yield url


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
    auth = {"Authorization": "Bearer sesame"}
    async with aiohttp.ClientSession() as s, s.get(central + "/metrics", headers=auth) as r:
        assert r.status == 200
        text = await r.text()
    names = {line.split("{")[0].split()[0] for line in text.splitlines() if line[:1] != "#"}
    assert "ddi_sync_central_entries_applied_total" in names
    assert "ddi_sync_central_refused_total" in names
    assert "process_resident_memory_bytes" in names
    assert "ddi_sync_link_up" not in names
    central_own = ("ddi_sync_central", "ddi_central_")  # the collector's, its IPAM sync's
    assert not {n for n in names if n.startswith("ddi_") and not n.startswith(central_own)}


# --- uploads: nothing unauthenticated is read past its headers ---


def refused_total(reason: str) -> float:
    value = central_metrics.REGISTRY.get_sample_value(
        "ddi_sync_central_refused_total", {"reason": reason}
    )
    return value or 0.0


async def raw(url: str, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send ``head`` (and the start of a body) on a raw connection; central's status and
    answer, which must come without the rest of the body."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head + body)
        await writer.drain()
        async with asyncio.timeout(10):
            status_line = await reader.readline()
            headers = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            answer = await reader.readexactly(length)
    finally:
        writer.close()
    return int(status_line.split()[1]), answer


def upload_head(path: str, length: int, signed: str | None = None) -> bytes:
    extra = "" if signed is None else f"{protocol.SIGNED_HEADER}: {signed}\r\n"
    return (
        f"POST {path} HTTP/1.1\r\nHost: central\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


def entries(n: int = 1) -> list[dict[str, Any]]:
    return [
        {"epoch": 1, "seq": s, "kind": "host", "object_id": f"{s:032x}", "op": "upsert",
         "image": {"id": f"{s:032x}"}, "actor": "t", "reason": "", "time": 1.0}
        for s in range(1, n + 1)
    ]  # fmt: skip


def batch_upload(key: Any = SITE_KEY, site: str = "s1", n: int = 1) -> protocol.Upload:
    b = protocol.make_batch(site=site, epoch=1, from_seq=1, to_seq=n, entries=entries(n), key=key)
    return protocol.batch_upload(b)


async def post(url: str, path: str, upload: protocol.Upload, body: bytes | None = None) -> Any:
    headers = {protocol.SIGNED_HEADER: upload.header}
    async with (
        aiohttp.ClientSession() as s,
        s.post(url + path, data=upload.body if body is None else body, headers=headers) as r,
    ):
        return r.status, await r.json(content_type=None)


@pytest.mark.asyncio
async def test_an_unknown_site_is_refused_before_its_body_is_read(central: str) -> None:
    # 48 MiB announced, 64 KiB sent: the answer must come without the rest.
    head = upload_head("/v1/sites/nosuch/batches", 48 << 20)
    status, answer = await raw(central, head, b"[" * 65536)
    assert status == 404
    assert b"unknown_site" in answer
    status, answer = await raw(central, upload_head("/v1/sites/s1/batches", 48 << 20), b"[" * 9)
    assert status == 400  # no signed header: refused at the headers too
    head = upload_head("/v1/sites/nosuch/batches", 48 << 20, batch_upload(site="nosuch").header)
    status, answer = await raw(central, head, b"[" * 65536)
    assert status == 404


@pytest.mark.asyncio
async def test_a_forged_or_oversized_upload_is_refused_before_its_body_is_read(
    central: str,
) -> None:
    forged = batch_upload(key=OTHER_KEY)
    head = upload_head("/v1/sites/s1/batches", 48 << 20, forged.header)
    status, answer = await raw(central, head, forged.body)
    assert (status, b"bad_signature" in answer) == (403, True)
    # Signed, but larger than central takes (1 MiB here): refused from the signed length.
    big = batch_upload(n=6000)
    assert len(big.body) > 1 << 20
    status, answer = await raw(central, upload_head("/v1/sites/s1/batches", len(big.body),
                                                    big.header), big.body[:1000])  # fmt: skip
    assert (status, b"too_large" in answer) == (413, True)
    ok = batch_upload()
    status, answer = await raw(central, upload_head("/v1/sites/s1/batches", 48 << 20, ok.header),
                               ok.body)  # fmt: skip
    assert (status, b"malformed" in answer) == (400, True)  # more bytes than signed
    status, body = await post(central, "/v1/sites/s1/batches", ok, ok.body.replace(b"t", b"u"))
    assert (status, body["reason"]) == (403, "bad_digest")
    status, body = await post(central, "/v1/sites/s1/batches", ok)
    assert (status, body["result"], body["applied_seq"]) == (200, "applied", 1)


@pytest.mark.asyncio
async def test_made_up_site_names_add_no_rows(central: str, store: CentralStore) -> None:
    before = refused_total("unknown_site")
    async with aiohttp.ClientSession() as s:
        for n in range(200):
            async with s.post(f"{central}/v1/sites/made-up-{n}/batches", data=b"[]") as r:
                assert r.status == 404
        for name in ("%ED%A0%80", "a" * 64, "-x", "%C2%B2"):
            async with s.post(f"{central}/v1/sites/{name}/batches", data=b"[]") as r:
                assert r.status == 404, name
    assert refused_total("unknown_site") - before == 204
    assert await store.refusals() == {}
    _, body = await get(central, "/v1/sites", Authorization="Bearer sesame")
    assert body["refused_unknown"] == {}


class SlowStore:
    """The store, with site look-ups held until ``release`` is set."""

    def __init__(self, store: CentralStore) -> None:
        self._store = store
        self.waiting = 0
        self.arrived = asyncio.Condition()
        self.release = asyncio.Event()

    async def site(self, site: str) -> Any:
        async with self.arrived:
            self.waiting += 1
            self.arrived.notify_all()
        await self.release.wait()
        return await self._store.site(site)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.mark.asyncio
async def test_requests_awaiting_authentication_are_bounded(store: CentralStore) -> None:
    slow = SlowStore(store)
    async with serving(slow, max_unauthenticated=2) as url, aiohttp.ClientSession() as s:
        ok = batch_upload()

        async def one() -> int:
            headers = {protocol.SIGNED_HEADER: ok.header}
            async with s.post(f"{url}/v1/sites/s1/batches", data=ok.body, headers=headers) as r:
                return r.status

        held = [asyncio.create_task(one()) for _ in range(2)]
        async with asyncio.timeout(10), slow.arrived:
            await slow.arrived.wait_for(lambda: slow.waiting >= 2)
        async with s.post(f"{url}/v1/sites/s1/batches", data=ok.body,
                          headers={protocol.SIGNED_HEADER: ok.header}) as r:  # fmt: skip
            assert r.status == 503
            assert r.headers["Retry-After"] == "1"
        path = "/v1/sites/s1/down?after=0"
        status, _ = await get(url, path, **{protocol.AUTH_HEADER: signed(path)})
        assert status == 503
        slow.release.set()
        statuses = sorted(await asyncio.gather(*held))
        assert statuses == [200, 409] or statuses == [200, 200], statuses
        status, _ = await get(url, path, **{protocol.AUTH_HEADER: signed(path)})
        assert status == 200


# --- credentials ---


def central_toml(tmp_path: Path, listen: str, extra: str = "") -> Path:
    path = tmp_path / "central.toml"
    path.write_text(f'[central]\nlisten = "{listen}"\nsigning_key = "k"\n'
                    f"insecure_http = true\n{extra}")  # fmt: skip
    return path


@pytest.mark.parametrize("listen", ["0.0.0.0:8443", "[::]:8443", "198.18.0.1:8443",
                                    "central.example:8443"])  # fmt: skip
def test_central_refuses_to_listen_beyond_loopback_without_a_read_token(
    tmp_path: Path, listen: str
) -> None:
    with pytest.raises(ConfigError, match=r"read_token.*beyond loopback"):
        load_central_config(central_toml(tmp_path, listen))
    config = load_central_config(central_toml(tmp_path, listen, 'read_token = "t0ken"\n'))
    assert config.read_token == "t0ken"
    for local in ("127.0.0.1:8443", "[::1]:8443", "localhost:8443"):
        assert load_central_config(central_toml(tmp_path, local)).read_token is None


@pytest.mark.parametrize("port", ["\u00b2", "\u0663", "99999999999999999999"])
def test_a_listen_port_is_ascii_digits(tmp_path: Path, port: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        load_central_config(central_toml(tmp_path, f"127.0.0.1:{port}"))


@pytest.mark.asyncio
async def test_sites_and_readers_hold_separate_credentials(central: str) -> None:
    # A site's signature reads its own cursor and down log, and nothing of the feed.
    for path in ("/v1/changes?after=0", "/v1/sites/s1/changes", "/v1/sites/s1/hosts",
                 "/v1/conflicts", "/v1/sites", "/metrics"):  # fmt: skip
        status, _ = await get(central, path, **{protocol.AUTH_HEADER: signed(path)})
        assert status == 401, path
    # The read token posts nothing.
    ok = batch_upload()
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{central}/v1/sites/s1/batches",
            data=ok.body,
            headers={"Authorization": "Bearer sesame"},
        ) as r,
    ):
        assert r.status == 400
    path = "/v1/sites/s1/down?after=0"
    status, _ = await get(central, path, Authorization="Bearer sesame")
    assert status == 403


@pytest.mark.asyncio
async def test_header_bytes_that_are_not_utf8_are_refused_not_a_500(central: str) -> None:
    host = central.removeprefix("http://")
    for header in (b"Authorization: Bearer \xff\xfe", b"Authorization: Bearer sesam\xe9"):
        head = b"GET /v1/changes?after=0 HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
        status, _ = await raw(central, head + header + b"\r\n\r\n")
        assert status == 401, header
    path = b"/v1/sites/s1/down?after=0"
    head = b"GET " + path + b" HTTP/1.1\r\nHost: c\r\n" + protocol.AUTH_HEADER.encode()
    status, _ = await raw(central, head + b": s1 \xb2 x\r\n\r\n")
    assert status == 403
    status, _ = await get(central, "/v1/changes?after=%C2%B2", Authorization="Bearer sesame")
    assert status == 400
    status, _ = await get(central, "/v1/changes?limit=" + "9" * 5000, Authorization="Bearer sesame")
    assert status == 400


@pytest.mark.asyncio
async def test_json_central_cannot_store_is_refused_with_400(central: str) -> None:
    def signed_body(body: bytes, type_: str = protocol.CONFLICTS_TYPE) -> protocol.Upload:
        return protocol.make_upload(type_, site="s1", body=body, key=SITE_KEY)

    deep = b'{"conflicts": [{"id": 1, "edge_image": {"x": ' + b"[" * 900 + b"]" * 900 + b"}}]}"
    cases = [
        deep,
        b'{"conflicts": [{"id": 1, "detected_at": NaN}]}',
        b'{"conflicts": [{"id": 1, "value": "\\ud800"}]}',
        b'{"conflicts": [{"id": 1, "detected_at": "yesterday"}]}',
        b'{"conflicts": [{"id": 1, "resolved_at": [1]}]}',
        b"[" * 100_000,
    ]
    for body in cases:
        status, answer = await post(central, "/v1/sites/s1/conflicts", signed_body(body))
        assert (status, answer["reason"]) == (400, "malformed"), body[:60]
    nan_batch = (
        b'[{"epoch": 1, "seq": 1, "kind": "host", "object_id": "a", "op": "upsert",'
        b' "image": {"a": NaN}, "time": 1}]'
    )
    header = {"epoch": 1, "from_seq": 1, "to_seq": 1}
    upload = protocol.make_upload(protocol.BATCH_TYPE, site="s1", body=nan_batch, key=SITE_KEY,
                                  **header)  # fmt: skip
    status, answer = await post(central, "/v1/sites/s1/batches", upload)
    assert (status, answer["reason"]) == (400, "malformed")
    status, answer = await post(
        central, "/v1/sites/s1/conflicts", signed_body(b'{"conflicts": [{"id": 1}]}')
    )
    assert (status, answer["count"]) == (200, 1)

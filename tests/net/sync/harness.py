"""Edge and central as real processes on loopback, a fault-injecting TCP proxy between them,
and the object-by-object comparison every end-to-end test ends with.

Loaded by the tests with ``importlib`` (the suite runs with ``--import-mode=importlib``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp

from ddi.cli.client import ApiClient
from sync import protocol

BIN = Path(sys.executable).parent
SITE = "s1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_key(path: Path) -> Path:
    key = protocol.generate_key()
    path.write_bytes(protocol.private_key_pem(key))
    path.with_name(path.name + ".pub").write_bytes(protocol.public_key_pem(key.public_key()))
    return path


# --- the proxy ---


class FaultProxy:
    """A TCP proxy from ``port`` to ``upstream``.

    ``mode``: ``pass``; ``drop`` (connections are closed at once: central unreachable);
    ``delay`` (each chunk waits ``delay`` seconds); ``duplicate`` (every byte the client sends
    also goes to a second upstream connection, to ``duplicate_to`` if set, whose answers are
    thrown away).
    One-shot faults armed with ``arm(kind, match)`` fire on the next request containing
    ``match``: ``cut`` forwards the headers and half the body, then cuts both sides;
    ``lose`` forwards the request, then cuts the client off as the response starts (after
    central committed), calling ``on_lose`` if set.
    """

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = 0
        self.mode = "pass"
        self.delay = 0.0
        self.duplicate_to: int | None = None
        self.on_lose: Callable[[], None] | None = None
        self.fired: list[str] = []
        self._armed: list[tuple[str, bytes]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, kind: str, match: bytes) -> None:
        self._armed.append((kind, match))

    @property
    def armed(self) -> int:
        return len(self._armed)

    async def start(self, host: str = "127.0.0.1") -> None:
        self._server = await asyncio.start_server(self._accept, host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Close every connection under way (with ``mode = "drop"``: the WAN goes down)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "drop":
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            return
        dup: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        if self.mode == "duplicate":
            with contextlib.suppress(OSError):
                dup = await asyncio.open_connection("127.0.0.1", self.duplicate_to or self.upstream)
        lose = asyncio.Event()
        tasks = [
            asyncio.create_task(self._upstream(reader, up_writer, dup, lose)),
            asyncio.create_task(self._downstream(up_reader, writer, lose)),
        ]
        if dup is not None:
            tasks.append(asyncio.create_task(self._drain(dup[0])))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t
            up_writer.close()
            if dup is not None:
                dup[1].close()

    def _take(self, data: bytes) -> str | None:
        for i, (kind, match) in enumerate(self._armed):
            if match in data:
                del self._armed[i]
                self.fired.append(kind)
                return kind
        return None

    async def _upstream(
        self,
        reader: asyncio.StreamReader,
        up: asyncio.StreamWriter,
        dup: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
        lose: asyncio.Event,
    ) -> None:
        while data := await reader.read(65536):
            kind = self._take(data)
            if kind == "cut":
                while b"\r\n\r\n" not in data:
                    more = await reader.read(65536)
                    if not more:
                        return
                    data += more
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                while len(body) < length // 2:
                    more = await reader.read(65536)
                    if not more:
                        break
                    body += more
                up.write(head + b"\r\n\r\n" + body[: max(1, length // 2)])
                await up.drain()
                await asyncio.sleep(0.05)
                return
            if kind == "lose":
                lose.set()
            if self.delay:
                await asyncio.sleep(self.delay)
            up.write(data)
            await up.drain()
            if dup is not None:
                dup[1].write(data)
                await dup[1].drain()

    async def _downstream(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lose: asyncio.Event
    ) -> None:
        while data := await up_reader.read(65536):
            if lose.is_set():
                if self.on_lose is not None:
                    self.on_lose()
                return
            if self.delay:
                await asyncio.sleep(self.delay)
            writer.write(data)
            await writer.drain()

    @staticmethod
    async def _drain(reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass


# --- processes ---


async def wait_for(
    check: Callable[[], Any], *, within: float, what: str, interval: float = 0.1
) -> Any:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {within}s waiting for {what} (last: {last!r})")


_OTHER_CODE = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path"
    " if not getattr(f, '__module__', '').startswith('__editable__')]; "
)
"""Run another version's code from ``PYTHONPATH``: the editable install's import hook would
find this tree's packages first, so it is taken out (and ``-P`` keeps the working folder out)."""


class Central:
    """``ddi-central serve`` in a subprocess, with its config, key and enrolled site."""

    def __init__(
        self,
        folder: Path,
        database: str,
        site_public_key: Path | None,
        *,
        port: int | None = None,
        code: Path | None = None,
    ) -> None:
        self.code = code
        """Another version's source tree to run instead of this one (``PYTHONPATH``)."""
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.key = folder / "central.key"
        if not self.key.exists():
            write_key(self.key)
        self.public_key = folder / "central.key.pub"
        self.config = folder / "central.toml"
        self.config.write_text(
            "[central]\n"
            f'listen = "127.0.0.1:{self.port}"\n'
            f'database = "{database}"\n'
            'signing_key = "central.key"\n'
            "insecure_http = true\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "central.log"
        if site_public_key is not None:  # None: a collector on a database that has the site
            self.cli("site", "add", "--id", SITE, "--public-key", str(site_public_key))

    def _argv(self, *args: str) -> list[str]:
        if self.code is None:
            return [str(BIN / "ddi-central"), *args]
        run = f"{_OTHER_CODE}from central.cli import main; sys.argv[0] = 'ddi-central'; main()"
        return [sys.executable, "-P", "-c", run, *args]  # -P: not the working folder first

    def _env(self) -> dict[str, str] | None:
        return None if self.code is None else os.environ | {"PYTHONPATH": str(self.code)}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = self._argv(*args)
        if args[0] in ("site", "reserve", "conflicts", "export") and "--config" not in args:
            sub = len(argv) - len(args) + (1 if args[0] in ("site", "reserve") else 0)
            argv = [*argv[: sub + 1], "--config", str(self.config), *argv[sub + 1 :]]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=self._env())
        if check and result.returncode != 0:
            raise AssertionError(f"{argv} failed: {result.stdout}{result.stderr}")
        return result

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self._argv("serve", "--config", str(self.config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
            )

    async def start(self) -> None:
        self._spawn()
        await wait_for(self._healthy, within=30, what="central to listen")

    async def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"central exited: {self.log.read_text()[-2000:]}")
        try:
            async with aiohttp.ClientSession() as s, s.get(f"{self.url}/healthz") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    async def get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as s, s.get(f"{self.url}{path}") as r:
            assert r.status == 200, (path, r.status, await r.text())
            return await r.json()

    async def post(self, path: str, upload: protocol.Upload) -> tuple[int, Any]:
        headers = {protocol.SIGNED_HEADER: upload.header}
        async with (
            aiohttp.ClientSession() as s,
            s.post(f"{self.url}{path}", data=upload.body, headers=headers) as r,
        ):
            return r.status, await r.json()

    async def feed(self, *, site: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = 0
        path = "/v1/changes" if site is None else f"/v1/sites/{site}/changes"
        while True:
            page = await self.get(f"{path}?after={after}&limit=10000")
            out.extend(page["changes"])
            if not page["changes"]:
                return out
            after = page["next"]


class Edge:
    """``ddi serve`` in a subprocess with DHCP and DNS off and [sync] pointing at ``url``."""

    def __init__(
        self,
        folder: Path,
        central_url: str,
        central_public_key: Path,
        *,
        extra_config: str = "",
        code: Path | None = None,
        site: str = SITE,
        **sync: Any,
    ):
        self.code = code
        """Another version's source tree to run instead of this one (``PYTHONPATH``)."""
        self.folder = folder
        self.site = site
        folder.mkdir(parents=True, exist_ok=True)
        self.key = write_key(folder / "site.key")
        self.socket = folder / "ddi.sock"
        self.db = folder / "data" / "ddi.sqlite"
        self.log = folder / "edge.log"
        self.config = folder / "ddi.toml"
        settings = {
            "central_url": central_url,
            "insecure_http": True,
            "site_key": str(self.key),
            "central_public_key": str(central_public_key),
            "backoff_base": 0.05,
            "backoff_cap": 0.5,
            "poll_interval": 0.3,
            "timeout": 10.0,
        } | sync
        lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
        self.config.write_text(
            f'[site]\nid = "{site}"\ndomain = "{site}.example"\ndata_dir = "data"\n\n'
            f'[api]\nsocket = "{self.socket}"\n\n'
            '[[subnets]]\nname = "lab"\ncidr = "198.18.0.0/15"\n\n'
            f"{extra_config}"
            "[dhcp]\nenabled = false\n\n[dns]\nenabled = false\n\n"
            f"[sync]\n{lines}"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def set_central(self, url: str) -> None:
        text = self.config.read_text()
        start = text.index("central_url")
        end = text.index("\n", start)
        self.config.write_text(text[:start] + f"central_url = {json.dumps(url)}" + text[end:])

    def api(self, timeout: float = 60.0) -> ApiClient:
        return ApiClient(str(self.socket), timeout=timeout)

    def _spawn(self) -> None:
        with self.log.open("ab") as log:
            env = os.environ | {"PYTHONUNBUFFERED": "1"}
            argv = [sys.executable, "-m", "ddi", "serve", "--config", str(self.config)]
            if self.code is not None:
                env["PYTHONPATH"] = str(self.code)
                run = f"{_OTHER_CODE}from ddi.cli import main; sys.argv[0] = 'ddi'; main()"
                argv = [sys.executable, "-P", "-c", run, *argv[3:]]
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)

    async def start(self) -> None:
        self._spawn()
        await wait_for(self._healthy, within=30, what="the edge daemon to serve")

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"edge exited: {self.log.read_text()[-3000:]}")
        try:
            self.api(timeout=2).get("/healthz")
        except Exception:  # noqa: BLE001 - not up yet, whatever the reason
            return False
        return True

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    async def status(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.api().get, "/v1/sync/status")  # type: ignore[no-any-return]

    async def add_hosts(self, numbers: Iterable[int]) -> None:
        def work() -> None:
            client = self.api()
            for n in numbers:
                client.post("/v1/hosts", host_body(n))

        await asyncio.to_thread(work)


def host_body(n: int, **over: Any) -> dict[str, Any]:
    return {
        "ip": str(ip_of(n)),
        "hostname": f"h{n}",
        "mac": f"52:54:00:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}",
        "actor": "test",
        "reason": "sync test",
    } | over


def ip_of(n: int) -> str:
    base = (198 << 24) | (18 << 16)
    value = base + 256 + n
    return ".".join(str((value >> s) & 255) for s in (24, 16, 8, 0))


# --- comparisons ---


def edge_objects(db: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Every object of the edge store, read-only, in the change-log image form."""
    from ddi.ipam.models import Host, Lease, LeaseState, Owner, Record
    from ddi.ipam.rows6 import LEASE6_COLUMNS, lease6_from_row

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for name, image in con.execute("SELECT name, image FROM subnet"):
            out[("subnet", name)] = json.loads(image)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        ipv6 = "subnet6" in tables  # a store of the previous version has no IPv6 columns
        for row in con.execute(
            "SELECT id, ip, hostname, mac, client_id, circuit_id, boot, boot_file, boot_script,"
            f" owner, version, {'ip6, duid' if ipv6 else 'NULL, NULL'} FROM host"
        ):
            keys = ("id", "ip", "hostname", "mac", "client_id", "circuit_id", "boot",
                    "boot_file", "boot_script")  # fmt: skip
            image = dict(zip(keys, row[:9], strict=True)) | {"ip6": row[11], "duid": row[12]}
            host = Host.from_image(image | {"owner": Owner(row[9]).value, "version": row[10]})
            out[("host", host.id)] = host.to_image()
        for name, image in con.execute("SELECT name, image FROM subnet6") if ipv6 else ():
            out[("subnet6", name)] = json.loads(image)
        for row in con.execute(f"SELECT {LEASE6_COLUMNS} FROM lease6") if ipv6 else ():
            lease6 = lease6_from_row(row)
            out[("lease6", lease6.object_id)] = lease6.to_image()
        for row in con.execute(
            'SELECT ip, mac, client_id, circuit_id, hostname, state, start, "end", subnet'
            " FROM lease"
        ):
            lease = Lease.from_image(
                dict(
                    zip(("ip", "mac", "client_id", "circuit_id", "hostname"), row[:5], strict=True)
                )
                | {
                    "state": LeaseState(row[5]).value,
                    "start": row[6],
                    "end": row[7],
                    "subnet": row[8],
                }
            )
            out[("lease", str(lease.ip))] = lease.to_image()
        for row in con.execute("SELECT id, name, rtype, value, ttl, owner, version FROM record"):
            record = Record(id=row[0], name=row[1], rtype=row[2], value=row[3], ttl=row[4],
                            owner=Owner(row[5]), version=row[6])  # fmt: skip
            out[("record", record.id)] = record.to_image()
        return out
    finally:
        con.close()


def edge_log_seqs(db: Path) -> list[int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in con.execute("SELECT seq FROM change ORDER BY seq")]
    finally:
        con.close()


async def central_objects(
    central: Central, site: str = SITE
) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    kinds = [("subnet", "name"), ("host", "id"), ("lease", "ip"), ("record", "id")]
    if central.code is None:  # the previous version serves no IPv6 kinds
        kinds += [("subnet6", "name"), ("lease6", "")]
    for kind, key in kinds:
        page = await central.get(f"/v1/sites/{site}/{kind}s")
        for image in page[f"{kind}s"]:
            oid = f"{image['kind']}:{image['prefix']}" if kind == "lease6" else str(image[key])
            out[(kind, oid)] = image
    return out


async def wait_synced(edge: Edge, central: Central, *, within: float = 120) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        status = await edge.status()
        state = await central.get(f"/v1/sites/{edge.site}")
        if (
            status.get("backlog_entries") == 0
            and status.get("link") == "up"
            and state["applied_seq"] == status["last_seq"]
            and state["epoch"] == status["epoch"]
        ):
            return status
        return None

    return await wait_for(done, within=within, what="the edge to catch up", interval=0.2)  # type: ignore[no-any-return]


async def assert_same(edge: Edge, central: Central) -> None:
    """Both sides hold exactly the same objects, and central's feed has each seq once."""
    mine = edge_objects(edge.db)
    theirs = await central_objects(central, edge.site)
    assert mine.keys() == theirs.keys(), (
        f"only at the edge: {sorted(mine.keys() - theirs.keys())[:5]}, "
        f"only at central: {sorted(theirs.keys() - mine.keys())[:5]}"
    )
    for key, image in mine.items():
        assert theirs[key] == image, key
    feed = await central.feed(site=edge.site)
    seqs = [(c["epoch"], c["seq"]) for c in feed if c["actor"] != "snapshot"]
    assert len(seqs) == len(set(seqs)), "an entry reached central twice"
    assert seqs == sorted(seqs), "central's feed is out of order"

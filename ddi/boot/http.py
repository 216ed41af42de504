"""HTTP boot server (aiohttp): the boot root with Range support, and per-host iPXE scripts.

Routes:
* ``GET /boot/{mac}.ipxe``: the script for the host reserved with that MAC, rendered from its
  profile's ``script_template`` (else ``boot.script_template``, else a built-in one). A MAC
  without a reservation gets the ``default_script`` of the profile of the subnet the request
  comes from, or 404.
* ``GET /{path}``: a file under ``boot.root`` (``files.safe_path`` decides), with Range,
  If-Modified-Since and sendfile from ``web.FileResponse``.

Hostile input: a Range header must be one byte range of at most 20 ASCII digits a side before
aiohttp converts it (else 416); request lines and header fields are capped at 8190 bytes and 32
header lines; at most ``boot.http_max_connections`` connections are open at once, and one more
gets a 503 and is closed. File responses are prepared once, by the handler, and a client that
goes away mid-file is counted, not logged as an error.

Templates use ``{name}`` fields (``mac ip hostname fqdn domain profile server base_url arch``);
``${...}`` is left for iPXE. Template files are read when the server starts and on reload; an
unreadable one refuses to start, naming its config key.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aiohttp import hdrs, web

from ddi import metrics
from ddi.boot.files import PathRefusal, safe_path
from ddi.boot.templates import render_template
from ddi.boot.tftp import UNKNOWN_PROFILE, file_profiles
from ddi.errors import ConfigError
from ddi.ipam.models import Host, Subnet

if TYPE_CHECKING:
    from ddi.config import BootConfig, Config
    from ddi.ipam.views import IpamView
    from ddi.site import Site

log = logging.getLogger(__name__)

DEFAULT_SCRIPT = """#!ipxe
echo ddi: {fqdn} ({ip}, {mac}) boots with profile {profile}
chain --autofree {base_url}/{profile}.ipxe || shell
"""
"""Built-in per-host script: chain to ``<profile>.ipxe`` in the boot root."""

MAX_CONNECTIONS = 300
"""Default cap on open connections: BIND's ``http-listener-clients`` default."""
MAX_LINE = 8190
"""Longest request line or header field: aiohttp's default, as nginx's 8k header buffers."""
MAX_HEADERS = 32
"""Header lines per request: boot clients send a handful (aiohttp's default is 128)."""
_RANGE = re.compile(r"bytes=([0-9]{0,20})-([0-9]{0,20})", re.IGNORECASE)
_BUSY_REPLY = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n"
    b"Retry-After: 1\r\n\r\n"
)


def range_ok(value: str) -> bool:
    """Whether a Range header is one byte range aiohttp may convert: ``bytes=a-b``, ``a-`` or
    ``-n``, each number 1-20 ASCII digits (a multi-range or a longer number is refused)."""
    match = _RANGE.fullmatch(value)
    return match is not None and bool(match[1] or match[2])


class _FileResponse(web.FileResponse):
    """A file response the handler prepares itself (to count what was sent): aiohttp prepares
    the returned response again, and ``FileResponse.prepare`` would reopen and resend."""

    async def prepare(self, request: web.BaseRequest) -> Any:
        if self.prepared:
            return None
        return await super().prepare(request)


class _Refuse(asyncio.Protocol):
    """A connection over the cap: a 503 and close, before anything is read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream protocol is given a stream transport; uvloop's does not subclass
        # asyncio.WriteTransport, so an isinstance test would skip the reply there.
        stream = cast(asyncio.Transport, transport)
        stream.write(_BUSY_REPLY)
        stream.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptSet:
    """Templates by profile: for reserved hosts, and (optional) for unknown MACs."""

    host: Mapping[str, str] = field(default_factory=dict)
    unknown: Mapping[str, str] = field(default_factory=dict)
    fallback: str = DEFAULT_SCRIPT


def _read(key: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(key, f"cannot read template {path}: {exc}") from None


def load_scripts(boot: BootConfig) -> ScriptSet:
    """Read every template the config names.

    Raises:
        ConfigError: a template file cannot be read (the key names it).
    """
    fallback = DEFAULT_SCRIPT
    if boot.script_template is not None:
        fallback = _read("boot.script_template", boot.script_template)
    host: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for name, profile in boot.profiles.items():
        key = f"boot.profiles.{name}"
        host[name] = fallback
        if profile.script_template is not None:
            host[name] = _read(f"{key}.script_template", profile.script_template)
        if profile.default_script is not None:
            unknown[name] = _read(f"{key}.default_script", profile.default_script)
    return ScriptSet(host=host, unknown=unknown, fallback=fallback)


@dataclass
class HttpBootSettings:
    root: Path
    domain: str
    base_url: str | None
    scripts: ScriptSet
    profiles: Mapping[str, str]
    """Boot file name -> profile, for the funnel's label."""

    @classmethod
    def from_config(cls, config: Config) -> HttpBootSettings:
        boot = config.boot
        return cls(
            root=boot.root,
            domain=config.site.domain,
            base_url=None if boot.http_base_url is None else boot.http_base_url.rstrip("/"),
            scripts=load_scripts(boot),
            profiles=file_profiles(boot),
        )


def _subnet_of(view: IpamView, ip: IPv4Address | None) -> Subnet | None:
    if ip is None:
        return None
    for subnet in view.subnets():
        if ip in subnet.cidr:
            return subnet
    return None


def _ipv4(text: str | None) -> IPv4Address | None:
    try:
        return None if text is None else IPv4Address(text)
    except ValueError:
        return None


def _normal_mac(text: str) -> str | None:
    hexdigits = text.lower().replace("-", ":").replace(":", "")
    if len(hexdigits) != 12 or any(c not in "0123456789abcdef" for c in hexdigits):
        return None
    return ":".join(hexdigits[i : i + 2] for i in range(0, 12, 2))


class HttpBootServer:
    """The aiohttp application and its listener: the ``http_boot`` service
    (``ddi.site.Service``)."""

    name = "http_boot"

    def __init__(
        self,
        settings: HttpBootSettings,
        view: IpamView,
        *,
        host: str,
        port: int,
        max_connections: int = MAX_CONNECTIONS,
        statistics: dict[str, int] | None = None,
    ) -> None:
        self.settings = settings
        self.view = view
        self.host = host
        self.max_connections = max_connections
        self._requested_port = port
        self.counts: dict[str, int] = statistics if statistics is not None else {}
        self.application = web.Application()
        self.application.router.add_get("/boot/{mac}.ipxe", self._script)
        self.application.router.add_get("/{path:.*}", self._file)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self.port: int | None = None

    async def start(self, tg: asyncio.TaskGroup) -> None:
        """Bind and serve; aiohttp runs the connections, so ``tg`` gets no task.

        Raises:
            ConfigError: the address cannot be used (naming ``boot.http_port``).
        """
        try:
            await self.listen()
        except OSError as exc:
            where = f"{self.host}:{self._requested_port}"
            raise ConfigError(
                "boot.http_port", f"cannot listen on {where}: {exc.strerror}"
            ) from None

    async def listen(self) -> None:
        """Bind and serve. Raises OSError when the address cannot be used."""
        host = self.host
        sock = socket.create_server((host, self._requested_port), reuse_port=False)
        runner = web.AppRunner(
            self.application,
            access_log=None,
            handle_signals=False,
            max_line_size=MAX_LINE,
            max_field_size=MAX_LINE,
            max_headers=MAX_HEADERS,
        )
        try:
            await runner.setup()
            self._runner = runner  # before the first connection can arrive
            # aiohttp's low-level server is the protocol factory; ours puts the cap in front.
            loop = asyncio.get_running_loop()
            self._listener = await loop.create_server(self._connection, sock=sock)
        except BaseException:
            self._runner = None
            sock.close()
            await runner.cleanup()
            raise
        self.port = sock.getsockname()[1]
        log.info("http boot on %s:%d serving %s", host, self.port, self.settings.root)

    def _connection(self) -> asyncio.BaseProtocol:
        server = None if self._runner is None else self._runner.server
        if server is None or len(server.connections) >= self.max_connections:
            self._count("connection", 503)
            return _Refuse()
        return server()

    def connections(self) -> int:
        server = None if self._runner is None else self._runner.server
        return 0 if server is None else len(server.connections)

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if listener is not None:
            await listener.wait_closed()

    async def reload(self, config: Config) -> None:
        """New templates, root and base URL; the listening address at the next restart."""
        try:
            self.settings = HttpBootSettings.from_config(config)
        except ConfigError as exc:
            log.error("http boot keeps its previous templates: %s", exc)

    def statistics(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "connections": self.connections(),
            "requests": dict(sorted(self.counts.items())),
        }

    def _count(self, kind: str, status: int | str) -> None:
        key = f"{kind}_{status}"
        self.counts[key] = self.counts.get(key, 0) + 1
        metrics.BOOT_HTTP_REQUESTS.labels(kind=kind, status=str(status)).inc()

    def _base_url(self, request: web.Request) -> str:
        if self.settings.base_url is not None:
            return self.settings.base_url
        return f"{request.scheme}://{request.host}"

    def render_script(
        self, mac: str, request_ip: IPv4Address | None, base_url: str, server: str
    ) -> tuple[str, str] | None:
        """The (profile, script) for ``mac``, or None when there is none to give."""
        settings = self.settings
        host: Host | None = self.view.host_by_mac(mac)
        if host is not None:
            subnet = _subnet_of(self.view, host.ip)
            profile = host.boot or (subnet.boot if subnet is not None else None)
            template = settings.scripts.host.get(profile or "", settings.scripts.fallback)
            if profile is None:
                profile = ""
        else:
            lease = self.view.lease_by_client(mac, None)
            ip = lease.ip if lease is not None else request_ip
            subnet = _subnet_of(self.view, ip)
            profile = None if subnet is None else subnet.boot
            if profile is None or profile not in settings.scripts.unknown:
                return None
            template = settings.scripts.unknown[profile]
            request_ip = ip
        values = {
            "mac": mac,
            "profile": profile,
            "domain": settings.domain,
            "server": server,
            "base_url": base_url,
            "arch": "",
            "ip": "" if request_ip is None else str(request_ip),
            "hostname": "",
            "fqdn": "",
        }
        if host is not None:
            values |= {
                "ip": "" if host.ip is None else str(host.ip),
                "hostname": host.hostname,
                "fqdn": f"{host.hostname}.{settings.domain}",
            }
        return profile, render_template(template, values)

    async def _script(self, request: web.Request) -> web.StreamResponse:
        mac = _normal_mac(request.match_info["mac"])
        if mac is None:
            self._count("script", 404)
            raise web.HTTPNotFound(text="not a MAC address\n")
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        server = str(sockname[0]) if sockname else ""
        rendered = self.render_script(mac, _ipv4(request.remote), self._base_url(request), server)
        if rendered is None:
            self._count("script", 404)
            raise web.HTTPNotFound(text=f"no reservation and no default script for {mac}\n")
        profile, text = rendered
        label = profile or UNKNOWN_PROFILE
        metrics.BOOT_FETCHES_STARTED.labels(protocol="http", profile=label).inc()
        response = web.Response(text=text, content_type="text/plain", charset="utf-8")
        await response.prepare(request)
        await response.write_eof()
        metrics.BOOT_FETCHES_COMPLETED.labels(protocol="http", profile=label).inc()
        self._count("script", 200)
        return response

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["path"]
        path = safe_path(self.settings.root, name)
        if isinstance(path, PathRefusal):
            status = 404 if path in (PathRefusal.NOT_FOUND, PathRefusal.NOT_A_FILE) else 403
            log.info("http boot %s refused for %s: %s", name, request.remote, path.value)
            self._count("file", status)
            raise web.HTTPNotFound() if status == 404 else web.HTTPForbidden()
        wanted = request.headers.get(hdrs.RANGE)
        if wanted is not None and not range_ok(wanted):
            self._count("file", 416)
            size = path.stat().st_size
            raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
        profile = self.settings.profiles.get(name.lstrip("/"), UNKNOWN_PROFILE)
        metrics.BOOT_FETCHES_STARTED.labels(protocol="http", profile=profile).inc()
        response = _FileResponse(path)
        try:
            await response.prepare(request)
        except ConnectionError as exc:
            # The client went away mid-file (a reset, or a ROM that only wanted the headers).
            log.debug("http boot %s to %s ended early: %s", name, request.remote, exc)
            self._count("file", "aborted")
            return response
        if response.status == 200:
            metrics.BOOT_FETCHES_COMPLETED.labels(protocol="http", profile=profile).inc()
        self._count("file", response.status)
        return response


def service(site: Site) -> HttpBootServer:
    """Serve HTTP boot on ``boot.http_listen:boot.http_port``.

    Raises:
        ConfigError: a template file the config names cannot be read.
    """
    boot = site.config.boot
    return HttpBootServer(
        HttpBootSettings.from_config(site.config),
        site.index,
        host=boot.http_listen,
        port=boot.http_port,
        max_connections=boot.http_max_connections,
    )

"""The composition root: the store, the in-memory views, the admin API and every service, in one
``asyncio.TaskGroup``, with the process lifecycle around them.

Start-up: open the store at ``<site.data_dir>/ddi.sqlite``, apply the configured subnets, load
the IPAM index and subscribe it to committed changes, bind the admin API (unix socket, mode
0660; optionally TCP behind a bearer token), start the services, then tell systemd
``READY=1``.

Signals: SIGTERM/SIGINT stop (``STOPPING=1``; services are cancelled and clean up in their
``finally``; the process exits if that takes longer than ``SHUTDOWN_DEADLINE``). SIGHUP reloads
the config file: an invalid file is logged and the running config kept; a valid one re-syncs
the subnets and runs every ``reload_hooks`` entry. ``WATCHDOG=1`` goes out every half
``WATCHDOG_USEC`` while the event loop runs.

A service is a module with ``async def run(app: AppContext) -> None`` that serves until
cancelled; ``_start_services`` starts it when its config section enables it. Nothing else
lives here.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import stat
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

import ddi.boot.http
import ddi.boot.tftp
import ddi.dhcp.server
import ddi.dns.server
from ddi import __version__, metrics
from ddi.api import build_app
from ddi.config import Config, load_config
from ddi.errors import ConfigError, DdiError, StoreError
from ddi.heap import release_free_memory
from ddi.ipam.models import Change
from ddi.ipam.store import Store
from ddi.ipam.views import IpamIndex
from ddi.sdnotify import Notifier, run_watchdog, watchdog_interval
from ddi.site import Service

log = logging.getLogger(__name__)

SHUTDOWN_DEADLINE = 15.0
"""Seconds from SIGTERM until the process exits even if a service has not finished cleaning up
(below systemd's TimeoutStopSec=20 in the shipped unit)."""
API_SHUTDOWN_TIMEOUT = 5.0
"""Seconds in-flight admin API requests get to finish at shutdown."""
SERVICE_SETTLE = 0.1
"""Seconds between starting the services and ``READY=1``. Services bind their sockets as they
start; a service that cannot bind then fails the start (no READY=1, exit 1) instead of
stopping a daemon that systemd already took as running."""
STORE_FILE = "ddi.sqlite"
CONFIG_ACTOR = "config"
"""The change-log actor of changes that come from the config file (subnets)."""


class StartupError(DdiError):
    """The daemon cannot start for a reason the operator must fix (socket held, no access)."""


@dataclass
class AppContext:
    """What the daemon's parts share: the running config, the store, the read index, and the
    hooks through which services report statistics and react to a reload."""

    config: Config
    store: Store
    index: IpamIndex
    statistics: dict[str, Callable[[], Mapping[str, Any]]] = field(default_factory=dict)
    """area -> snapshot; ``ddi status`` shows each."""
    reload_hooks: list[Callable[[Config], Awaitable[None]]] = field(default_factory=list)
    """Awaited, in order, with the new config after a successful SIGHUP reload."""
    store_path: Path | None = None
    started: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)
    api_endpoints: list[str] = field(default_factory=list)
    """Where the admin API listens: the socket path, and ``tcp:host:port`` when enabled."""
    services: dict[str, Service] = field(default_factory=dict)
    """The running ``Service``s by name: where the API finds them."""

    async def status(self) -> dict[str, Any]:
        """The ``/v1/status`` document."""
        index = self.index
        now = time.time()
        leases = list(index.leases())
        statistics: dict[str, Any] = {}
        for area, snapshot in sorted(self.statistics.items()):
            try:
                statistics[area] = dict(snapshot())
            except Exception:  # one area's bug must not hide the others
                log.exception("statistics of %s failed", area)
                metrics.INTERNAL_ERRORS.labels(area="status").inc()
                statistics[area] = {"error": "statistics failed; see the daemon log"}
        return {
            "version": __version__,
            "site": self.config.site.id,
            "domain": self.config.site.domain,
            "config": str(self.config.path),
            "started": self.started,
            "uptime": round(time.monotonic() - self.started_monotonic, 3),
            "event_loop": type(asyncio.get_running_loop()).__module__.partition(".")[0],
            "api": list(self.api_endpoints),
            "store": {
                "path": None if self.store_path is None else str(self.store_path),
                "epoch": await self.store.epoch(),
                "last_seq": await self.store.last_seq(),
                "subnets": len(index.subnets()),
                "hosts": sum(1 for _ in index.hosts()),
                "leases": len(leases),
                "leases_bound": sum(1 for lease in leases if lease.active(now)),
                "records": sum(1 for _ in index.records()),
            },
            "statistics": statistics,
        }

    def refresh_metrics(self) -> None:
        """Set the gauges that are cheaper to read at scrape time than to keep current."""
        index = self.index
        metrics.STORE_OBJECTS.labels(kind="subnet").set(len(index.subnets()))
        metrics.STORE_OBJECTS.labels(kind="host").set(sum(1 for _ in index.hosts()))
        metrics.STORE_OBJECTS.labels(kind="lease").set(sum(1 for _ in index.leases()))
        metrics.STORE_OBJECTS.labels(kind="record").set(sum(1 for _ in index.records()))


def _count_changes(changes: Sequence[Change]) -> None:
    # One labelled increment per (kind, op) of the batch: a DHCP batch holds many leases.
    counts = collections.Counter((change.kind.value, change.op.value) for change in changes)
    for (kind, op), count in counts.items():
        metrics.STORE_CHANGES.labels(kind=kind, op=op).inc(count)
    if changes:
        metrics.STORE_LAST_SEQ.set(changes[-1].seq)
        metrics.STORE_EPOCH.set(changes[-1].epoch)


def _start_services(tg: asyncio.TaskGroup, app: AppContext) -> None:
    """Start every enabled service in the daemon's TaskGroup.

    One guarded line per area, in the form
    ``if config.dhcp.enabled: tg.create_task(ddi.dhcp.server.run(app), name="dhcp")``.
    """
    config = app.config
    # --- services: one line per area ---
    if config.dhcp.enabled:
        tg.create_task(ddi.dhcp.server.run(app), name="dhcp")
    if config.dns.enabled:
        tg.create_task(ddi.dns.server.run(app), name="dns")
    if config.sync is not None:
        # Loaded here: a site without [sync] does not carry its HTTP client and signatures.
        import sync.agent

        agent = sync.agent.SyncAgent(store=app.store, site=config.site.id, config=config.sync)
        app.services[agent.name] = agent
        app.statistics[agent.name] = agent.statistics
        tg.create_task(agent.run(), name="sync")
    if config.boot.tftp_enabled:
        tg.create_task(ddi.boot.tftp.run(app), name="tftp")
    if config.boot.http_enabled:
        tg.create_task(ddi.boot.http.run(app), name="http_boot")


def _services_enabled(old: Config, new: Config) -> list[tuple[str, bool, bool]]:
    """Which services each config starts; starting or stopping one needs a restart."""
    return [
        ("[dhcp]", old.dhcp.enabled, new.dhcp.enabled),
        ("[dns]", old.dns.enabled, new.dns.enabled),
        ("[boot] tftp", old.boot.tftp_enabled, new.boot.tftp_enabled),
        ("[boot] http", old.boot.http_enabled, new.boot.http_enabled),
        ("[sync]", old.sync is not None, new.sync is not None),
    ]


async def reload(app: AppContext) -> bool:
    """Read the config file again and apply it; on any refusal keep the running config.

    Returns:
        True when the new config is in force.
    """
    path = app.config.path
    try:
        config = load_config(path)
    except ConfigError as exc:
        log.error("reload refused, keeping the running config: config error: %s", exc)
        metrics.RELOADS.labels(result="config_error").inc()
        return False
    for what, old, new in (
        ("site", app.config.site, config.site),
        ("api", app.config.api, config.api),
    ):
        if old != new:
            log.warning("[%s] changed in %s: takes effect at the next restart", what, path)
    for what, was, now in _services_enabled(app.config, config):
        if was != now:
            state = "enabled" if now else "disabled"
            log.warning("%s %s in %s: takes effect at the next restart", what, state, path)
    try:
        await app.store.sync_subnets(config.subnets, actor=CONFIG_ACTOR, reason=f"reload of {path}")
    except StoreError as exc:
        log.error("reload refused, keeping the running config: subnets: %s", exc)
        metrics.RELOADS.labels(result="store_refused").inc()
        return False
    app.config = config
    for hook in list(app.reload_hooks):
        try:
            await hook(config)
        except Exception:  # a hook's bug must not stop the others or the daemon
            log.exception("reload hook %r failed", hook)
            metrics.INTERNAL_ERRORS.labels(area="reload").inc()
    metrics.RELOADS.labels(result="ok").inc()
    log.info("reloaded %s", path)
    return True


class _Stop(Exception):
    """Raised inside the TaskGroup to end it: the way out of ``serve``."""


async def _stop_on(event: asyncio.Event, notifier: Notifier, *, deadline: float | None) -> None:
    await event.wait()
    log.info("shutting down")
    notifier.notify("STOPPING=1")
    if deadline is not None:
        asyncio.get_running_loop().call_later(deadline, _deadline_passed, deadline)
    raise _Stop


def _deadline_passed(deadline: float) -> None:
    log.error("shutdown took longer than %.0fs; exiting without finishing it", deadline)
    logging.shutdown()
    os._exit(1)


async def _reload_on(event: asyncio.Event, app: AppContext, notifier: Notifier) -> None:
    while True:
        await event.wait()
        event.clear()
        notifier.reloading()
        await reload(app)
        notifier.notify("READY=1", _status_line(app))


def _status_line(app: AppContext) -> str:
    return f"STATUS=serving site {app.config.site.id}"


def _claim_socket_path(path: Path) -> None:
    """Make ``path`` free for a new listener: refuse when a live daemon answers on it,
    remove a stale socket left by one that died."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"api.socket: cannot create {path.parent}: {exc.strerror}") from None
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise StartupError(f"api.socket: {path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink(missing_ok=True)
            return
    raise StartupError(f"api.socket: another process is serving at {path}")


def _normalised(path: Path) -> Path:
    return Path(os.path.normpath(path))


def _bind_unix(path: Path) -> socket.socket:
    _claim_socket_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        # Before listen(): no client can connect while the mode is still the umask's.
        os.chmod(path, 0o660)
    except OSError as exc:
        sock.close()
        raise StartupError(f"api.socket: cannot listen on {path}: {exc.strerror}") from None
    return sock


def _bind_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise StartupError(f"api.listen: cannot listen on {host}:{port}: {exc.strerror}") from None


class _Api:
    """The admin API listeners: one runner per listener, so the TCP one can require a token."""

    def __init__(self) -> None:
        self._runners: list[web.AppRunner] = []
        self._socket: tuple[Path, int] | None = None

    async def start(self, app: AppContext) -> None:
        api = app.config.api
        unix = _bind_unix(api.socket)
        self._socket = (api.socket, os.stat(api.socket).st_ino)
        await self._add(build_app(app), unix)
        app.api_endpoints.append(str(_normalised(api.socket)))
        if api.listen is not None:
            tcp = _bind_tcp(*api.listen)
            await self._add(build_app(app, token=api.token), tcp)
            host, port = tcp.getsockname()[:2]
            app.api_endpoints.append(f"tcp:{host}:{port}")
        log.info("admin API on %s", ", ".join(app.api_endpoints))

    async def _add(self, application: web.Application, sock: socket.socket) -> None:
        runner = web.AppRunner(
            application,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=API_SHUTDOWN_TIMEOUT,
        )
        self._runners.append(runner)
        await runner.setup()
        await web.SockSite(runner, sock).start()

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self._socket is not None:
            path, inode = self._socket
            with contextlib.suppress(OSError):
                if path.lstat().st_ino == inode:
                    path.unlink()
            self._socket = None


def _prepare_data_dir(data_dir: Path) -> Path:
    """Create ``data_dir`` if needed and return the store's path in it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"site.data_dir: cannot create {data_dir}: {exc.strerror}") from None
    if not os.access(data_dir, os.R_OK | os.W_OK | os.X_OK):
        raise StartupError(f"site.data_dir: {data_dir} is not writable by this user")
    return Path(os.path.normpath(data_dir / STORE_FILE))


async def serve(config: Config, *, shutdown: asyncio.Event | None = None) -> None:
    """Run the daemon until ``shutdown`` is set (or, when it is None, SIGTERM/SIGINT).

    Without ``shutdown`` the daemon owns the process: it handles SIGTERM, SIGINT and SIGHUP
    and exits if shutdown overruns ``SHUTDOWN_DEADLINE``. With it (tests, embedding) no signal
    handler is installed; call ``reload(app)`` to reload.

    Raises:
        StartupError: the data dir or an API listener cannot be used.
    """
    own_process = shutdown is None
    stop = asyncio.Event() if shutdown is None else shutdown
    reload_requested = asyncio.Event()
    notifier = Notifier.from_environ()
    loop = asyncio.get_running_loop()

    store_path = _prepare_data_dir(config.site.data_dir)
    store = await Store.open(store_path)
    api = _Api()
    signals: list[signal.Signals] = []
    try:
        # Before the API answers: whoever sees the daemon up may signal it at once, and a
        # signal that arrives during start-up is acted on as soon as the TaskGroup runs.
        if own_process:
            for signum, event in (
                (signal.SIGTERM, stop),
                (signal.SIGINT, stop),
                (signal.SIGHUP, reload_requested),
            ):
                loop.add_signal_handler(signum, event.set)
                signals.append(signum)
        try:
            await store.sync_subnets(
                config.subnets, actor=CONFIG_ACTOR, reason=f"start with {config.path}"
            )
        except StoreError as exc:
            raise StartupError(f"subnets: {exc}") from None
        index = await IpamIndex.load(store)
        store.subscribe(index.apply)
        store.subscribe(_count_changes)
        app = AppContext(config=config, store=store, index=index, store_path=store_path)
        metrics.BUILD.info({"version": __version__})
        metrics.STORE_LAST_SEQ.set(await store.last_seq())
        metrics.STORE_EPOCH.set(await store.epoch())
        await api.start(app)
        try:
            async with asyncio.TaskGroup() as tg:
                _start_services(tg, app)
                tg.create_task(_reload_on(reload_requested, app, notifier), name="reload")
                interval = watchdog_interval()
                if interval is not None and notifier.enabled:
                    tg.create_task(run_watchdog(notifier, interval), name="watchdog")
                tg.create_task(
                    _stop_on(stop, notifier, deadline=SHUTDOWN_DEADLINE if own_process else None),
                    name="stop",
                )
                await asyncio.sleep(SERVICE_SETTLE)
                release_free_memory()  # what loading the index freed
                metrics.STARTED.set(app.started)
                notifier.notify("READY=1", _status_line(app), f"MAINPID={os.getpid()}")
                log.info("ddi %s serving site %s", __version__, config.site.id)
        except* _Stop:
            pass
    finally:
        try:
            await api.stop()
            await store.close()
        finally:
            # Last: a repeated SIGTERM during the shutdown must not cut it short.
            for signum in signals:
                loop.remove_signal_handler(signum)
    log.info("stopped")


def run_daemon(config: Config) -> None:
    """Run ``serve(config)`` on uvloop when it is installed, else on the default loop."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop
    except ImportError:
        pass
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(config))

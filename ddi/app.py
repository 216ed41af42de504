"""The composition root: the site, the admin API and every service, in one ``asyncio.TaskGroup``,
with the process lifecycle around them.

Start-up: the daemon locks ``<site.data_dir>/ddi.lock`` (one daemon a data directory; a second
is refused with the first one's pid); ``ddi.site.open_site`` opens the store at
``<site.data_dir>/ddi.sqlite``, applies the configured subnets and loads the IPAM index; then
the admin API binds (unix socket, mode 0660; optionally TCP behind a bearer token), every
enabled service is built from the site and started, and systemd hears ``READY=1``.

Signals: SIGTERM/SIGINT stop (``STOPPING=1``; the TaskGroup's tasks are cancelled, then every
service is closed; the process exits if that takes longer than ``SHUTDOWN_DEADLINE``). SIGHUP
(and ``POST /v1/reload``) reloads the config file: an invalid file, or one whose subnets would
orphan reservations or active leases (unless forced), is refused and the running config kept;
a valid one re-syncs the subnets and is handed to every service's ``reload``. ``WATCHDOG=1``
goes out every half ``WATCHDOG_USEC`` while the event loop runs. The change log's retention
(``[ipam]``) runs every ``retention_interval``.

A service is a ``ddi.site.Service`` built by its module's ``service(site)``; ``_build_services``
names each, guarded by its config section. Nothing else lives here, and nothing below imports
this module.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import fcntl
import logging
import os
import signal
import socket
import ssl
import stat
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

import ddi.boot.http
import ddi.boot.tftp
import ddi.dhcp.server
import ddi.dhcp6.server
import ddi.dns.server
import ddi.ra.service
from ddi import __version__, metrics
from ddi.api import build_app
from ddi.api.auth import Authenticator
from ddi.config import Config, load_config
from ddi.config.site import TOKENS_FILE
from ddi.errors import ConfigError, DdiError, StoreError, StoreWriteFailed
from ddi.heap import collections_paused, release_free_memory, settle
from ddi.ipam.models import Change
from ddi.ipam.orphans import orphaned, summary
from ddi.reloads import ReloadOutcome, ReloadResult
from ddi.sdnotify import Notifier, run_watchdog, watchdog_interval
from ddi.site import CONFIG_ACTOR, STORE_FILE, Service, Site, SiteOpenError, open_site
from ddi.tokens import TokenFile
from ddi.web.tls import self_signed, server_context

log = logging.getLogger(__name__)

SHUTDOWN_DEADLINE = 15.0
"""Seconds from SIGTERM until the process exits even if a service has not finished cleaning up
(below systemd's TimeoutStopSec=20 in the shipped unit)."""
API_SHUTDOWN_TIMEOUT = 5.0
"""Seconds in-flight admin API requests get to finish at shutdown."""
SERVICE_SETTLE = 0.1
"""Seconds between starting the services and ``READY=1``: a task a service spawned that fails
at once (a listener it could not use) fails the start (no READY=1, exit 1) instead of stopping
a daemon that systemd already took as running."""


STORE_CHECK_INTERVAL = 30.0
"""Seconds between two looks at the free space of the data directory."""


class StartupError(DdiError):
    """The daemon cannot start for a reason the operator must fix (socket held, no access)."""


@dataclass
class App:
    """The running daemon as the admin API sees it (``ddi.api.Daemon``): the site, the
    services that are running, and where the API listens."""

    site: Site
    services: dict[str, Service] = field(default_factory=dict)
    """name -> running service; ``ddi status`` shows each one's ``statistics()``."""
    endpoints: list[str] = field(default_factory=list)
    """Where the admin API listens: the socket path, and ``tcp:host:port`` when enabled."""
    last_reload: ReloadResult | None = None
    """The last reload's result (None: none since start)."""
    tls_fingerprint: str | None = None
    """SHA-256 of the TCP listener's certificate (``AB:CD:...``); None without TLS."""
    owns_process: bool = False
    """The daemon runs the process (``run_daemon``): the heap policy (``ddi.heap``) is its to
    set. Embedded (tests) it leaves the host process's collector alone."""

    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def reload(self, *, force: bool = False) -> ReloadResult:
        """:func:`reload` this app, one reload at a time (SIGHUP and ``POST /v1/reload``)."""
        async with self._reload_lock:
            return await reload(self, force=force)


def _count_changes(changes: Sequence[Change]) -> None:
    # One labelled increment per (kind, op) of the batch: a DHCP batch holds many leases.
    counts = collections.Counter((change.kind.value, change.op.value) for change in changes)
    for (kind, op), count in counts.items():
        metrics.STORE_CHANGES.labels(kind=kind, op=op).inc(count)
    if changes:
        metrics.STORE_LAST_SEQ.set(changes[-1].seq)
        metrics.STORE_EPOCH.set(changes[-1].epoch)


def _build_services(site: Site) -> list[Service]:
    """Every service the config enables, built (not started), in start order.

    One guarded line per area, in the form
    ``if config.dhcp.enabled: services.append(ddi.dhcp.server.service(site))``.
    """
    config = site.config
    services: list[Service] = []
    # --- services: one line per area ---
    # DNS first: a name answers before the first lease that publishes it is granted.
    if config.dns.enabled:
        services.append(ddi.dns.server.service(site))
    if config.dhcp.enabled:
        services.append(ddi.dhcp.server.service(site))
    if config.dhcp6.enabled:
        services.append(ddi.dhcp6.server.service(site))
    if any(s.ra.enabled for s in config.subnets6):
        services.append(ddi.ra.service.service(site))
    if config.sync is not None:
        # Loaded here: a site without [sync] does not carry its HTTP client and signatures.
        import sync.agent

        services.append(sync.agent.service(site))
    if config.boot.tftp_enabled:
        services.append(ddi.boot.tftp.service(site))
    if config.boot.http_enabled:
        services.append(ddi.boot.http.service(site))
    return services


async def _close_services(app: App, services: Sequence[Service]) -> None:
    """Close every service, the last started first; one failing does not spare the others."""
    for service in reversed(services):
        app.services.pop(service.name, None)
        try:
            await service.close()
        except Exception:  # a service's bug must not leave the others open
            log.exception("closing %s failed", service.name)


def _services_enabled(old: Config, new: Config) -> list[tuple[str, bool, bool]]:
    """Which services each config starts; starting or stopping one needs a restart."""
    return [
        ("[dhcp]", old.dhcp.enabled, new.dhcp.enabled),
        ("[dns]", old.dns.enabled, new.dns.enabled),
        ("[boot] tftp", old.boot.tftp_enabled, new.boot.tftp_enabled),
        ("[boot] http", old.boot.http_enabled, new.boot.http_enabled),
        ("[sync]", old.sync is not None, new.sync is not None),
    ]


async def reload(app: App, *, force: bool = False) -> ReloadResult:
    """Read the config file again and apply it; on any refusal keep the running config.

    A config whose subnets would orphan reservations or active leases (a subnet removed or
    shrunk past them) is refused naming them, unless ``force``. The result is kept as
    ``app.last_reload`` and in the ``ddi_reload_*`` gauges.
    """
    result = await _reload(app, force=force)
    app.last_reload = result
    metrics.RELOADS.labels(result="ok" if result.applied else result.outcome.value).inc()
    metrics.RELOAD_SUCCESS.set(1 if result.applied else 0)
    metrics.RELOAD_TIME.set(result.at)
    metrics.RELOAD_ORPHANS.set(len(result.orphans))
    if result.applied:
        log.info("reloaded %s%s", result.path, " (forced)" if result.forced else "")
    else:
        log.error("reload refused, keeping the running config: %s", result.reason)
    return result


async def _reload(app: App, *, force: bool) -> ReloadResult:
    site = app.site
    path = site.config.path

    def refused(outcome: ReloadOutcome, reason: str, **extra: Any) -> ReloadResult:
        return ReloadResult(outcome=outcome, path=str(path), at=time.time(), reason=reason,
                            **extra)  # fmt: skip

    try:
        config = load_config(path)
    except ConfigError as exc:
        return refused(ReloadOutcome.CONFIG_ERROR, f"config error: {exc}")
    restart: list[str] = []
    for what, old, new in (
        ("[site]", site.config.site, config.site),
        ("[api]", site.config.api, config.api),
    ):
        if old != new:
            restart.append(f"{what} changed")
    for what, was, now in _services_enabled(site.config, config):
        if was != now:
            restart.append(f"{what} {'enabled' if now else 'disabled'}")
    for what in restart:
        log.warning("%s in %s: takes effect at the next restart", what, path)
    orphans = orphaned(
        config.subnets,
        site.index.hosts(),
        site.index.leases(),
        time.time(),
        subnets6=config.subnets6,
        leases6=site.index.leases6(),
    )
    if orphans and not force:
        return refused(
            ReloadOutcome.ORPHANS,
            f"the new subnets would orphan {len(orphans)}: {summary(orphans)}"
            " (fix the file, or reload with --force)",
            orphans=tuple(orphans),
        )
    try:
        await site.store.sync_subnets(
            config.subnets, actor=CONFIG_ACTOR, reason=f"reload of {path}"
        )
        await site.store.sync_subnets6(
            config.subnets6, actor=CONFIG_ACTOR, reason=f"reload of {path}"
        )
    except StoreError as exc:
        return refused(ReloadOutcome.STORE_REFUSED, f"subnets: {exc}")
    site.config = config
    _configure_store(site)
    for service in list(app.services.values()):
        try:
            await service.reload(config)
        except Exception:  # a service's bug must not stop the others or the daemon
            log.exception("reload of %s failed", service.name)
            metrics.INTERNAL_ERRORS.labels(area="reload").inc()
    if orphans:
        log.warning("reload forced: orphaned %s", summary(orphans))
    if app.owns_process:
        settle(rebuilt=True)  # the reloaded zones replace frozen ones: freeze the new set
    return ReloadResult(
        outcome=ReloadOutcome.APPLIED,
        path=str(path),
        at=time.time(),
        orphans=tuple(orphans),
        forced=force and bool(orphans),
        restart_needed=tuple(restart),
    )


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


async def _reload_on(event: asyncio.Event, app: App, notifier: Notifier) -> None:
    while True:
        await event.wait()
        event.clear()
        notifier.reloading()
        await app.reload()
        notifier.notify("READY=1", _status_line(app))


async def watch_store(site: Site, *, interval: float = STORE_CHECK_INTERVAL) -> None:
    """Warn when the data directory runs low on space (``ddi.ipam.store_health``), and while it
    is low checkpoint the WAL back to zero bytes, so the log is not what fills the disk."""
    low = False
    while True:
        space = await asyncio.to_thread(site.store.disk_space)
        if space.low:
            if not low:
                log.warning(
                    "the data directory %s is low on space: %d MiB free of %d MiB; "
                    "writes fail when it is full (checkpointing the WAL meanwhile)",
                    site.store_path.parent,
                    space.free // 2**20,
                    space.total // 2**20,
                )
            with contextlib.suppress(StoreWriteFailed):  # counted and logged by the store
                await site.store.checkpoint()
        elif low:
            log.info("the data directory %s has room again", site.store_path.parent)
        low = space.low
        await asyncio.sleep(interval)


def _configure_store(site: Site) -> None:
    """The store settings the config gives: how often a quiet renewal is logged, and the name
    server's name, owned like a reservation's (no host or address record may take it)."""
    config = site.config
    site.store.renewal_log_interval = config.ipam.renewal_log_interval
    ns_name = config.dns.ns_name.lower().rstrip(".")
    if "." not in ns_name:  # as the zones read it (ddi.dns.responder)
        ns_name = f"{ns_name}.{config.site.domain}"
    site.store.name_server = ns_name if config.dns.enabled else None


async def keep_log(site: Site) -> None:
    """Apply the change log's retention (``[ipam]``) now and every ``retention_interval``:
    entries past the age or the count go, but with ``[sync]`` none central has not
    acknowledged (``ddi.ipam.store_retention``)."""
    while True:
        ipam = site.config.ipam
        cursor = None
        if site.config.sync is not None:
            cursor = (await site.store.sync.cursors()).cursor
        older_than = time.time() - ipam.retention_days * 86400 if ipam.retention_days else None
        with contextlib.suppress(StoreWriteFailed):  # counted and logged by the store
            deleted = await site.store.log.trim(
                older_than=older_than,
                keep=ipam.retention_entries or None,
                protect_after=cursor,
            )
            if deleted:
                metrics.LOG_TRIMMED.inc(deleted)
                log.info("change log: %d entries past the retention deleted", deleted)
        await asyncio.sleep(ipam.retention_interval)


def _status_line(app: App) -> str:
    return f"STATUS=serving site {app.site.config.site.id}"


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


def _tokens_file(path: Path) -> TokenFile:
    try:
        return TokenFile(path)
    except ConfigError as exc:
        raise StartupError(f"api.tokens_file: {exc}") from None


def _tls_context(app: App) -> ssl.SSLContext:
    """The TCP listener's TLS context from ``[api] tls_cert``/``tls_key``, or the self-signed
    pair of the data directory (made on first start); sets ``app.tls_fingerprint``."""
    config = app.site.config
    api = config.api
    if api.tls_cert is not None and api.tls_key is not None:
        cert, key, where = api.tls_cert, api.tls_key, "api.tls_cert"
    else:
        host = api.listen[0] if api.listen is not None else ""
        names = [host, config.site.id, socket.gethostname(), "localhost"]
        try:
            cert, key = self_signed(
                config.site.data_dir, names, now=datetime.datetime.now(datetime.UTC)
            )
        except OSError as exc:
            raise StartupError(
                f"api: cannot make a TLS certificate in site.data_dir: {exc}"
            ) from None
        where = f"api: {cert}"
    try:
        context, app.tls_fingerprint = server_context(cert, key)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise StartupError(f"{where}: cannot load the TLS certificate and key: {exc}") from None
    return context


class _Api:
    """The admin API listeners: one runner per listener, so the TCP one can require a token."""

    def __init__(self) -> None:
        self._runners: list[web.AppRunner] = []
        self._socket: tuple[Path, int] | None = None

    async def start(self, app: App) -> None:
        api = app.site.config.api
        tokens = _tokens_file(api.tokens_file or app.site.config.site.data_dir / TOKENS_FILE)
        unix = _bind_unix(api.socket)
        self._socket = (api.socket, os.stat(api.socket).st_ino)
        await self._add(build_app(app, tokens=tokens), unix)
        app.endpoints.append(str(_normalised(api.socket)))
        if api.listen is not None:
            context = _tls_context(app) if api.tls else None
            auth = Authenticator(tokens=tokens, legacy=api.token, secure=context is not None)
            tcp = _bind_tcp(*api.listen)
            await self._add(build_app(app, auth=auth), tcp, context)
            host, port = tcp.getsockname()[:2]
            app.endpoints.append(f"tcp:{host}:{port}")
            if app.tls_fingerprint is not None:
                log.info("admin API TLS certificate SHA-256 %s", app.tls_fingerprint)
        log.info("admin API on %s", ", ".join(app.endpoints))

    async def _add(
        self,
        application: web.Application,
        sock: socket.socket,
        context: ssl.SSLContext | None = None,
    ) -> None:
        runner = web.AppRunner(
            application,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=API_SHUTDOWN_TIMEOUT,
        )
        self._runners.append(runner)
        await runner.setup()
        await web.SockSite(runner, sock, ssl_context=context).start()

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


LOCK_FILE = "ddi.lock"
"""In ``site.data_dir``: held locked (flock) by the daemon serving that directory, and holding
its pid."""


def _lock_data_dir(data_dir: Path) -> int:
    """Take the data directory for this process: an exclusive ``flock`` on ``data_dir/ddi.lock``,
    held as long as the returned descriptor is open (the kernel drops it when the process dies,
    however it dies, so there is never a stale lock to clean up).

    Two daemons on one store would both answer every broadcast from their own view of it.

    Raises:
        StartupError: another process holds the lock; the message names its pid.
    """
    path = data_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StartupError(f"site.data_dir: cannot open {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StartupError(
            f"site.data_dir: {data_dir} is in use by another ddi process (pid {holder}); "
            "stop it first, or give this one another data_dir"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise StartupError(f"site.data_dir: cannot lock {path}: {exc.strerror}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


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
    lock = _lock_data_dir(config.site.data_dir)
    signals: list[signal.Signals] = []
    # Start-up loads what the daemon keeps (index, zones, compiled answers): automatic
    # collections would walk it again and again and find nothing (ddi.heap).
    starting = contextlib.ExitStack()
    if own_process:
        starting.enter_context(collections_paused())
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(os.close, lock)  # last out: the store is closed by then
            stack.callback(starting.close)  # a failed start-up turns collections back on
            try:
                site = await stack.enter_async_context(open_site(config, store_path=store_path))
            except SiteOpenError as exc:
                raise StartupError(f"subnets: {exc}") from None
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
            site.store.subscribe(_count_changes)
            _configure_store(site)
            app = App(site, owns_process=own_process)
            metrics.BUILD.info({"version": __version__})
            metrics.STORE_LAST_SEQ.set(await site.store.last_seq())
            metrics.STORE_EPOCH.set(await site.store.epoch())
            api = _Api()
            stack.push_async_callback(api.stop)
            await api.start(app)
            services = _build_services(site)
            # Closed after the TaskGroup has ended (its tasks cancelled), before the API stops.
            stack.push_async_callback(_close_services, app, services)
            try:
                async with asyncio.TaskGroup() as tg:
                    for service in services:
                        await service.start(tg)
                        app.services[service.name] = service
                    tg.create_task(_reload_on(reload_requested, app, notifier), name="reload")
                    tg.create_task(watch_store(site), name="store-watch")
                    tg.create_task(keep_log(site), name="log-retention")
                    interval = watchdog_interval()
                    if interval is not None and notifier.enabled:
                        tg.create_task(run_watchdog(notifier, interval), name="watchdog")
                    tg.create_task(
                        _stop_on(
                            stop, notifier, deadline=SHUTDOWN_DEADLINE if own_process else None
                        ),
                        name="stop",
                    )
                    await asyncio.sleep(SERVICE_SETTLE)
                    if own_process:
                        # Frozen once loaded: no full collection walks the index and the zones
                        # while serving (a ~100 ms stop of the loop on a large site). Before
                        # collections resume: the first would walk all that start-up made.
                        frozen = settle()
                        log.debug("heap settled: %d long-lived objects frozen", frozen)
                    else:
                        release_free_memory()  # what loading the index freed
                    starting.close()
                    metrics.STARTED.set(site.started)
                    notifier.notify("READY=1", _status_line(app), f"MAINPID={os.getpid()}")
                    log.info("ddi %s serving site %s", __version__, config.site.id)
            except* _Stop:
                pass
    finally:
        # Last: a repeated SIGTERM during the shutdown must not cut it short.
        for signum in signals:
            loop.remove_signal_handler(signum)
    log.info("stopped")


def run_daemon(config: Config, *, trace_stalls: float | None = None) -> None:
    """Run ``serve(config)`` on uvloop when it is installed, else on the default loop;
    ``trace_stalls`` (seconds): log every stop of the loop longer than that (``ddi.stalls``)."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop
    except ImportError:
        pass
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_traced(serve(config), trace_stalls))


async def _traced(main: Coroutine[Any, Any, None], threshold: float | None) -> None:
    if threshold is None:
        return await main
    from ddi.stalls import StallTracer

    tracer = StallTracer(asyncio.get_running_loop(), threshold)
    tracer.start()
    try:
        await main
    finally:
        tracer.stop()

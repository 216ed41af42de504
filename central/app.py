"""The central collector: an aiohttp service that every edge dials out to.

Routes (JSON):

* ``GET  /v1/sites``                       enrolled sites and their cursors
* ``GET  /v1/sites/{site}``                the site's cursor: epoch, applied_seq, snapshot
                                           progress (where an edge resumes)
* ``POST /v1/sites/{site}/batches``        a signed batch → ``{result, epoch, applied_seq}``
  (200 applied/duplicate; 409 gap with ``expected`` or snapshot_needed; 403/404/400 refused)
* ``POST /v1/sites/{site}/snapshot``       a signed snapshot page → ``{result, next_page, …}``
* ``POST /v1/sites/{site}/conflicts``      a signed conflict report from the site
* ``GET  /v1/sites/{site}/down?after=N``   the site's down log, signed with central's key
* ``GET  /v1/changes?after=N&limit=M``     the pull feed over every site, by ``gseq``
* ``GET  /v1/sites/{site}/changes?after=N`` the same for one site
* ``GET  /v1/sites/{site}/hosts|leases|records|subnets|subnet6s|lease6s``  current objects
* ``GET  /v1/conflicts``, ``/healthz``, ``/metrics``

A refused message (unknown site, bad signature, another site's batch, a replay) is counted in
``ddi_sync_central_refused_total`` and changes nothing else; refusals for an enrolled site are
also counted in the store's refusal table (a row per site and reason; an unknown site adds no
row, so made-up names cannot grow the database).

Uploads (``sync.protocol.Upload``): the site and the signed header (``X-DDI-Signed``) are
checked before a byte of the body is read; then exactly the signed ``length`` bytes are
streamed in (at most ``max_body_bytes``) and must hash to the signed ``sha256``. The body is
read whole before anything is applied, so a connection cut mid-body applies nothing. At most
``max_unauthenticated`` requests are between arrival and their authentication at a time; past
that central answers 503 at once.

Credentials are separate: a site's key signs its uploads and its own cursor and down-log
reads, and nothing else; a token (``Authorization: Bearer``, see ``central.auth``) reads the
feed, objects and conflicts (``read``, narrowed to some sites or not) or the metrics alone
(``metrics``), and cannot post. Without a tokens file or a read token central listens on
loopback only. The fleet console (``central.console``) is mounted at ``/``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import signal
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central import admission, auth, console, metrics
from central.config import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_UNAUTHENTICATED,
    DEFAULT_STALE_AFTER,
    CentralConfig,
    load_signing_key,
)
from central.limits import Busy, Gate
from central.nautobot.config import NautobotConfig
from central.sql import Outcome, SiteInfo
from central.store import CentralStore, open_store
from ddi.errors import ConfigError, SyncRefused
from ddi.ipam.models import Kind
from ddi.sdnotify import Notifier, run_watchdog, watchdog_interval
from ddi.tokens import Token
from sync import protocol
from sync.protocol import Apply, Duplicate, Gap, NeedSnapshot, Refuse

log = logging.getLogger(__name__)

STORE_KEY = web.AppKey("store", CentralStore)
READERS = web.AppKey("readers", auth.Readers)
"""The tokens that may read (the pull feed, objects, conflicts, metrics, the console)."""
CONTACTS = web.AppKey("contacts", dict[str, float])
"""When this process last wrote each site's ``last_contact``."""
STALE_AFTER = web.AppKey("stale_after", float)
TOKEN = web.RequestKey("token", Token)
"""The token a read was let through with."""
CONTACT_RESOLUTION = 10.0
"""Seconds between two writes of a site's last contact (a quarter of ``stale_after`` when
that is shorter), so the console's "last seen" is at most this late."""
SIGNING_KEY = web.AppKey("signing_key", Ed25519PrivateKey)
GATE = web.AppKey("gate", Gate)
MAX_BODY = web.AppKey("max_body", int)
FEED_LIMIT = 10_000
# --- handlers ---


def _refused(site: str, reason: str, detail: str = "") -> web.Response:
    metrics.REFUSED.labels(reason=reason).inc()
    status = {"unknown_site": 404, "malformed": 400, "version": 400, "too_large": 413}.get(
        reason, 403
    )
    log.warning("refused message for site %s: %s %s", site, reason, detail)
    return web.json_response(
        {"result": "refused", "reason": reason, "detail": detail}, status=status
    )


def _unknown_site(site: str) -> web.Response:
    """Counted in the metric only: a row per made-up name would let anyone grow the store,
    and a log line per request would let anyone flood the journal."""
    metrics.REFUSED.labels(reason="unknown_site").inc()
    log.debug("refused message for an unknown site %r", site)
    return web.json_response(
        {"result": "refused", "reason": "unknown_site", "detail": ""}, status=404
    )


async def _refuse_and_count(
    store: CentralStore, site: str, reason: str, detail: str = ""
) -> web.Response:
    """A refusal for an enrolled ``site`` (a row per site and reason in the store)."""
    await store.count_refusal(site, reason)
    return _refused(site, reason, detail)


def _answer(outcome: Outcome, count: int) -> web.Response:
    decision = outcome.decision
    body: dict[str, Any] = {
        "epoch": outcome.epoch,
        "applied_seq": outcome.applied_seq,
        "next_page": outcome.snapshot_next_page,
    }
    match decision:
        case Apply():
            metrics.BATCHES.labels(result="applied").inc()
            metrics.ENTRIES.inc(count)
            return web.json_response(body | {"result": "applied"})
        case Duplicate():
            metrics.BATCHES.labels(result="duplicate").inc()
            return web.json_response(body | {"result": "duplicate"})
        case Gap(expected=expected):
            metrics.BATCHES.labels(result="gap").inc()
            return web.json_response(body | {"result": "gap", "expected": expected}, status=409)
        case NeedSnapshot():
            metrics.BATCHES.labels(result="snapshot_needed").inc()
            return web.json_response(body | {"result": "snapshot_needed"}, status=409)
        case Refuse():
            raise AssertionError("refusals are answered by the caller")


def _header(request: web.Request, name: str) -> str | None:
    """A request header as printable ASCII, or None (absent, or bytes that are not: the
    parser hands non-UTF-8 bytes over as surrogates, which no credential contains)."""
    value = request.headers.get(name)
    if value is None or not value.isascii() or not value.isprintable():
        return None
    return value


def _busy() -> web.Response:
    metrics.BUSY.inc()
    return web.json_response(
        {"error": "busy", "message": "too many requests awaiting authentication"},
        status=503,
        headers={"Retry-After": "1"},
    )


async def _known_site(request: web.Request, site: str) -> SiteInfo | None:
    if not protocol.valid_site_id(site):
        return None
    return await request.app[STORE_KEY].site(site)


async def _read_body(request: web.Request, length: int) -> bytes | None:
    """Exactly ``length`` bytes of body, or None when the client sends another amount."""
    declared = request.content_length
    if declared is not None and declared != length:
        return None
    chunks: list[bytes] = []
    got = 0
    # One byte past the signed length tells a longer body from an exact one.
    while got <= length:
        chunk = await request.content.read(min(1 << 16, length + 1 - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks) if got == length else None


async def _upload(
    request: web.Request, type_: str
) -> tuple[SiteInfo, protocol.SignedHeader, bytes] | web.Response:
    """The enrolled site, the verified signed header and the body of an upload, or the
    refusal. Nothing of the body is read before the header's signature is verified."""
    store = request.app[STORE_KEY]
    site = request.match_info["site"]
    try:
        with request.app[GATE].slot():
            info = await _known_site(request, site)
            if info is None:
                return _unknown_site(site)
            try:
                signed = protocol.read_signed_header(_header(request, protocol.SIGNED_HEADER))
            except SyncRefused as exc:
                return await _refuse_and_count(store, site, exc.reason, exc.detail)
            refused = admission.admit(
                signed, info.state(), site=site, type_=type_, max_body=request.app[MAX_BODY]
            )
            if refused is not None:
                return await _refuse_and_count(store, site, refused.reason.value, refused.detail)
    except Busy:
        return _busy()
    body = await _read_body(request, signed.length)
    if body is None:
        return await _refuse_and_count(store, site, "malformed", "body length is not the signed")
    if hashlib.sha256(body).hexdigest() != signed.sha256:
        return await _refuse_and_count(store, site, "bad_digest", "body is not the signed one")
    return info, signed, body


async def post_batch(request: web.Request) -> web.Response:
    async def apply(
        store: CentralStore, site: str, signed: protocol.SignedHeader, body: bytes
    ) -> tuple[Outcome, int]:
        batch = protocol.with_entries(protocol.batch_header(signed), body)
        return await store.apply_batch(site, batch), len(batch.entries)

    return await _apply_upload(request, protocol.BATCH_TYPE, apply)


async def post_snapshot(request: web.Request) -> web.Response:
    async def apply(
        store: CentralStore, site: str, signed: protocol.SignedHeader, body: bytes
    ) -> tuple[Outcome, int]:
        page = protocol.with_objects(protocol.snapshot_header(signed), body)
        return await store.apply_snapshot_page(site, page), len(page.objects)

    return await _apply_upload(request, protocol.SNAPSHOT_TYPE, apply)


async def _apply_upload(
    request: web.Request,
    kind: str,
    apply: Callable[
        [CentralStore, str, protocol.SignedHeader, bytes], Awaitable[tuple[Outcome, int]]
    ],
) -> web.Response:
    """Read an upload of ``kind`` (signed header first, then the body it names) and apply it;
    a refusal, from the body's decoding or from admission, is answered and counted."""
    store = request.app[STORE_KEY]
    site = request.match_info["site"]
    upload = await _upload(request, kind)
    if isinstance(upload, web.Response):
        return upload
    _, signed, body = upload
    try:
        outcome, count = await apply(store, site, signed, body)
    except SyncRefused as exc:
        return await _refuse_and_count(store, site, exc.reason, exc.detail)
    if isinstance(outcome.decision, Refuse):
        return await _refuse_and_count(
            store, site, outcome.decision.reason.value, outcome.decision.detail
        )
    return _answer(outcome, count)


async def post_conflicts(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    site = request.match_info["site"]
    upload = await _upload(request, protocol.CONFLICTS_TYPE)
    if isinstance(upload, web.Response):
        return upload
    try:
        conflicts = protocol.read_conflicts(upload[2])
    except SyncRefused as exc:
        return await _refuse_and_count(store, site, exc.reason, exc.detail)
    count = await store.add_conflicts(site, conflicts)
    return web.json_response({"result": "recorded", "count": count})


def _int_query(request: web.Request, name: str, default: int, hi: int | None = None) -> int:
    raw = request.query.get(name)
    value = default if raw is None else protocol.parse_count(raw)
    if value is None:
        raise web.HTTPBadRequest(
            text=f'{{"error": "bad_request", "message": "{name} must be a non-negative integer"}}',
            content_type="application/json",
        )
    return min(value, hi) if hi is not None else value


async def _site_request_refused(request: web.Request, site: str) -> web.Response | None:
    """A refusal unless the request carries ``site``'s valid signature (see
    ``protocol.verify_request``)."""
    store = request.app[STORE_KEY]
    try:
        with request.app[GATE].slot():
            info = await _known_site(request, site)
            if info is None:
                return _unknown_site(site)
            refused = protocol.verify_request(
                _header(request, protocol.AUTH_HEADER),
                site=site,
                method=request.method,
                path=request.path_qs,
                now=time.time(),
                public_key=info.public_key,
            )
            if refused is None:
                await _contact(request, site)
                return None
            return await _refuse_and_count(store, site, refused.reason.value, refused.detail)
    except Busy:
        return _busy()


async def _contact(request: web.Request, site: str) -> None:
    """Record that ``site`` made an authenticated request: its cursor poll says it is alive
    even when it has nothing to upload. Written at most once per ``CONTACT_RESOLUTION`` per
    site and process, so fifty sites polling every few seconds cost few commits."""
    now = time.time()
    written = request.app[CONTACTS]
    resolution = min(CONTACT_RESOLUTION, request.app[STALE_AFTER] / 4)
    if now - written.get(site, 0.0) < resolution:
        return
    written[site] = now
    await request.app[STORE_KEY].touch(site, now)


def _reader_refused(
    request: web.Request, scope: str = "read", site: str | None = None
) -> web.Response | None:
    """The pull feed, object reads and metrics need ``Authorization: Bearer <token>`` with
    ``scope`` (and ``site`` among its sites) when the collector has credentials (it must,
    beyond loopback): 401 without a valid token, 403 with one that does not reach. A site's
    signature is no read credential."""
    readers = request.app[READERS]
    if readers.open:
        return None
    token = readers.bearer(_header(request, "Authorization"))
    if token is None:
        return web.json_response(
            {"error": "unauthorized", "message": "a bearer token is required"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not token.allows(scope, site):
        what = f"site {site}" if token.allows(scope) else scope
        return web.json_response(
            {"error": "forbidden", "message": f"token {token.name} does not reach {what}"},
            status=403,
        )
    request[TOKEN] = token
    return None


def _reader(request: web.Request) -> Token:
    """The token ``_reader_refused`` let through (``auth.OPEN`` when reads are open)."""
    token: Token | None = request.get(TOKEN)
    return auth.OPEN if token is None else token


async def get_down(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    site = request.match_info["site"]
    refused = await _site_request_refused(request, site)
    if refused is not None:
        return refused
    after = _int_query(request, "after", 0)
    limit = _int_query(request, "limit", 200, hi=1000)
    entries = await store.down(site, after=after, limit=limit)
    envelope = protocol.seal(
        protocol.DOWN_TYPE,
        site=site,
        body={"after": after, "entries": [e.to_image() for e in entries]},
        key=request.app[SIGNING_KEY],
    )
    return web.Response(body=protocol.encode_envelope(envelope), content_type="application/json")


async def get_site(request: web.Request) -> web.Response:
    """The site's cursor: for the site itself (signed request) or a reader."""
    site = request.match_info["site"]
    if request.headers.get(protocol.AUTH_HEADER) is not None:
        refused = await _site_request_refused(request, site)
    else:
        refused = _reader_refused(request, site=site)
    if refused is not None:
        return refused
    info = await _known_site(request, site)
    if info is None:
        return web.json_response({"error": "not_found", "message": f"no site {site}"}, status=404)
    return web.json_response(info.to_image())


async def get_sites(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    refused = _reader_refused(request)
    if refused is not None:
        return refused
    token = _reader(request)
    refusals = await store.refusals()
    sites = await store.sites()
    known = {s.site for s in sites}
    return web.json_response(
        {
            "sites": [
                s.to_image() | {"refused": refusals.get(s.site, {})}
                for s in sites
                if auth.site_visible(token, s.site)
            ],
            # Rows a site left before it was removed (unknown sites add none).
            "refused_unknown": {
                k: v for k, v in refusals.items() if k not in known and token.sites is None
            },
        }
    )


async def get_changes(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    site = request.match_info.get("site")
    refused = _reader_refused(request, site=site)
    if refused is not None:
        return refused
    if site is None and _reader(request).sites is not None:
        # Filtering the global feed would break its paging (``limit`` rows, ``next``): a
        # token narrowed to some sites reads each one's own feed.
        return web.json_response(
            {
                "error": "forbidden",
                "message": "a token narrowed to some sites reads /v1/sites/{site}/changes",
            },
            status=403,
        )
    after = _int_query(request, "after", 0)
    limit = _int_query(request, "limit", 1000, hi=FEED_LIMIT)
    changes = await store.changes(after=after, limit=limit, site=site)
    last = changes[-1]["gseq"] if changes else after
    return web.json_response({"changes": changes, "next": last})


def _objects_handler(kind: Kind) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        store = request.app[STORE_KEY]
        site = request.match_info["site"]
        refused = _reader_refused(request, site=site)
        if refused is not None:
            return refused
        objects = await store.objects(site, kind)
        return web.json_response({f"{kind.value}s": [o["image"] for o in objects]})

    return handler


async def get_conflicts(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    site = request.query.get("site")
    refused = _reader_refused(request, site=site)
    if refused is not None:
        return refused
    token = _reader(request)
    rows = await store.conflicts(site)
    return web.json_response(
        {"conflicts": [c for c in rows if auth.site_visible(token, c["site"])]}
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def get_metrics(request: web.Request) -> web.Response:
    refused = _reader_refused(request, "metrics")
    if refused is not None:
        return refused
    body, content_type = metrics.render()
    return web.Response(body=body, headers={"Content-Type": content_type})


def build_app(
    store: CentralStore,
    signing_key: Ed25519PrivateKey,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    read_token: str | None = None,
    tokens_file: Path | None = None,
    max_unauthenticated: int = DEFAULT_MAX_UNAUTHENTICATED,
    stale_after: float = DEFAULT_STALE_AFTER,
    secure_cookies: bool = False,
) -> web.Application:
    # Uploads are streamed with their own limit (``MAX_BODY``); nothing reads a body whole.
    app = web.Application(client_max_size=1024)
    app[STORE_KEY] = store
    app[READERS] = auth.Readers(tokens_file=tokens_file, read_token=read_token)
    app[SIGNING_KEY] = signing_key
    app[CONTACTS] = {}
    app[STALE_AFTER] = stale_after
    app[GATE] = Gate(max_unauthenticated)
    app[MAX_BODY] = max_body
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/v1/sites", get_sites)
    app.router.add_get("/v1/sites/{site}", get_site)
    app.router.add_post("/v1/sites/{site}/batches", post_batch)
    app.router.add_post("/v1/sites/{site}/snapshot", post_snapshot)
    app.router.add_post("/v1/sites/{site}/conflicts", post_conflicts)
    app.router.add_get("/v1/sites/{site}/down", get_down)
    app.router.add_get("/v1/sites/{site}/changes", get_changes)
    for kind in (Kind.HOST, Kind.LEASE, Kind.RECORD, Kind.SUBNET, Kind.SUBNET6, Kind.LEASE6):
        app.router.add_get(f"/v1/sites/{{site}}/{kind.value}s", _objects_handler(kind))
    app.router.add_get("/v1/changes", get_changes)
    app.router.add_get("/v1/conflicts", get_conflicts)
    console.mount(
        app,
        store=store,
        readers=app[READERS],
        stale_after=stale_after,
        secure_cookies=secure_cookies,
    )
    return app


def _server_ssl(config: CentralConfig) -> ssl.SSLContext | None:
    if config.insecure_http:
        return None
    assert config.tls_cert is not None
    assert config.tls_key is not None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("central.tls_cert", f"cannot load {config.tls_cert}: {exc}") from None
    return context


async def _ipam_sync(store: CentralStore, config: NautobotConfig, stop: asyncio.Event) -> None:
    # Imported here: pynautobot is needed only by a collector with [nautobot].
    from central.nautobot import client, task

    await task.IpamSync(
        store,
        client.factory(config),
        batch_size=config.batch_size,
        interval=config.interval,
        reconcile_interval=config.reconcile_interval,
    ).run(stop)


async def _reserve_sync(store: CentralStore, config: NautobotConfig, stop: asyncio.Event) -> None:
    # The down direction: addresses tagged ddi-reserve in Nautobot become reservations.
    from central.nautobot import down, reserve_client

    await down.ReserveSync(
        store,
        lambda: reserve_client.NautobotReserves(config),
        namespace_of=lambda site: config.placement(site).namespace,
        interval=config.interval,
    ).run(stop)


async def serve(config: CentralConfig, *, shutdown: asyncio.Event | None = None) -> None:
    """Run the collector until ``shutdown`` is set (or SIGTERM/SIGINT)."""
    signing_key = load_signing_key(config)
    context = _server_ssl(config)
    if config.nautobot is not None and importlib.util.find_spec("pynautobot") is None:
        raise ConfigError("nautobot", "needs pynautobot: pip install 'ddi[central]'")
    stop = asyncio.Event() if shutdown is None else shutdown
    loop = asyncio.get_running_loop()
    if shutdown is None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    notifier = Notifier.from_environ()
    store = await open_store(config.database, base=config.path.parent)
    try:
        app = build_app(
            store,
            signing_key,
            max_body=config.max_body_bytes,
            read_token=config.read_token,
            tokens_file=config.tokens_file,
            max_unauthenticated=config.max_unauthenticated,
            stale_after=config.stale_after,
            secure_cookies=context is not None,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, config.listen[0], config.listen[1], ssl_context=context)
            await site.start()
            log.info("ddi-central listening on %s:%d", *config.listen)
            notifier.notify("READY=1", f"STATUS=listening on {config.listen[0]}:{config.listen[1]}")
            interval = watchdog_interval()
            async with asyncio.TaskGroup() as tg:
                if interval is not None:
                    watchdog = tg.create_task(run_watchdog(notifier, interval), name="watchdog")
                ipam = reserve = None
                if config.nautobot is not None:
                    ipam = tg.create_task(_ipam_sync(store, config.nautobot, stop), name="nautobot")
                    reserve = tg.create_task(
                        _reserve_sync(store, config.nautobot, stop), name="nautobot-reserve"
                    )
                await stop.wait()
                if ipam is not None:
                    # Not waiting for a write in flight: it is redone by whoever runs next.
                    ipam.cancel()
                if reserve is not None:
                    reserve.cancel()
                if interval is not None:
                    watchdog.cancel()
            notifier.notify("STOPPING=1")
        finally:
            await runner.cleanup()
    finally:
        await store.close()

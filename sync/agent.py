"""The edge sync agent: the HTTP loop around the round's decisions (``sync.round``).

The ``sync`` service (``ddi.site.Service``), one task in the daemon's TaskGroup when ``[sync]``
is configured. Each round it asks central for the site's cursor, then carries out what
``sync.round`` decides from the answers and the store's values: roll a new epoch and send a
snapshot (page by page, resuming at central's next page), ship the backlog in bounded
batches (one in flight, each acknowledged with ``applied_seq`` before the next is built;
coalesced past the soft limit, replaced by a new epoch past the hard limit), pull and apply
the down log of central-owned reservations (signed by central), and report the conflicts the
store recorded.

Any failure (central unreachable, a timeout, a refusal) ends the round; the next one starts
after a full-jitter backoff that never gives up. While the link is up a committed change
wakes the agent; while it is down only ``sync now`` cuts the backoff short. DHCP and
DNS never wait for it: it only reads through the store's reader connection and writes small
transactions (the cursor, a down-log entry).
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

import aiohttp

from ddi import metrics
from ddi.config import SyncConfig
from ddi.errors import ConfigError, SyncRefused
from ddi.ipam.models import Change
from ddi.ipam.sync_values import SyncCursors
from sync import protocol
from sync.backoff import Backoff
from sync.outbox import Housekeeping, OutboxLimits, next_batch
from sync.round import (
    DOWN_PAGE,
    Again,
    Continue,
    Failure,
    NewEpoch,
    NextPage,
    Refused,
    Restart,
    RoundEnd,
    SendSnapshot,
    Ship,
    SnapshotDone,
    SyncState,
    Unexpected,
    Wait,
    after_batch,
    after_round,
    after_snapshot_page,
    conflict_report,
    housekeeping,
    label,
    read_answer,
    read_cursor,
    read_down_page,
    snapshot_from,
    start_round,
)

if TYPE_CHECKING:
    from ddi.config import Config
    from ddi.ipam.store import Store
    from ddi.site import Site

log = logging.getLogger(__name__)


def service(site: Site) -> SyncAgent:
    """The agent of a site with ``[sync]``.

    Raises:
        ConfigError: a key the config names cannot be loaded, or the URL needs TLS.
    """
    config = site.config.sync
    if config is None:
        raise ConfigError("sync", "the site has no [sync] section")
    return SyncAgent(store=site.store, site=site.config.site.id, config=config)


class _Retry(Exception):
    """Central answered something this round cannot go on from; retry after backoff."""


class _Restart(Exception):
    """The round must start over at once (``RoundEnd.RESTART``)."""


def _fail(failure: Failure) -> NoReturn:
    if isinstance(failure, Refused):
        raise failure.error()
    raise _Retry(failure.detail)


def _read_key(path: Any, what: str, load: Callable[[bytes], Any]) -> Any:
    try:
        return load(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"sync.{what}", f"cannot load {path}: {exc}") from None


def ssl_context(config: SyncConfig) -> ssl.SSLContext | bool:
    """TLS that verifies central against ``ca_file`` (its CA or its own certificate) and
    nothing else, with the host name checked; False (no TLS) only for an http:// URL allowed
    by insecure_http.

    Raises:
        ConfigError: an https:// URL without ``ca_file``, or one that cannot be loaded.
    """
    if config.central_url.startswith("http://"):
        if not config.insecure_http:
            raise ConfigError("sync.central_url", "plain http:// needs insecure_http = true")
        return False
    if config.ca_file is None:
        # ``parse_sync`` requires it; a SyncConfig built in code must say it too.
        raise ConfigError("sync.ca_file", "is required for an https:// central_url")
    try:
        # Given a cafile, the context trusts it alone (no system CAs): central is pinned.
        context = ssl.create_default_context(cafile=str(config.ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("sync.ca_file", f"cannot load {config.ca_file}: {exc}") from None
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _within(objects: Sequence[Mapping[str, Any]], max_bytes: int) -> list[Mapping[str, Any]]:
    """The prefix of a snapshot page's ``objects`` that fits ``max_bytes`` (at least one), so
    a page is never larger than a batch and central's body limit holds for both."""
    chosen: list[Mapping[str, Any]] = []
    size = 2
    for o in objects:
        size += len(protocol.canonical(dict(o))) + 1
        if chosen and size > max_bytes:
            break
        chosen.append(o)
    return chosen


class SyncAgent:
    """The ``sync`` service: ``start`` runs the loop (``run``) as one task."""

    name = "sync"

    def __init__(
        self,
        *,
        store: Store,
        site: str,
        config: SyncConfig,
        rng: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._site = site
        self._config = config
        self._clock = clock
        self._rng = rng or random.SystemRandom().random
        self._key = _read_key(config.site_key, "site_key", protocol.load_private_key)
        self._central_key = _read_key(
            config.central_public_key, "central_public_key", protocol.load_public_key
        )
        self._ssl = ssl_context(config)
        self._limits = OutboxLimits(
            max_entries=config.batch_max_entries,
            max_bytes=config.batch_max_bytes,
            soft_limit=config.outbox_soft_limit,
            hard_limit=config.outbox_hard_limit,
        )
        self._backoff = Backoff(base=config.backoff_base, cap=config.backoff_cap)
        self._state = SyncState()
        self._changed = asyncio.Event()
        """A change was committed (ends a poll wait, not a backoff)."""
        self._now = asyncio.Event()
        """``sync now`` was asked for (ends any wait)."""
        self._rounds = 0
        self._in_round = False
        self._round_done = asyncio.Condition()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        # What statistics() shows; refreshed by each round and by every committed change.
        self.link = "unknown"
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.backlog = 0
        self.oldest: float | None = None
        self.epoch = 0
        self.cursor = 0
        self.conflicts = 0
        self.batches_sent = 0
        self.batches_refused = 0
        self.snapshots_sent = 0
        self.held_back = 0
        self._central_ipv6 = False
        """Whether central (as of this round's cursor) takes IPv6 objects."""
        self._withheld = 0

    # --- the Service ---

    async def start(self, tg: asyncio.TaskGroup) -> None:
        self._task = tg.create_task(self.run(), name="sync")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])

    async def reload(self, config: Config) -> None:
        """``[sync]`` changes take effect at the next restart (the keys and the link are
        loaded once)."""

    def statistics(self) -> Mapping[str, Any]:
        now = self._clock()
        return {
            "central": self._config.central_url,
            "link": self.link,
            "last_success": self.last_success,
            "last_error": self.last_error,
            "backlog_entries": self.backlog,
            "oldest_unsynced_age": None if self.oldest is None else round(now - self.oldest, 3),
            "epoch": self.epoch,
            "acked_seq": self.cursor,
            "conflicts": self.conflicts,
            "batches_sent": self.batches_sent,
            "batches_refused": self.batches_refused,
            "snapshots_sent": self.snapshots_sent,
            "held_back": self.held_back,
            "withheld": bool(self._withheld),
        }

    def oldest_unsynced_age(self) -> float:
        """Seconds since the oldest unacknowledged change (0 when none); read at scrape."""
        return 0.0 if self.oldest is None else max(0.0, self._clock() - self.oldest)

    def _on_change(self, changes: Sequence[Change]) -> None:
        self.backlog += len(changes)
        if self.oldest is None and changes:
            self.oldest = changes[0].time
        metrics.SYNC_BACKLOG.set(self.backlog)
        self._changed.set()

    async def sync_now(self) -> bool:
        """Start a round now (skipping any backoff wait) and wait for it to end (callers
        bound the wait with ``asyncio.timeout``).

        Returns:
            Whether the link was up at the end of the round.
        """
        async with self._round_done:
            # A round already under way may have read the state before the request.
            target = self._rounds + (2 if self._in_round else 1)
            self._now.set()
            await self._round_done.wait_for(lambda: self._rounds >= target)
        return self.link == "up"

    # --- the loop ---

    async def run(self) -> None:
        self._store.subscribe(self._on_change)
        metrics.SYNC_OLDEST_AGE.set_function(self.oldest_unsynced_age)
        timeout = aiohttp.ClientTimeout(total=self._config.timeout)
        connector = aiohttp.TCPConnector(ssl=self._ssl, limit=1)
        self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        try:
            await self._refresh_backlog()
            while True:
                self._changed.clear()
                self._now.clear()
                self._in_round = True
                end, error = await self._one_round()
                self._state, then = after_round(
                    self._state,
                    end,
                    poll_interval=self._config.poll_interval,
                    backoff=self._backoff,
                    jitter=self._rng(),
                )
                if isinstance(then, Again):
                    continue
                self._ended(then, error)
                await self._finish_round()
                await self._sleep(then)
        finally:
            self._store.unsubscribe(self._on_change)
            await self._session.close()

    async def _one_round(self) -> tuple[RoundEnd, BaseException | None]:
        try:
            await self._round()
        except _Restart:
            return RoundEnd.RESTART, None
        except (aiohttp.ClientError, TimeoutError, SyncRefused, _Retry) as exc:
            return RoundEnd.FAILED, exc
        except Exception as exc:  # the sync task's bug boundary (R9)
            # A bug here must not take DHCP and DNS down with the daemon: log it with its
            # traceback, count it, and retry after the backoff.
            log.exception("sync: internal error")
            metrics.INTERNAL_ERRORS.labels(area="sync").inc()
            return RoundEnd.FAILED, exc
        return RoundEnd.DONE, None

    def _ended(self, wait: Wait, error: BaseException | None) -> None:
        if wait.up:
            self.link = "up"
            self.last_success = self._clock()
            self.last_error = None
            metrics.SYNC_LINK_UP.set(1)
            metrics.SYNC_LAST_SUCCESS.set(self.last_success)
            return
        if wait.gave_up_restarting or error is None:
            error = _Retry("central keeps asking to start over")
        self.link = "down"
        self.last_error = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        metrics.SYNC_LINK_UP.set(0)
        log.info("sync: %s; retrying in %.1f s", self.last_error, wait.seconds)

    async def _finish_round(self) -> None:
        self._in_round = False
        async with self._round_done:
            self._rounds += 1
            self._round_done.notify_all()

    async def _sleep(self, wait: Wait) -> None:
        """Wait ``wait.seconds``, or until ``sync now`` (or, when ``wait.wake_on_change``, a
        committed change) wakes the agent."""
        waiters = [asyncio.ensure_future(self._now.wait())]
        if wait.wake_on_change:
            waiters.append(asyncio.ensure_future(self._changed.wait()))
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=wait.seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        if not done or self._now.is_set():
            return
        # Let a burst of changes gather into one batch.
        await asyncio.sleep(0.02)

    async def _refresh_backlog(self) -> SyncCursors:
        state = await self._store.sync.cursors()
        self.epoch = state.epoch
        self.cursor = state.cursor
        backlog = await self._store.sync.backlog(self.cursor)
        self.backlog, self.oldest = backlog.count, backlog.oldest
        self.conflicts = len(await self._store.sync.conflicts(open_only=True))
        metrics.SYNC_BACKLOG.set(self.backlog)
        metrics.SYNC_CONFLICTS.set(self.conflicts)
        return state

    # --- HTTP ---

    def _url(self, path: str) -> str:
        return f"{self._config.central_url}{path}"

    async def _get(self, path: str, **query: int) -> tuple[int, bytes]:
        """A GET signed with the site's key (central serves the cursor and the down log
        only to the site itself)."""
        assert self._session is not None
        if query:
            path = f"{path}?{'&'.join(f'{k}={v}' for k, v in query.items())}"
        auth = protocol.sign_request(
            site=self._site, method="GET", path=path, now=self._clock(), key=self._key
        )
        headers = {protocol.AUTH_HEADER: auth}
        async with self._session.get(self._url(path), headers=headers) as response:
            return response.status, await response.read()

    async def _post(self, path: str, upload: protocol.Upload) -> tuple[int, bytes]:
        """POST ``upload``: its signed header in ``X-DDI-Signed``, so central checks who sent
        it before it reads the body."""
        assert self._session is not None
        headers = {"Content-Type": "application/json", protocol.SIGNED_HEADER: upload.header}
        async with self._session.post(
            self._url(path), data=upload.body, headers=headers
        ) as response:
            return response.status, await response.read()

    # --- a round ---

    async def _round(self) -> None:
        status, data = await self._get(f"/v1/sites/{self._site}")
        central = read_cursor(status, data)
        if isinstance(central, Refused | Unexpected):
            _fail(central)
        local = await self._refresh_backlog()
        self._central_ipv6 = central.ipv6
        self._withheld = local.withheld
        match start_round(central, local):
            case NewEpoch(at_least=at_least):
                rolled = await self._store.sync.roll_epoch(at_least=at_least)
                metrics.SYNC_HOUSEKEEPING.labels(action="new_epoch").inc()
                log.warning(
                    "sync: central at epoch %d seq %d; new epoch %d",
                    central.epoch,
                    central.applied_seq,
                    rolled.epoch,
                )
                applied = await self._send_snapshot(snapshot_from(rolled.epoch, rolled.as_of, None))
            case SendSnapshot() as snapshot:
                applied = await self._send_snapshot(snapshot)
            case Ship(applied=applied):
                pass
        await self._ship(applied)
        await self._pull_down(local.down_cursor)
        await self._report_conflicts(local)
        await self._refresh_backlog()

    async def _set_cursor(self, applied: int) -> None:
        if applied != self.cursor:
            await self._store.sync.set_cursors(cursor=applied)
            self.cursor = applied

    async def _ship(self, applied: int) -> None:
        """Send the backlog after ``applied``, one acknowledged batch at a time.

        The backlog is counted once; then each acknowledgement takes its entries off and
        each committed change (``_on_change``) adds one, so no batch pays for a count.
        """
        await self._set_cursor(applied)
        counted = await self._store.sync.backlog(self.cursor)
        self.backlog, self.oldest = counted.count, counted.oldest
        while True:
            metrics.SYNC_BACKLOG.set(self.backlog)
            backlog = self.backlog
            action = housekeeping(self._state, backlog, self._limits)
            if action is Housekeeping.COALESCE:
                dropped = await self._store.sync.coalesce(self.cursor)
                left = await self._store.sync.backlog(self.cursor)
                self.backlog, self.oldest = left.count, left.oldest
                self._state = replace(self._state, coalesced_at=self.backlog)
                metrics.SYNC_HOUSEKEEPING.labels(action="coalesce").inc()
                log.info("sync: backlog %d, coalesced %d superseded entries", backlog, dropped)
                continue
            if action is Housekeeping.NEW_EPOCH:
                epoch = (await self._store.sync.roll_epoch()).epoch
                self._state = replace(self._state, coalesced_at=None)
                metrics.SYNC_HOUSEKEEPING.labels(action="new_epoch").inc()
                log.warning("sync: backlog %d over the hard limit; new epoch %d", backlog, epoch)
                raise _Restart
            pending = await self._store.changes(after=self.cursor, limit=self._limits.max_entries)
            if not pending:
                self.backlog, self.oldest = 0, None
                self._state = replace(self._state, coalesced_at=None)
                trimmed = await self._store.sync.trim_acknowledged(
                    self.cursor, keep=self._config.history_keep
                )
                if trimmed:
                    metrics.SYNC_HOUSEKEEPING.labels(action="trim").inc()
                return
            self.oldest = pending[0].time
            epoch = pending[0].epoch
            same_epoch = [c for c in pending if c.epoch == epoch]
            upload, count, held = await asyncio.to_thread(self._encode_batch, same_epoch, epoch)
            if held:
                await self._hold_back(held)
            status, data = await self._post(f"/v1/sites/{self._site}/batches", upload)
            answer = read_answer(status, data)
            metrics.SYNC_BATCHES.labels(result=label(answer)).inc()
            match after_batch(answer):
                case Continue(cursor=cursor):
                    self.batches_sent += 1
                    metrics.SYNC_ENTRIES.inc(count)
                    await self._set_cursor(cursor)
                case Restart(cursor=cursor):
                    if cursor is not None:
                        log.warning(
                            "sync: central expects seq %d (cursor was %d)", cursor + 1, self.cursor
                        )
                        await self._set_cursor(cursor)
                    raise _Restart
                case failure:
                    if isinstance(answer, Refused | Unexpected):
                        self.batches_refused += 1
                    _fail(failure)
            self.backlog = max(0, self.backlog - count)

    def _encode_batch(
        self, pending: Sequence[Change], epoch: int
    ) -> tuple[protocol.Upload, int, int]:
        """The signed, encoded next batch from ``pending``, its entry count, and how many of
        those entries were held back from a central that cannot take them (CPU work, run in
        a thread so the event loop keeps serving). A batch's entries need not be contiguous:
        one whose entries were all held back still moves central's cursor on."""
        images = [c.to_image() for c in pending]
        encoded = [protocol.canonical(i) for i in images]
        chosen = next_batch(pending, self._limits, sizes=[len(e) for e in encoded])
        n = len(chosen)
        keep = [
            i
            for i, c in enumerate(chosen)
            if self._central_ipv6 or not protocol.needs_ipv6(c.kind, c.op, c.image)
        ]
        batch = protocol.make_batch(
            site=self._site,
            epoch=epoch,
            from_seq=self.cursor + 1,
            to_seq=chosen[-1].seq,
            entries=[images[i] for i in keep],
            key=self._key,
            encoded=[encoded[i] for i in keep],
        )
        return protocol.batch_upload(batch), n, n - len(keep)

    async def _hold_back(self, count: int) -> None:
        """Record (durably, before central acknowledges past them) that ``count`` objects were
        held back from central: once it takes them, a snapshot brings them across."""
        self.held_back += count
        metrics.SYNC_HELD_BACK.inc(count)
        if not self._withheld:
            log.warning(
                "sync: central does not take IPv6 objects (previous version); holding them"
                " back until it does"
            )
            await self._store.sync.set_cursors(withheld=1)
            self._withheld = 1

    async def _send_snapshot(self, snapshot: SendSnapshot) -> int:
        """Send the site's objects as ``snapshot`` says; returns central's new
        ``applied_seq`` (== ``as_of``)."""
        epoch, as_of, page, after = snapshot.epoch, snapshot.as_of, snapshot.page, snapshot.after
        log.info("sync: snapshot of epoch %d as of seq %d from page %d", epoch, as_of, page)
        size = self._limits.max_entries
        while True:
            fetched = await self._store.sync.snapshot_page(after, size)
            within = _within(fetched, self._limits.max_bytes)
            last = len(fetched) < size and len(within) == len(fetched)
            objects = [
                o
                for o in within
                if self._central_ipv6 or not protocol.needs_ipv6(o["kind"], "upsert", o["image"])
            ]
            if len(objects) < len(within):
                await self._hold_back(len(within) - len(objects))
            if not objects and not last:
                # All held back: the next page starts after them.
                after = (str(within[-1]["kind"]), str(within[-1]["object_id"]))
                continue
            sent = protocol.make_snapshot_page(
                site=self._site,
                epoch=epoch,
                as_of_seq=as_of,
                page=page,
                after=after,
                objects=objects,
                last=last,
                key=self._key,
            )
            upload = protocol.snapshot_upload(sent)
            status, data = await self._post(f"/v1/sites/{self._site}/snapshot", upload)
            answer = read_answer(status, data)
            metrics.SYNC_BATCHES.labels(result=f"snapshot_{label(answer)}").inc()
            match after_snapshot_page(answer, epoch=epoch, as_of=as_of, last=last):
                case NextPage():
                    page += 1
                    after = sent.last_key
                case SnapshotDone(cursor=cursor):
                    self.snapshots_sent += 1
                    # A snapshot to a central that takes everything left nothing behind.
                    cleared = 0 if self._central_ipv6 else None
                    await self._store.sync.set_cursors(cursor=cursor, withheld=cleared)
                    self._withheld = 0 if self._central_ipv6 else self._withheld
                    self.cursor = cursor
                    return cursor
                case Restart():
                    raise _Restart
                case failure:
                    self.batches_refused += 1
                    _fail(failure)

    # --- down direction ---

    async def _pull_down(self, down_cursor: int) -> None:
        while True:
            path = f"/v1/sites/{self._site}/down"
            status, data = await self._get(path, after=down_cursor, limit=DOWN_PAGE)
            page = read_down_page(
                status, data, site=self._site, after=down_cursor, central_key=self._central_key
            )
            if isinstance(page, Refused | Unexpected):
                _fail(page)
            if not page.entries:
                return
            for entry in page.entries:
                outcome = await self._store.sync.apply_central_host(entry.op, entry.image)
                metrics.SYNC_DOWN_APPLIED.labels(result=outcome.result.value).inc()
                if outcome.conflict is not None:
                    log.warning(
                        "sync: central reservation %s conflicts on %s %s",
                        entry.image.get("id"),
                        outcome.conflict.field,
                        outcome.conflict.value,
                    )
            down_cursor = page.entries[-1].dseq
            await self._store.sync.set_cursors(down_cursor=down_cursor)
            if not page.more:
                return

    async def _report_conflicts(self, local: SyncCursors) -> None:
        """Send central the conflicts it has not seen, and the resolutions since the last
        report."""
        report = conflict_report(
            await self._store.sync.conflicts(),
            reported=local.conflicts_reported,
            resolutions=local.resolutions_reported,
        )
        if report is None:
            return
        upload = protocol.conflicts_upload(
            self._site, [c.to_json() for c in report.conflicts], self._key
        )
        status, data = await self._post(f"/v1/sites/{self._site}/conflicts", upload)
        if status != 200:
            answer = data[:200].decode(errors="replace")
            raise _Retry(f"central answered {status} to the conflict report: {answer}")
        await self._store.sync.set_cursors(
            conflicts_reported=report.conflicts_reported,
            resolutions_reported=report.resolutions_reported,
        )

"""The edge sync agent: ships the change log to central and applies what central sends down.

One task in the daemon's TaskGroup (``ddi serve`` starts it when ``[sync]`` is configured).
Each round:

1. ask central for the site's cursor (``GET /v1/sites/{site}``): its epoch and
   ``applied_seq`` are where this round resumes, whatever the edge believed before;
2. if central cannot continue from the local log (another epoch, or entries it needs were
   compacted away), start a new epoch and send a snapshot, page by page, resuming at
   central's next page;
3. ship the backlog in bounded batches, one in flight, each acknowledged with
   ``applied_seq`` before the next is built; past the soft limit the backlog is coalesced,
   past the hard limit a new epoch and a snapshot replace it;
4. pull the down log of central-owned reservations (signed by central), apply each through
   the store, and report the conflicts the store recorded.

Any failure (central unreachable, a timeout, a refusal) ends the round; the next one starts
after a full-jitter backoff that never gives up. A committed change wakes the agent. DHCP and
DNS never wait for it: it only reads through the store's reader connection and writes small
transactions (the cursor, a down-log entry).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp

from ddi import metrics
from ddi.config import SyncConfig
from ddi.errors import ConfigError, SyncRefused
from ddi.ipam.models import Change
from ddi.ipam.sync_values import SyncCursors
from sync import protocol
from sync.backoff import Backoff
from sync.outbox import Housekeeping, OutboxLimits, next_batch, plan

if TYPE_CHECKING:
    from ddi.app import AppContext
    from ddi.ipam.store import Store

log = logging.getLogger(__name__)

_AGENTS: dict[int, SyncAgent] = {}
DOWN_PAGE = 200
MAX_RESTARTS = 5
"""Rounds started over at once (gap, new epoch) before the agent backs off instead."""


def agent_for(app: AppContext) -> SyncAgent | None:
    """The running agent of ``app`` (None when sync is not configured or not started)."""
    return _AGENTS.get(id(app))


async def run(app: AppContext) -> None:
    """Serve sync for ``app`` until cancelled."""
    config = app.config.sync
    if config is None:
        return
    agent = SyncAgent(store=app.store, site=app.config.site.id, config=config)
    _AGENTS[id(app)] = agent
    app.statistics["sync"] = agent.statistics
    try:
        await agent.run()
    finally:
        _AGENTS.pop(id(app), None)
        app.statistics.pop("sync", None)


def _reason(data: bytes) -> str:
    try:
        answer = json.loads(data)
    except ValueError:
        return "refused"
    return str(answer.get("reason", "refused")) if isinstance(answer, dict) else "refused"


class _Retry(Exception):
    """Central answered something this round cannot go on from; retry after backoff."""


class _Restart(Exception):
    """The local log changed epoch mid-round: start the round over at once."""


def _read_key(path: Any, what: str, load: Callable[[bytes], Any]) -> Any:
    try:
        return load(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"sync.{what}", f"cannot load {path}: {exc}") from None


def ssl_context(config: SyncConfig) -> ssl.SSLContext | bool:
    """TLS that verifies central against ``ca_file`` (its CA or its own certificate), with
    the host name checked; False (no TLS) only for an http:// URL allowed by insecure_http."""
    if config.central_url.startswith("http://"):
        if not config.insecure_http:
            raise ConfigError("sync.central_url", "plain http:// needs insecure_http = true")
        return False
    ca = None if config.ca_file is None else str(config.ca_file)
    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class SyncAgent:
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
        self._backoff = Backoff(
            base=config.backoff_base,
            cap=config.backoff_cap,
            rng=rng or random.SystemRandom().random,
        )
        self._wake = asyncio.Event()
        self._rounds = 0
        self._in_round = False
        self._restarts = 0
        self._round_done = asyncio.Condition()
        self._coalesced_at: int | None = None
        self._session: aiohttp.ClientSession | None = None
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

    # --- what the daemon sees ---

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
        }

    def oldest_unsynced_age(self) -> float:
        """Seconds since the oldest unacknowledged change (0 when none); read at scrape."""
        return 0.0 if self.oldest is None else max(0.0, self._clock() - self.oldest)

    def _on_change(self, changes: Sequence[Change]) -> None:
        self.backlog += len(changes)
        if self.oldest is None and changes:
            self.oldest = changes[0].time
        metrics.SYNC_BACKLOG.set(self.backlog)
        self._wake.set()

    async def sync_now(self) -> bool:
        """Start a round now (skipping any backoff wait) and wait for it to end (callers
        bound the wait with ``asyncio.timeout``).

        Returns:
            Whether the link was up at the end of the round.
        """
        async with self._round_done:
            # A round already under way may have read the state before the request.
            target = self._rounds + (2 if self._in_round else 1)
            self._wake.set()
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
                self._wake.clear()
                self._in_round = True
                try:
                    await self._round()
                except _Restart:
                    self._restarts += 1
                    if self._restarts <= MAX_RESTARTS:
                        continue
                    await self._failed(_Retry("central keeps asking to start over"))
                    continue
                except (aiohttp.ClientError, TimeoutError, SyncRefused, _Retry) as exc:
                    await self._failed(exc)
                    continue
                except Exception as exc:  # the sync task's bug boundary (R9)
                    # A bug here must not take DHCP and DNS down with the daemon: log it
                    # with its traceback, count it, and retry after the backoff.
                    log.exception("sync: internal error")
                    metrics.INTERNAL_ERRORS.labels(area="sync").inc()
                    await self._failed(exc)
                    continue
                self._restarts = 0
                self._up()
                await self._finish_round()
                await self._sleep(self._config.poll_interval)
        finally:
            self._store.unsubscribe(self._on_change)
            await self._session.close()

    async def _failed(self, exc: BaseException) -> None:
        self._restarts = 0
        self._down(exc)
        delay = self._backoff.next_delay()
        log.info("sync: %s; retrying in %.1f s", self.last_error, delay)
        await self._finish_round()
        await self._sleep(delay)

    async def _finish_round(self) -> None:
        self._in_round = False
        async with self._round_done:
            self._rounds += 1
            self._round_done.notify_all()

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` or until a change or ``sync now`` wakes the agent."""
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            return
        # Let a burst of changes gather into one batch.
        await asyncio.sleep(0.02)

    def _up(self) -> None:
        self.link = "up"
        self.last_success = self._clock()
        self.last_error = None
        self._backoff.reset()
        metrics.SYNC_LINK_UP.set(1)
        metrics.SYNC_LAST_SUCCESS.set(self.last_success)

    def _down(self, exc: BaseException) -> None:
        self.link = "down"
        self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        metrics.SYNC_LINK_UP.set(0)

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

    async def _post(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        async with self._session.post(self._url(path), data=body, headers=headers) as response:
            status = response.status
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                raise _Retry(f"central answered {status} without JSON") from None
        if not isinstance(answer, dict):
            raise _Retry(f"central answered {status} with {type(answer).__name__}")
        return status, answer

    async def _central_state(self) -> dict[str, Any]:
        status, data = await self._get(f"/v1/sites/{self._site}")
        if status in (403, 404):
            raise SyncRefused(_reason(data), f"central refused the cursor request ({status})")
        if status != 200:
            raise _Retry(f"central answered {status} to the cursor request")
        try:
            answer = json.loads(data)
        except ValueError:
            raise _Retry("central's cursor is not JSON") from None
        if not isinstance(answer, dict):
            raise _Retry("central's cursor is not an object")
        for name in ("epoch", "applied_seq"):
            value = answer.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _Retry(f"central's cursor has a malformed {name}")
        return answer

    # --- a round ---

    async def _round(self) -> None:
        central = await self._central_state()
        local = await self._refresh_backlog()
        c_epoch = int(central.get("epoch", 0))
        applied = int(central.get("applied_seq", 0))
        epoch, floor, last = local.epoch, local.floor, local.last_seq
        if c_epoch > epoch or (c_epoch == epoch and (applied > last or applied < floor)):
            # Central is ahead of this log (a restored edge) or needs entries compacted away.
            rolled = await self._store.sync.roll_epoch(at_least=c_epoch + 1)
            epoch, as_of = rolled.epoch, rolled.as_of
            metrics.SYNC_HOUSEKEEPING.labels(action="new_epoch").inc()
            log.warning("sync: central at epoch %d seq %d; new epoch %d", c_epoch, applied, epoch)
            applied = await self._send_snapshot(epoch, as_of, None)
        elif c_epoch < epoch and not (c_epoch == 0 and floor == 0):
            applied = await self._send_snapshot(epoch, local.snapshot_seq, central)
        await self._ship(applied)
        await self._pull_down(local.down_cursor)
        await self._report_conflicts(local.conflicts_reported, local.resolutions_reported)
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
            action = plan(backlog, self._limits, coalesced_at=self._coalesced_at)
            if action is Housekeeping.COALESCE:
                dropped = await self._store.sync.coalesce(self.cursor)
                left = await self._store.sync.backlog(self.cursor)
                self.backlog, self.oldest = left.count, left.oldest
                self._coalesced_at = self.backlog
                metrics.SYNC_HOUSEKEEPING.labels(action="coalesce").inc()
                log.info("sync: backlog %d, coalesced %d superseded entries", backlog, dropped)
                continue
            if action is Housekeeping.NEW_EPOCH:
                epoch = (await self._store.sync.roll_epoch()).epoch
                self._coalesced_at = None
                metrics.SYNC_HOUSEKEEPING.labels(action="new_epoch").inc()
                log.warning("sync: backlog %d over the hard limit; new epoch %d", backlog, epoch)
                raise _Restart
            pending = await self._store.changes(after=self.cursor, limit=self._limits.max_entries)
            if not pending:
                self.backlog, self.oldest, self._coalesced_at = 0, None, None
                trimmed = await self._store.sync.trim_acknowledged(
                    self.cursor, keep=self._config.history_keep
                )
                if trimmed:
                    metrics.SYNC_HOUSEKEEPING.labels(action="trim").inc()
                return
            self.oldest = pending[0].time
            epoch = pending[0].epoch
            same_epoch = [c for c in pending if c.epoch == epoch]
            body, count = await asyncio.to_thread(self._encode_batch, same_epoch, epoch)
            status, answer = await self._post(f"/v1/sites/{self._site}/batches", body)
            await self._batch_answer(status, answer, count)
            self.backlog = max(0, self.backlog - count)

    def _encode_batch(self, pending: Sequence[Change], epoch: int) -> tuple[bytes, int]:
        """The signed, encoded next batch from ``pending`` and its entry count (CPU work,
        run in a thread so the event loop keeps serving)."""
        images = [c.to_image() for c in pending]
        encoded = [protocol.canonical(i) for i in images]
        chosen = next_batch(pending, self._limits, sizes=[len(e) for e in encoded])
        n = len(chosen)
        batch = protocol.make_batch(
            site=self._site,
            epoch=epoch,
            from_seq=self.cursor + 1,
            to_seq=chosen[-1].seq,
            entries=images[:n],
            key=self._key,
            encoded=encoded[:n],
        )
        return protocol.encode_batch(batch), n

    async def _batch_answer(self, status: int, answer: Mapping[str, Any], count: int) -> None:
        result = str(answer.get("result", ""))
        metrics.SYNC_BATCHES.labels(result=result or "error").inc()
        if result in ("applied", "duplicate"):
            applied = answer.get("applied_seq")
            if isinstance(applied, bool) or not isinstance(applied, int) or applied < 0:
                raise _Retry(f"central acknowledged without a valid applied_seq: {answer}")
            self.batches_sent += 1
            metrics.SYNC_ENTRIES.inc(count)
            await self._set_cursor(applied)
            return
        if result == "gap":
            expected = answer.get("expected")
            if isinstance(expected, bool) or not isinstance(expected, int) or expected < 1:
                raise _Retry(f"central reported a gap without a valid expected seq: {answer}")
            log.warning("sync: central expects seq %d (cursor was %d)", expected, self.cursor)
            await self._set_cursor(expected - 1)
            raise _Restart
        if result == "snapshot_needed":
            raise _Restart
        self.batches_refused += 1
        if result == "refused":
            raise SyncRefused(str(answer.get("reason", "refused")), str(answer.get("detail", "")))
        raise _Retry(f"central answered {status}: {answer}")

    async def _send_snapshot(
        self, epoch: int, as_of: int, central: Mapping[str, Any] | None
    ) -> int:
        """Send the site's objects as of ``as_of`` in ``epoch``; returns central's new
        ``applied_seq`` (== ``as_of``). Resumes at central's next page when it has some."""
        page, after = 0, None
        staged = (central or {}).get("snapshot") or {}
        if staged.get("epoch") == epoch and staged.get("as_of_seq") == as_of:
            page = int(staged.get("next_page", 0))
            raw_after = staged.get("after")
            after = None if raw_after is None else (str(raw_after[0]), str(raw_after[1]))
        log.info("sync: snapshot of epoch %d as of seq %d from page %d", epoch, as_of, page)
        size = self._limits.max_entries
        while True:
            objects = await self._store.sync.snapshot_page(after, size)
            last = len(objects) < size
            snapshot = protocol.make_snapshot_page(
                site=self._site,
                epoch=epoch,
                as_of_seq=as_of,
                page=page,
                after=after,
                objects=objects,
                last=last,
                key=self._key,
            )
            body = protocol.encode_snapshot_page(snapshot)
            status, answer = await self._post(f"/v1/sites/{self._site}/snapshot", body)
            result = str(answer.get("result", ""))
            metrics.SYNC_BATCHES.labels(result=f"snapshot_{result or 'error'}").inc()
            if result == "gap":
                raise _Restart
            if result not in ("applied", "duplicate"):
                self.batches_refused += 1
                if result == "refused":
                    raise SyncRefused(str(answer.get("reason")), str(answer.get("detail", "")))
                raise _Retry(f"central answered {status} to snapshot page {page}: {answer}")
            if last or int(answer.get("epoch", 0)) == epoch:
                self.snapshots_sent += 1
                applied = int(answer.get("applied_seq", as_of))
                await self._store.sync.set_cursors(cursor=applied)
                self.cursor = applied
                return applied
            page += 1
            after = snapshot.last_key

    # --- down direction ---

    async def _pull_down(self, down_cursor: int) -> None:
        while True:
            path = f"/v1/sites/{self._site}/down"
            status, data = await self._get(path, after=down_cursor, limit=DOWN_PAGE)
            if status in (403, 404):
                raise SyncRefused(_reason(data), f"central refused the down-log request ({status})")
            if status != 200:
                raise _Retry(f"central answered {status} to the down-log request")
            body = protocol.open_envelope(
                data, type_=protocol.DOWN_TYPE, site=self._site, public_key=self._central_key
            )
            if body.get("after") != down_cursor:
                raise SyncRefused("replay", "down log answer for another cursor")
            entries = protocol.down_entries(body, after=down_cursor)
            if not entries:
                return
            for entry in entries:
                outcome = await self._store.sync.apply_central_host(entry.op, entry.image)
                metrics.SYNC_DOWN_APPLIED.labels(result=outcome.result.value).inc()
                if outcome.conflict is not None:
                    log.warning(
                        "sync: central reservation %s conflicts on %s %s",
                        entry.image.get("id"),
                        outcome.conflict.field,
                        outcome.conflict.value,
                    )
            down_cursor = entries[-1].dseq
            await self._store.sync.set_cursors(down_cursor=down_cursor)
            if len(entries) < DOWN_PAGE:
                return

    async def _report_conflicts(self, reported: int, resolutions: int) -> None:
        """Send central the conflicts it has not seen, and the resolutions since the last
        report (central records both idempotently by conflict id)."""
        rows = await self._store.sync.conflicts()
        conflicts = [
            c.to_json()
            for c in rows
            if c.id > reported
            or (c.resolved_at is not None and int(c.resolved_at * 1000) > resolutions)
        ]
        if not conflicts:
            return
        envelope = protocol.seal(
            protocol.CONFLICTS_TYPE,
            site=self._site,
            body={"conflicts": conflicts},
            key=self._key,
        )
        status, answer = await self._post(
            f"/v1/sites/{self._site}/conflicts", protocol.encode_envelope(envelope)
        )
        if status != 200:
            raise _Retry(f"central answered {status} to the conflict report: {answer}")
        resolved = [int(c["resolved_at"] * 1000) for c in conflicts if c["resolved_at"] is not None]
        await self._store.sync.set_cursors(
            conflicts_reported=max([reported] + [c["id"] for c in conflicts]),
            resolutions_reported=max([resolutions, *resolved]),
        )

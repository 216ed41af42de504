"""The change log's size and its local retention (``[ipam] retention_days`` and
``retention_entries``): without it a site without ``[sync]`` keeps every entry forever.

Rules:
* Entries older than the age or beyond the newest ``entries`` are deleted, oldest first, in
  one transaction; with ``[sync]`` never one central has not acknowledged (``seq`` above the
  sync cursor): retention trims only what sync no longer needs.
* The sync floor rises to the highest seq deleted, as when the agent trims acknowledged
  entries: an agent configured later (or a cursor behind the floor) resumes with a snapshot
  instead of a gap.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ddi.ipam.transaction import Transaction

__all__ = ["ChangeLog", "LogSize"]

Read = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]

_META_UPSERT = (
    "INSERT INTO meta (key, value) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSize:
    entries: int
    bytes: int
    """Pages the log's table and index take in the database file (SQLite's dbstat)."""
    oldest: float | None
    """Unix time of the oldest entry kept; None when the log is empty."""

    def to_image(self) -> dict[str, Any]:
        return {"entries": self.entries, "bytes": self.bytes, "oldest": self.oldest}


class ChangeLog:
    """``store.log``: built by :class:`~ddi.ipam.store.Store` from its transaction and its
    read connection."""

    def __init__(
        self,
        *,
        transaction: Callable[[], AbstractAsyncContextManager[Transaction]],
        read: Read,
    ) -> None:
        self._transaction = transaction
        self._read = read

    async def size(self) -> LogSize:
        rows = await self._read("SELECT COUNT(*), MIN(time) FROM change", ())
        count, oldest = rows[0]
        size = -1  # an SQLite built without dbstat: the bytes are then unknown
        if await self._read("SELECT 1 FROM pragma_module_list WHERE name = 'dbstat'", ()):
            pages = await self._read(
                "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat"
                " WHERE name IN ('change', 'change_object')",
                (),
            )
            size = int(pages[0][0])
        return LogSize(
            entries=int(count), bytes=size, oldest=None if oldest is None else float(oldest)
        )

    async def trim(
        self, *, older_than: float | None, keep: int | None, protect_after: int | None
    ) -> int:
        """Delete entries with ``time < older_than`` and those beyond the newest ``keep``;
        never one with ``seq > protect_after`` (the sync cursor; None: no sync).

        Returns:
            The number of entries deleted.
        """
        async with self._transaction() as tx:
            upto = 0
            if keep is not None:
                rows = await tx.fetch(
                    "SELECT seq FROM change ORDER BY seq DESC LIMIT 1 OFFSET ?", (keep,)
                )
                if rows:
                    upto = int(rows[0][0])
            if older_than is not None:
                rows = await tx.fetch("SELECT MAX(seq) FROM change WHERE time < ?", (older_than,))
                if rows and rows[0][0] is not None:
                    upto = max(upto, int(rows[0][0]))
            if protect_after is not None:
                upto = min(upto, protect_after)
            if upto <= 0:
                return 0
            deleted = await tx.execute("DELETE FROM change WHERE seq <= ?", (upto,))
            if deleted:
                floor = await tx.fetch("SELECT value FROM meta WHERE key = 'sync.floor'")
                current = int(floor[0][0]) if floor else 0
                await tx.execute(_META_UPSERT, ("sync.floor", str(max(upto, current))))
        return deleted

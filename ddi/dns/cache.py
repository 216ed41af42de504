"""Encoded-answer cache: the fast path for local names (DESIGN.md principle 7).

The key is the query's wire bytes after the 2-byte ID, per transport: two queries with the same
bytes after the ID (flags, question, EDNS payload size and options) get the same reply bytes
after the ID, so a hit is ``id + value`` with no decode and no encode. Question-name case is
part of the key, so the echoed question keeps the client's case (RFC 4343).

Rules:
* Filled only from engine answers marked cacheable (local zones, client-independent, unsigned).
* Any zone change invalidates everything: ``invalidate()`` bumps ``generation`` and empties the
  table, so no answer older than the zones it came from is served.
* Bounded: at ``capacity`` the oldest entry goes (FIFO; cheap and good enough for a site).
* Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CachedAnswer:
    body: bytes
    """The reply without its first two bytes (the ID)."""
    label: tuple[str, str]
    """(qtype, rcode): the metric labels of the reply, counted on every hit."""


class AnswerCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.generation = 0
        self.hits = 0
        self.misses = 0
        self._tables: tuple[dict[bytes, CachedAnswer], dict[bytes, CachedAnswer]] = ({}, {})

    def table(self, transport: int) -> dict[bytes, CachedAnswer]:
        """The raw table for ``transport`` (0 UDP, 1 TCP): the transport's hot loop reads it
        directly, keyed by ``query[2:]``."""
        return self._tables[transport]

    def get(self, transport: int, query: bytes) -> bytes | None:
        """The reply to ``query`` with its ID patched in, or None."""
        entry = self._tables[transport].get(query[2:])
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        return query[:2] + entry.body

    def put(self, transport: int, query: bytes, reply: bytes, *, qtype: str, rcode: str) -> None:
        if self.capacity <= 0:
            return
        table = self._tables[transport]
        if len(table) >= self.capacity:
            del table[next(iter(table))]
        table[query[2:]] = CachedAnswer(reply[2:], (qtype, rcode))

    def invalidate(self) -> None:
        self.generation += 1
        for table in self._tables:
            table.clear()

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables)

    def statistics(self) -> dict[str, int]:
        return {
            "entries": len(self),
            "hits": self.hits,
            "misses": self.misses,
            "generation": self.generation,
        }

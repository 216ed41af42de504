"""A compact one-to-many index: key → one value, or a tuple of values when there are several.

Nearly every key of the IPAM indexes (a MAC's leases, a name's records, an address's hosts) has
exactly one member. A dict of tuples or of dicts costs a container per key (56 to 230 bytes);
storing the lone member itself costs nothing more than the dict entry. Values must never be
tuples themselves: a tuple marks "several members".
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Hashable)

__all__ = ["MultiMap"]


class MultiMap(Generic[K, V]):
    """Key → members, each member at most once per key, in insertion order."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: dict[K, V | tuple[V, ...]] = {}

    def add(self, key: K, value: V) -> None:
        held = self._data.get(key)
        if held is None:
            self._data[key] = value
        elif isinstance(held, tuple):
            if value not in held:
                self._data[key] = (*held, value)
        elif held != value:
            self._data[key] = (held, value)

    def discard(self, key: K, value: V) -> None:
        held = self._data.get(key)
        if held is None:
            return
        if not isinstance(held, tuple):
            if held == value:
                del self._data[key]
            return
        rest = tuple(m for m in held if m != value)
        self._data[key] = rest[0] if len(rest) == 1 else rest

    def get(self, key: K) -> tuple[V, ...]:
        """The members of ``key`` (empty when it has none)."""
        held = self._data.get(key)
        if held is None:
            return ()
        return held if isinstance(held, tuple) else (held,)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> Iterator[tuple[K, tuple[V, ...]]]:
        for key in self._data:
            yield key, self.get(key)

"""The daemon's heap policy: hand freed memory back after a large build, and keep the cyclic
garbage collector off the long-lived objects.

Loading the IPAM index and building the zones allocates and frees several times the memory the
result keeps (rows, temporary sets and strings). glibc keeps freed pages in its arenas, so the
resident set stays at the peak; ``malloc_trim(3)`` returns the whole free pages of every arena.
A no-op where the C library has no ``malloc_trim`` (musl, other systems).

CPython's cyclic collector walks every tracked object on a full (generation 2) collection: with
the index of a large site (hundreds of thousands of objects) that is about 100 ms with the
event loop stopped, answers queued behind it. What start-up loads lives until the next build,
so :func:`settle` freezes it (``gc.freeze``: moved to a generation no collection visits) and
the collector only walks what was allocated since. While starting, collections are paused
(:func:`collections_paused`): nearly everything allocated then survives, so they would find
nothing and cost the start-up their walks.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable, Iterator

__all__ = ["collections_paused", "release_free_memory", "settle"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return free heap pages to the system; True when the C library could do it."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@contextlib.contextmanager
def collections_paused() -> Iterator[None]:
    """Automatic collections off inside the block (as they were before, after it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def settle(*, rebuilt: bool = False) -> int:
    """After a large build: collect its garbage, freeze what survives and return free pages.

    ``rebuilt``: the build replaced long-lived objects frozen before (a reload's zones); they
    are unfrozen first, so that any of them held in a reference cycle is collected instead of
    kept for good (a full collection: a reload pays it once). Returns the objects now frozen.
    """
    if rebuilt:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    release_free_memory()
    return gc.get_freeze_count()

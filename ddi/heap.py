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

While serving, :func:`settle` also spaces the collections out (:data:`SERVING_THRESHOLDS`).
With CPython's defaults (700, 10, 10) a DHCP load walks every lease committed since start-up
in a full collection every few seconds: at 5,000 exchanges/s (``python -m bench --only dhcp``
at a fixed rate), 13-14 full collections of about 80 ms in 20 s, each a stop of the loop.
With these thresholds, 2 in the same run, and the average DISCOVER-to-OFFER delay went from
9.9-16.4 ms to 2.7-5.4 ms (CPU per exchange unchanged, within the noise). At saturation, where
the stops made the queue overflow, the best rate of ``--only dhcp`` went from 4,000-5,000 to
5,000-7,000 exchanges/s (two runs of the code before and after, alternating). What the DHCP and
DNS paths allocate per packet is freed by reference counting, not by the collector, so rarer
young collections leave no more memory behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable, Iterator

__all__ = ["SERVING_THRESHOLDS", "collections_paused", "release_free_memory", "settle"]

SERVING_THRESHOLDS = (20_000, 50, 100)
"""``gc.set_threshold`` while serving: a young collection every 20,000 net container
allocations (CPython: 700), a middle one every 50 young ones (10), a full one every 100 middle
ones (10) and then only once the objects that survived since the last one number a quarter of
those that did before (CPython's own rule)."""


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
    """After a large build: collect its garbage, freeze what survives, space the collections
    out for serving (:data:`SERVING_THRESHOLDS`) and return free pages.

    ``rebuilt``: the build replaced long-lived objects frozen before (a reload's zones); they
    are unfrozen first, so that any of them held in a reference cycle is collected instead of
    kept for good (a full collection: a reload pays it once). Returns the objects now frozen.
    """
    if rebuilt:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)
    release_free_memory()
    return gc.get_freeze_count()

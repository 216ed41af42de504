"""release_free_memory trims glibc's arenas, and is a no-op elsewhere; the collector is paused
while starting and the long-lived objects are frozen once settled."""

from __future__ import annotations

import gc
import platform
import weakref
from collections.abc import Iterator

import pytest

from ddi.heap import SERVING_THRESHOLDS, collections_paused, release_free_memory, settle


class _Node:
    def __init__(self) -> None:
        self.me: object = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test process's heap as it was: nothing left frozen after the test, the collector's
    thresholds as they were."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_collections_are_paused_inside_the_block_only() -> None:
    assert gc.isenabled()
    with collections_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collections_paused():
        raise RuntimeError("start-up failed")
    assert gc.isenabled()


def test_a_pause_keeps_collections_off_when_they_were_off() -> None:
    gc.disable()
    try:
        with collections_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.usefixtures("unfrozen")
def test_settle_collects_the_builds_garbage_and_freezes_what_survives() -> None:
    garbage = weakref.ref(_Node())
    kept = _Node()
    assert garbage() is not None  # a cycle: still there until a collection
    frozen = settle()
    assert garbage() is None
    assert frozen == gc.get_freeze_count() > 0
    # A full collection no longer walks it.
    assert not any(o is kept for o in gc.get_objects(generation=2))


@pytest.mark.usefixtures("unfrozen")
def test_settle_spaces_the_collections_out_for_serving() -> None:
    gc.set_threshold(700, 10, 10)
    settle()
    assert gc.get_threshold() == SERVING_THRESHOLDS
    young = SERVING_THRESHOLDS[0]
    assert SERVING_THRESHOLDS > (700, 10, 10)
    node = weakref.ref(_Node())  # a cycle: only a collection frees it
    some = [[] for _ in range(1_000)]  # past CPython's 700: a young collection, by default
    assert node() is not None
    more = [[] for _ in range(young)]  # past the serving threshold: collected
    assert node() is None
    del some, more


@pytest.mark.usefixtures("unfrozen")
def test_a_rebuild_unfreezes_so_replaced_cycles_are_freed() -> None:
    node = _Node()
    gone = weakref.ref(node)
    settle()
    del node  # replaced by a rebuild, but frozen: no collection sees it
    gc.collect()
    assert gone() is not None
    settle(rebuilt=True)
    assert gone() is None


def test_trims_where_the_c_library_can() -> None:
    assert release_free_memory() is (platform.libc_ver()[0] == "glibc")


def test_freed_pages_leave_the_resident_set() -> None:
    if platform.libc_ver()[0] != "glibc":
        return
    blocks = [bytearray(1024) for _ in range(100_000)]  # ~100 MB of blocks in the heap
    del blocks[:90_000]  # a free hole below live blocks: glibc keeps it until trimmed
    before = _rss_kib()
    release_free_memory()
    assert _rss_kib() < before
    del blocks


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")

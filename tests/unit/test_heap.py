"""release_free_memory trims glibc's arenas, and is a no-op elsewhere."""

from __future__ import annotations

import platform

from ddi.heap import release_free_memory


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

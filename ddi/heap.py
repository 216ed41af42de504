"""Hand freed heap memory back to the operating system after a large build.

Loading the IPAM index and building the zones allocates and frees several times the memory the
result keeps (rows, temporary sets and strings). glibc keeps freed pages in its arenas, so the
resident set stays at the peak; ``malloc_trim(3)`` returns the whole free pages of every arena.
A no-op where the C library has no ``malloc_trim`` (musl, other systems).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

__all__ = ["release_free_memory"]


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

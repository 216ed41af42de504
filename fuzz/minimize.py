"""Shrink a crashing input while it still crashes the same way (same exception type and
location): chunk deletion from large chunks to single bytes, then bytes simplified to zero or
to ``a``. Enough to make a report's input readable; not a full delta debugger."""

from __future__ import annotations

from fuzz.core import Tally, Target


def signature(target: Target, data: bytes) -> str | None:
    """The crash signature of ``data``, or None when it does not crash."""
    tally = Tally(target)
    tally.run(data)
    return next(iter(tally.crashes), None)


def minimize(target: Target, data: bytes, *, budget: int = 3000) -> bytes:
    wanted = signature(target, data)
    if wanted is None:
        return data
    tries = 0

    def same(candidate: bytes) -> bool:
        nonlocal tries
        tries += 1
        return signature(target, candidate) == wanted

    chunk = max(1, len(data) // 2)
    while chunk >= 1 and tries < budget:
        i = 0
        while i < len(data) and tries < budget:
            # Also a width that keeps the length modulo 4: the DNS harness picks its
            # transport by it.
            for width in dict.fromkeys((chunk, -(-chunk // 4) * 4)):
                candidate = data[:i] + data[i + width :]
                if same(candidate):
                    data = candidate
                    break
            else:
                i += chunk
        chunk //= 2
    for i in range(len(data)):
        if tries >= budget:
            break
        for simpler in (0x61, 0x00):
            if data[i] != simpler:
                candidate = data[:i] + bytes((simpler,)) + data[i + 1 :]
                if same(candidate):
                    data = candidate
                    break
    return data

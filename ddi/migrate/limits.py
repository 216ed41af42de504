"""Bounds on what an import reads, checked before anything is converted."""

from __future__ import annotations

from collections.abc import Iterator

from ddi.migrate.items import Parsed, Problem

__all__ = [
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_ITEMS",
    "MAX_LINE",
    "lines",
    "number",
]

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Bytes of one file: a lease file of a /12 fits many times over."""
MAX_LINE = 4096
"""Characters of one line (a Kea lease line with user context is well under 1 KiB)."""
MAX_ITEMS = 200_000
"""Reservations, leases and records of one import, together."""
MAX_FILES = 1000
"""Files one import reads, includes and conf-dir entries counted."""


def lines(text: str, name: str, parsed: Parsed) -> Iterator[tuple[str, str]]:
    """``(file:line, line)`` for each line of ``text`` without its end; a line longer than
    :data:`MAX_LINE` is refused (named) and not given."""
    for number_, line in enumerate(text.splitlines(), start=1):
        source = f"{name}:{number_}"
        if len(line) > MAX_LINE:
            parsed.refused.append(Problem(source=source, why=f"longer than {MAX_LINE} characters"))
            continue
        yield source, line


def number(text: str, *, digits: int = 12) -> int | None:
    """A non-negative decimal of at most ``digits`` digits, else None (bounded before
    ``int()``, which costs quadratic time on a long string)."""
    text = text.strip()
    if not text or len(text) > digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)

"""Numbers read from untrusted text (the wire, request URLs, config, operator input): ASCII
digits only, with a length cap before conversion.

``str.isdigit`` is true for "²" and "٣" (``int`` refuses the first and takes the second), and
``int`` reads 4,300 digits before it refuses a string; a client-supplied number gets neither.
"""

from __future__ import annotations

MAX_DIGITS = 20
"""Enough for any unsigned 64-bit value; every number these protocols carry fits."""


def decimal(text: str, *, max_digits: int = MAX_DIGITS) -> int | None:
    """The value of ``text`` when it is 1 to ``max_digits`` ASCII digits, else None.

    Never raises: the length is checked before anything is converted.
    """
    if not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)

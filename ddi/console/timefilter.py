"""The console's time filters, as ``ddi changes --since/--until`` takes them: ``2d``, ``3h``,
``30m``, ``45s``, ``1w`` ago, a date (``2026-12-04``) or a time (``2026-12-04 10:30``); the
console shows times in UTC, so a date or time without an offset is read as UTC. Pure: ``now``
comes in."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ddi.errors import Invalid

_AGO = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_TEXT = 32
HINT = "2d, 3h, 30m, 1w (ago), 2026-12-04 or 2026-12-04 10:30 (UTC)"


def parse_time(field: str, text: str, now: float) -> float | None:
    """Unix seconds for ``text`` (None when empty).

    Raises:
        Invalid: naming ``field``, when ``text`` is none of the forms above.
    """
    text = text.strip()
    if not text:
        return None
    ago = _AGO.match(text)
    if ago is not None:
        return float(int(now) - int(ago.group(1)) * _UNITS[ago.group(2)])
    if len(text) <= MAX_TEXT:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return when.timestamp()
    raise Invalid(field, text[:MAX_TEXT], f"give {HINT}")

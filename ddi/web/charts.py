"""Small inline SVG charts drawn on the server: a usage bar and a line over time.

Each function returns SVG markup (escaped text, numbers formatted here) with ``role="img"`` and
a ``<title>``, so a screen reader reads what the picture shows; the pages print the figure as
text beside it as well, so nothing depends on seeing the colour. Pure: no clock; the caller
passes ``now`` for the time axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

BAR_WIDTH = 160
BAR_HEIGHT = 14
WARN_AT = 0.8
"""Utilisation from which a bar is drawn as nearly full (``class="warn"``)."""
FULL_AT = 0.95
"""Utilisation from which a bar is drawn as full (``class="full"``)."""


def level(fraction: float) -> str:
    """``ok``, ``warn`` or ``full``: the words the pages print beside a bar, and its class."""
    if fraction >= FULL_AT:
        return "full"
    if fraction >= WARN_AT:
        return "warn"
    return "ok"


def usage_bar(fraction: float, *, label: str) -> str:
    """A horizontal bar filled to ``fraction`` (clamped to 0..1), titled ``label``."""
    clamped = min(1.0, max(0.0, fraction))
    filled = round(clamped * BAR_WIDTH, 1)
    title = escape(f"{label}: {clamped * 100:.1f}% used")
    return (
        f'<svg class="bar {level(clamped)}" width="{BAR_WIDTH}" height="{BAR_HEIGHT}" '
        f'viewBox="0 0 {BAR_WIDTH} {BAR_HEIGHT}" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<rect class="track" x="0" y="0" width="{BAR_WIDTH}" height="{BAR_HEIGHT}"/>'
        f'<rect class="fill" x="0" y="0" width="{filled}" height="{BAR_HEIGHT}"/>'
        "</svg>"
    )


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.1f}k"
    if value >= 10 or value == 0:
        return f"{value:.0f}"
    return f"{value:.2f}"


def line_chart(
    points: Sequence[tuple[float, float]],
    *,
    now: float,
    span: float,
    title: str,
    unit: str,
    width: int = 320,
    height: int = 90,
    ceiling: float | None = None,
) -> str:
    """A line of ``(at, value)`` points over the ``span`` seconds before ``now``.

    The vertical scale runs from 0 to ``ceiling`` (default: the largest value shown); the
    labels give the top of the scale and the span, the title the latest value in ``unit``.
    With fewer than two points in the span the chart says so in words instead of drawing.
    """
    left, top, bottom = 36, 6, 16
    plot_w, plot_h = width - left - 4, height - top - bottom
    shown = [(at, v) for at, v in points if now - span <= at <= now]
    latest = f"latest {_short(shown[-1][1])} {unit}" if shown else "no samples yet"
    label = escape(f"{title}: {latest}")
    head = (
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{label}"><title>{label}</title>'
        f'<rect class="frame" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>'
    )
    hours = span / 3600
    axis = (
        f'<text x="{left}" y="{height - 3}">-{hours:g} h</text>'
        f'<text x="{width - 4}" y="{height - 3}" text-anchor="end">now</text>'
    )
    if len(shown) < 2:
        note = escape("collecting samples" if shown else "no samples yet")
        return (
            f'{head}{axis}<text x="{left + plot_w / 2}" y="{top + plot_h / 2 + 4}" '
            f'text-anchor="middle">{note}</text></svg>'
        )
    top_value = ceiling if ceiling is not None else max(v for _, v in shown)
    scale = top_value if top_value > 0 else 1.0
    coords = " ".join(
        f"{left + (at - (now - span)) / span * plot_w:.1f},"
        f"{top + plot_h - min(v, scale) / scale * plot_h:.1f}"
        for at, v in shown
    )
    return (
        f'{head}<text x="{left - 3}" y="{top + 8}" text-anchor="end">{_short(top_value)}</text>'
        f'<text x="{left - 3}" y="{top + plot_h}" text-anchor="end">0</text>{axis}'
        f'<polyline class="line" points="{coords}"/></svg>'
    )

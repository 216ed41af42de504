"""Human and JSON output for the CLI: aligned tables, key/value blocks, exact JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import click

Column = str | tuple[str, str] | tuple[str, str, Callable[[Any], str]]
"""``key``, ``(key, header)`` or ``(key, header, formatter)``; the header defaults to KEY."""


def cell(value: Any) -> str:
    """How one value reads in a table: None and empty as ``-``, lists comma-joined."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    return str(value)


def format_time(value: Any) -> str:
    """Unix seconds as local ``YYYY-MM-DD HH:MM:SS``."""
    if value is None or value == "":
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(value)))


def _spec(column: Column) -> tuple[str, str, Callable[[Any], str]]:
    if isinstance(column, str):
        return column, column.upper(), cell
    if len(column) == 2:
        return column[0], column[1], cell
    return column[0], column[1], column[2]


def format_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """Rows as a table with a header line and left-aligned, space-separated columns."""
    specs = [_spec(c) for c in columns]
    lines = [[header for _, header, _ in specs]]
    lines += [[fmt(row.get(key)) for key, _, fmt in specs] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(specs))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def print_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column]) -> None:
    click.echo(format_table(rows, columns))


def print_json(value: Any) -> None:
    """The API's JSON as it came, indented, keys sorted, so scripts can rely on it."""
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def print_fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """``key: value`` lines with the values aligned."""
    items = [(key, cell(value)) for key, value in pairs]
    width = max((len(key) for key, _ in items), default=0)
    for key, value in items:
        click.echo(f"{key + ':':<{width + 1}} {value}")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")

"""Human and JSON output for the CLI: aligned tables, key/value blocks, exact JSON."""

from __future__ import annotations

import json
import sys
import time
import unicodedata
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
    return safe(str(value))


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


_CONTROL = {"Cc", "Cf", "Zl", "Zp"}


def safe(text: str) -> str:
    """``text`` with control and format characters escaped (``\\n``, ``\\x1b``, ``\\u202e``):
    a value from the log or a client (a reason, a hostname option) cannot move the cursor,
    colour the terminal or forge a table row."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) in _CONTROL:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def json_requested(args: Sequence[str]) -> bool:
    """Whether ``--json`` is among the options of a command line (before any ``--``)."""
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options


def json_error(exc: click.ClickException) -> dict[str, Any]:
    """An error as ``--json`` prints it on stdout: what, why, the exit code, and the daemon's
    own error fields (``field``, ``holder``...) when it refused."""
    body = getattr(exc, "body", None)
    fields = dict(body) if isinstance(body, Mapping) else {}
    kind = "usage" if isinstance(exc, click.UsageError) else type(exc).__name__.lower()
    return {
        **fields,
        "error": str(fields.get("error") or kind),
        "message": exc.format_message(),
        "exit_code": exc.exit_code,
    }


class JsonErrorsGroup(click.Group):
    """The root group: with ``--json`` anywhere on the command line an error, a usage error
    included, is one JSON object on stdout (:func:`json_error`) with the usual exit code."""

    def main(  # type: ignore[override]  # one signature for click's two overloads
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        standalone = bool(extra.pop("standalone_mode", True))
        if not json_requested(argv) or not standalone:
            return super().main(argv, prog_name, standalone_mode=standalone, **extra)
        try:
            result = super().main(argv, prog_name, standalone_mode=False, **extra)
        except click.ClickException as exc:
            print_json(json_error(exc))
            sys.exit(exc.exit_code)
        except click.Abort:
            print_json({"error": "aborted", "message": "aborted", "exit_code": 1})
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

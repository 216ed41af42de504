"""``ddi changes``: the change log (the outbox synced to central), oldest first, filtered by
kind, object, actor, op and time."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from ddi.cli.client import api
from ddi.cli.output import Column, format_time, json_option, print_json, print_table

_AGO = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
KINDS = ("subnet", "host", "lease", "record")


def summary(change: Mapping[str, Any]) -> str:
    """A short human description of a change's object."""
    image = change.get("image") or {}
    kind = change.get("kind")
    if kind == "host":
        return f"{image.get('hostname')} {image.get('ip')}"
    if kind == "lease":
        return f"{image.get('ip')} {image.get('state')}"
    if kind == "subnet":
        return f"{image.get('name')} {image.get('cidr')}"
    if kind == "record":
        return f"{image.get('name')} {image.get('rtype')} {image.get('value')}"
    return str(change.get("object_id", ""))


if TYPE_CHECKING:  # generic from click 8.2 on; pyproject allows 8.1
    _ParamType = click.ParamType[int]
else:
    _ParamType = click.ParamType


class TimeParam(_ParamType):
    """A time as ``2d``/``3h``/``30m``/``45s``/``1w`` ago, a date (``2026-12-04``) or a local
    time (``2026-12-04T10:30``, ``2026-12-04 10:30:00``), as Unix seconds."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        ago = _AGO.match(text)
        if ago is not None:
            return int(time.time()) - int(ago.group(1)) * _UNITS[ago.group(2)]
        if len(text) <= 32:
            try:
                return int(datetime.fromisoformat(text).timestamp())
            except ValueError:
                pass
        raise click.BadParameter(
            f"{text!r}: give 2d, 3h, 30m, 1w, 2026-12-04 or 2026-12-04T10:30", ctx, param
        )


TIME = TimeParam()


def change_filters(f: Any) -> Any:
    """``--since`` and ``--until`` for every command that reads the change log."""
    f = click.option("--until", type=TIME, help="Only entries before TIME.")(f)
    return click.option(
        "--since", type=TIME, help="Only entries from TIME: 2d (ago), 3h, 2026-12-04, ..."
    )(f)


CHANGE_COLUMNS: list[Column] = [
    "seq",
    ("time", "TIME", format_time),
    "kind",
    "op",
    "object",
    "actor",
    "reason",
]


def print_changes(entries: list[dict[str, Any]]) -> None:
    print_table([{**c, "object": summary(c)} for c in entries], CHANGE_COLUMNS)


@click.group()
def changes() -> None:
    """The change log: one entry per change, in commit order."""


@changes.command("list")
@click.option(
    "--after",
    type=click.IntRange(min=0),
    default=None,
    metavar="SEQ",
    help="Entries after SEQ, oldest first. Without it: the most recent LIMIT entries.",
)
@click.option("--limit", type=click.IntRange(min=1, max=10000), default=100, show_default=True)
@click.option("--kind", type=click.Choice(KINDS), multiple=True, help="Only these kinds.")
@click.option("--object", "object_id", metavar="ID", help="Only this object (a lease's is its IP).")
@click.option("--actor", metavar="NAME", help="Only changes made by NAME (dhcp, central, alice).")
@click.option("--op", type=click.Choice(["upsert", "delete"]), help="Only this operation.")
@change_filters
@json_option
def list_(
    after: int | None,
    limit: int,
    kind: tuple[str, ...],
    object_id: str | None,
    actor: str | None,
    op: str | None,
    since: int | None,
    until: int | None,
    as_json: bool,
) -> None:
    """List change-log entries in commit order (seq rising)."""
    query: dict[str, Any] = {
        "kind": ",".join(kind) or None,
        "object": object_id,
        "actor": actor,
        "op": op,
        "since": since,
        "until": until,
        "limit": limit,
    }
    if after is None:
        query["latest"] = 1
    else:
        query["after"] = after
    entries = api().get("/v1/changes", **query)["changes"]
    if as_json:
        print_json(entries)
        return
    print_changes(entries)

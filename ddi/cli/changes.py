"""``ddi changes``: the change log (the outbox synced to central), oldest first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from ddi.cli.client import api
from ddi.cli.output import format_time, json_option, print_json, print_table


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
@json_option
def list_(after: int | None, limit: int, as_json: bool) -> None:
    """List change-log entries in commit order (seq rising)."""
    client = api()
    if after is None:
        last_seq = int(client.get("/v1/changes", after=0, limit=1)["last_seq"])
        after = max(0, last_seq - limit)
    entries = client.get("/v1/changes", after=after, limit=limit)["changes"]
    if as_json:
        print_json(entries)
        return
    rows = [{**c, "object": summary(c)} for c in entries]
    print_table(
        rows,
        [
            "seq",
            ("time", "TIME", format_time),
            "kind",
            "op",
            "object",
            "actor",
            "reason",
        ],
    )

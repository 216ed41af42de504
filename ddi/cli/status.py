"""``ddi status``: what the daemon is, how long it has run, and each area's statistics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from ddi.cli.client import api
from ddi.cli.output import json_option, print_fields, print_json


def _uptime(seconds: float) -> str:
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (
        f"{days}d {hours:02}:{minutes:02}:{secs:02}"
        if days
        else f"{hours:02}:{minutes:02}:{secs:02}"
    )


@click.command()
@json_option
def status(as_json: bool) -> None:
    """Version, uptime, store, and every area's statistics."""
    state = api().get("/v1/status")
    if as_json:
        print_json(state)
        return
    store: Mapping[str, Any] = state.get("store", {})
    print_fields(
        [
            ("site", state.get("site")),
            ("version", state.get("version")),
            ("uptime", _uptime(float(state.get("uptime", 0)))),
            ("event loop", state.get("event_loop")),
            ("config", state.get("config")),
            ("store", store.get("path")),
            ("epoch", store.get("epoch")),
            ("last seq", store.get("last_seq")),
            ("subnets", store.get("subnets")),
            ("hosts", store.get("hosts")),
            ("leases", store.get("leases")),
            ("records", store.get("records")),
        ]
    )
    for area, snapshot in sorted(state.get("statistics", {}).items()):
        click.echo(f"\n[{area}]")
        if isinstance(snapshot, Mapping) and snapshot:
            print_fields(sorted(snapshot.items()))
        else:
            click.echo("(nothing)")

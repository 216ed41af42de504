"""``ddi status``: what the daemon is, how long it has run, the change log's size, the last
reload's result, how full each pool is, and each area's statistics."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import click

from ddi.cli.client import api
from ddi.cli.output import format_time, json_option, print_fields, print_json, print_table
from ddi.cli.subnet import USAGE_COLUMNS


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


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _health(health: Any) -> list[tuple[str, Any]]:
    """The store's disk health: free space, and the last write the disk refused, if any."""
    if not isinstance(health, Mapping):
        return []
    free = f"{_size(health['free_bytes'])} of {_size(health['total_bytes'])}"
    if health.get("low_space"):
        free += " (LOW: the WAL is checkpointed; free some space)"
    rows: list[tuple[str, Any]] = [("free space", free), ("wal", _size(health["wal_bytes"]))]
    if health.get("write_failures"):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(health["last_write_error_at"]))
        rows.append(("write failures", health["write_failures"]))
        rows.append(("last write error", f"{health['last_write_error']} at {when}"))
    else:
        rows.append(("write failures", 0))
    return rows


def _log(size: Any) -> list[tuple[str, Any]]:
    """The change log's size: entries, bytes on disk, and how far back it goes."""
    if not isinstance(size, Mapping):
        return []
    text = f"{size['entries']} entries"
    if size.get("bytes", -1) >= 0:
        text += f", {_size(size['bytes'])}"
    if size.get("oldest") is not None:
        text += f", since {format_time(size['oldest'])}"
    return [("change log", text)]


def _reload(result: Any) -> list[tuple[str, Any]]:
    """The last reload: when, and applied or refused with the reason."""
    if not isinstance(result, Mapping):
        return [("last reload", "none since start")]
    when = format_time(result.get("at"))
    if result.get("applied"):
        text = f"applied at {when}" + (" (forced)" if result.get("forced") else "")
    else:
        text = f"REFUSED at {when}: {result.get('reason')}"
    return [("last reload", text)]


@click.command()
@json_option
def status(as_json: bool) -> None:
    """Version, uptime, store, change log, last reload, pools, and every area's statistics."""
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
            ("api", ", ".join(state.get("api") or [])),
            ("tls sha256", state.get("tls_fingerprint") or "none (no TCP listener or tls = false)"),
            ("store", store.get("path")),
            ("epoch", store.get("epoch")),
            ("last seq", store.get("last_seq")),
            ("subnets", store.get("subnets")),
            ("hosts", store.get("hosts")),
            ("leases", store.get("leases")),
            ("records", store.get("records")),
            *_health(store.get("health")),
            *_log(store.get("change_log")),
            *_reload(state.get("reload")),
        ]
    )
    pools = state.get("pools") or []
    if pools:
        click.echo("\n[pools]")
        print_table(
            [{"subnet": s["name"], **p} for s in pools for p in s.get("pools", [])],
            ["subnet", "start", "end", "size", *USAGE_COLUMNS],
        )
    for area, snapshot in sorted(state.get("statistics", {}).items()):
        click.echo(f"\n[{area}]")
        if isinstance(snapshot, Mapping) and snapshot:
            print_fields(sorted(snapshot.items()))
        else:
            click.echo("(nothing)")

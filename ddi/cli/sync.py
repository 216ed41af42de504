"""``ddi sync``: replication to the central collector."""

from __future__ import annotations

import sys

import click

from ddi.cli.client import actor, api
from ddi.cli.output import format_time, json_option, print_fields, print_json, print_table


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = int(seconds)
    if total < 120:
        return f"{seconds:.1f}s"
    hours, rest = divmod(total, 3600)
    return f"{hours}h{rest // 60:02}m" if hours else f"{total // 60}m{total % 60:02}s"


def _print_status(state: dict[str, object]) -> None:
    if not state.get("configured"):
        click.echo("sync is not configured (no [sync] section)")
        return
    last = state.get("last_success")
    print_fields(
        [
            ("central", state.get("central")),
            ("link", state.get("link")),
            ("last success", format_time(last) if last else "never"),
            ("last error", state.get("last_error") or "-"),
            ("backlog", f"{state.get('backlog_entries')} entries"),
            ("oldest unsynced", _age(state.get("oldest_unsynced_age"))),  # type: ignore[arg-type]
            ("epoch", state.get("epoch")),
            ("acked seq", f"{state.get('acked_seq')} of {state.get('last_seq')}"),
            ("conflicts", state.get("conflicts")),
        ]
    )


@click.group()
def sync() -> None:
    """Replication to the central collector."""


@sync.command()
@json_option
def status(as_json: bool) -> None:
    """Link state, last success, backlog and its age, epoch, conflicts."""
    state = api().get("/v1/sync/status")
    if as_json:
        print_json(state)
    else:
        _print_status(state)


@sync.command()
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds to wait for the round to finish.")  # fmt: skip
@json_option
def now(timeout: float, as_json: bool) -> None:
    """Sync now (skip any backoff wait) and show the result; exit 1 if central was not
    reached or the round did not finish in time."""
    client = api()
    client.timeout = max(client.timeout, timeout + 5)
    state = client.post("/v1/sync/now", {"timeout": timeout})
    if as_json:
        print_json(state)
    else:
        _print_status(state)
    if not state.get("completed") or state.get("link") != "up":
        sys.exit(1)


@sync.command()
@click.option("--open", "open_only", is_flag=True, help="Unresolved conflicts only.")
@json_option
def conflicts(open_only: bool, as_json: bool) -> None:
    """Central reservations the site refused because they collide with its own state."""
    rows = api().get("/v1/sync/conflicts", **({"open": 1} if open_only else {}))["conflicts"]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["state"] = "resolved" if row.get("resolved_at") else "open"
    print_table(
        rows,
        [
            "id",
            ("object_id", "OBJECT"),
            "field",
            "value",
            ("detected_at", "DETECTED", format_time),
            "state",
        ],
    )


@sync.command()
@click.argument("conflict_id", type=int)
@click.option("--keep", type=click.Choice(["edge", "central"]), required=True,
              help="edge: keep serving the site's object; central: replace the colliding "
                   "site hosts by central's reservation.")  # fmt: skip
@click.option("--reason", default="", help="Why (recorded in the change log).")
@json_option
def resolve(conflict_id: int, keep: str, reason: str, as_json: bool) -> None:
    """Resolve a conflict with a central reservation."""
    body = {"keep": keep, "actor": actor(), "reason": reason}
    row = api().post(f"/v1/sync/conflicts/{conflict_id}/resolve", body)["conflict"]
    if as_json:
        print_json(row)
    else:
        click.echo(f"conflict {row['id']} resolved: kept {keep}")

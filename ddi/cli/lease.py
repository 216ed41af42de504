"""``ddi lease``: DHCP leases (list, show, release)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from ddi.cli.changes import change_filters
from ddi.cli.client import api, quote_key, write_body, write_options
from ddi.cli.output import (
    Column,
    cell,
    format_time,
    json_option,
    print_fields,
    print_json,
    print_table,
)
from ddi.ipam.vendor import vendor_label

LEASE_COLUMNS: list[Column] = [
    "ip",
    "mac",
    ("mac", "VENDOR", lambda mac: cell(vendor_label(mac))),
    ("client_id", "CLIENT-ID"),
    "hostname",
    "state",
    ("start", "START", format_time),
    ("end", "END", format_time),
    "subnet",
]
LEASE_FIELDS = ("ip", "mac", "client_id", "circuit_id", "hostname", "state", "subnet")

LEASE6_COLUMNS: list[Column] = [
    "kind",
    "prefix",
    "duid",
    "iaid",
    "hostname",
    "state",
    ("end", "END", format_time),
    "subnet",
]

STATES = ("bound", "released", "expired", "declined")


@click.group()
def lease() -> None:
    """DHCP leases."""


@lease.command("list")
@click.option("--subnet", metavar="NAME", help="Only leases in this subnet.")
@click.option("--state", type=click.Choice(STATES), help="Only leases in this state.")
@click.option("--v6", "v6", is_flag=True, help="Only DHCPv6 leases (IA_NA and IA_PD).")
@json_option
def list_(subnet: str | None, state: str | None, v6: bool, as_json: bool) -> None:
    """List leases (every state unless --state): DHCPv4 by IP, then DHCPv6 by kind and prefix.

    --json prints the DHCPv4 leases (the DHCPv6 ones with --v6)."""
    client = api()
    if v6:
        leases6 = client.get("/v1/leases6", subnet=subnet, state=state)["leases"]
        if as_json:
            print_json(leases6)
        else:
            print_table(leases6, LEASE6_COLUMNS)
        return
    leases = client.get("/v1/leases", subnet=subnet, state=state)["leases"]
    if as_json:
        print_json(leases)
        return
    print_table(leases, LEASE_COLUMNS)
    if subnet is None:
        leases6 = client.get("/v1/leases6", state=state)["leases"]
        if leases6:
            click.echo()
            print_table(leases6, LEASE6_COLUMNS)


def _show_one(image: Mapping[str, Any]) -> None:
    print_fields([(k, image.get(k)) for k in LEASE_FIELDS] + [
        ("vendor", vendor_label(image.get("mac"))),
        ("start", format_time(image.get("start"))),
        ("end", format_time(image.get("end"))),
    ])  # fmt: skip


@lease.command("show")
@click.argument("key", metavar="IP|MAC")
@json_option
def show(key: str, as_json: bool) -> None:
    """Show the lease on an IP, or every lease of a MAC or client-id (bound first)."""
    leases = api().get(f"/v1/leases/{quote_key(key)}")["leases"]
    if as_json:
        print_json(leases[0] if len(leases) == 1 else leases)
        return
    for i, image in enumerate(leases):
        if i:
            click.echo()
        _show_one(image)


@lease.command("release")
@click.argument("ip")
@write_options
@json_option
def release(ip: str, reason: str | None, dry_run: bool, as_json: bool) -> None:
    """End the bound lease on IP now; the address returns to the pool (logged as a change)."""
    result = api().post(f"/v1/leases/{quote_key(ip)}/release", write_body(reason, dry_run))
    if as_json:
        print_json(result)
        return
    if dry_run:
        click.echo(f"dry run: would release {ip}; nothing written")
    else:
        click.echo(f"released {ip} (change {result['change']['seq']})")


HISTORY_COLUMNS: list[Column] = [
    ("time", "TIME", format_time),
    "kind",
    "ip",
    "mac",
    "hostname",
    "state",
    ("end", "END", format_time),
    "actor",
]


@lease.command("history")
@click.argument("key", metavar="IP|MAC|HOSTNAME")
@click.option("--limit", type=click.IntRange(min=1, max=10000), default=100, show_default=True)
@change_filters
@json_option
def history(key: str, limit: int, since: int | None, until: int | None, as_json: bool) -> None:
    """Who had an address, where a MAC has been, which addresses a name had: the lease and
    reservation entries of the change log that name KEY, oldest first (the latest LIMIT).
    """
    entries = api().get(
        "/v1/changes",
        kind="lease,host",
        subject=key,
        since=since,
        until=until,
        limit=limit,
        latest=1,
    )["changes"]
    if as_json:
        print_json(entries)
        return
    rows = []
    for change in entries:
        image = change.get("image") or {}
        state = image.get("state") or ("reserved" if change["op"] == "upsert" else "unreserved")
        rows.append({**image, "time": change["time"], "kind": change["kind"], "state": state,
                     "actor": change["actor"]})  # fmt: skip
    print_table(rows, HISTORY_COLUMNS)

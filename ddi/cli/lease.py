"""``ddi lease``: DHCP leases."""

from __future__ import annotations

import click

from ddi.cli.client import api
from ddi.cli.output import format_time, json_option, print_json, print_table


@click.group()
def lease() -> None:
    """DHCP leases."""


@lease.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List leases (every state), by IP."""
    leases = api().get("/v1/leases")["leases"]
    if as_json:
        print_json(leases)
        return
    print_table(
        leases,
        [
            "ip",
            "mac",
            ("client_id", "CLIENT-ID"),
            "hostname",
            "state",
            ("start", "START", format_time),
            ("end", "END", format_time),
            "subnet",
        ],
    )

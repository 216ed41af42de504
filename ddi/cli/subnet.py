"""``ddi subnet``: the subnets the site serves (they come from the config file)."""

from __future__ import annotations

from typing import Any

import click

from ddi.cli.client import api
from ddi.cli.output import json_option, print_json, print_table


def _pools(pools: list[dict[str, Any]]) -> str:
    return ",".join(f"{p['start']}-{p['end']}" for p in pools) or "-"


@click.group()
def subnet() -> None:
    """Subnets (configured in the config file; SIGHUP applies edits)."""


@subnet.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List the site's subnets."""
    subnets = api().get("/v1/subnets")["subnets"]
    if as_json:
        print_json(subnets)
        return
    print_table(
        subnets,
        [
            "name",
            "cidr",
            "gateway",
            "interface",
            ("pools", "POOLS", _pools),
            ("lease_time", "LEASE-TIME"),
            "domain",
            "boot",
        ],
    )

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


def _pd_pools(pools: list[dict[str, Any]]) -> str:
    return ",".join(f"{p['prefix']}:/{p['delegated_length']}" for p in pools) or "-"


@subnet.command("list")
@click.option("-6", "--ipv6", "ipv6", is_flag=True, help="The IPv6 subnets ([[subnets6]]).")
@json_option
def list_(ipv6: bool, as_json: bool) -> None:
    """List the site's subnets (with -6, its IPv6 subnets)."""
    answer = api().get("/v1/subnets")
    subnets = answer.get("subnets6", []) if ipv6 else answer["subnets"]
    if as_json:
        print_json(subnets)
        return
    if ipv6:
        print_table(
            subnets,
            [
                "name",
                "cidr",
                "interface",
                ("pools", "POOLS", _pools),
                ("pd_pools", "PD-POOLS", _pd_pools),
                ("valid_lifetime", "VALID"),
                "domain",
                "boot",
            ],
        )
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

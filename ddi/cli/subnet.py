"""``ddi subnet``: the subnets the site serves (they come from the config file), each with how
full its pools are: used, reserved, declined, free and utilisation (``ddi.ipam.usage``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from ddi.cli.client import CliError, api
from ddi.cli.output import Column, json_option, print_fields, print_json, print_table


def _pools(pools: list[dict[str, Any]]) -> str:
    return ",".join(f"{p['start']}-{p['end']}" for p in pools) or "-"


def percent(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"


USAGE_COLUMNS: list[Column] = [
    "used",
    "reserved",
    "declined",
    "free",
    ("utilisation", "UTIL", percent),
]


def _total(subnet: Mapping[str, Any]) -> dict[str, Any]:
    usage = subnet.get("usage") or {}
    total: dict[str, Any] = dict(usage.get("total") or {})
    return total


@click.group()
def subnet() -> None:
    """Subnets (configured in the config file; `ddi reload` applies edits)."""


def _pd_pools(pools: list[dict[str, Any]]) -> str:
    return ",".join(f"{p['prefix']}:/{p['delegated_length']}" for p in pools) or "-"


@subnet.command("list")
@click.option("-6", "--ipv6", "ipv6", is_flag=True, help="The IPv6 subnets ([[subnets6]]).")
@json_option
def list_(ipv6: bool, as_json: bool) -> None:
    """List the site's subnets with their pools' usage (with -6, its IPv6 subnets)."""
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
    rows = [{**s, **{k: _total(s).get(k) for k in ("used", "reserved", "declined", "free",
                                                     "utilisation")}} for s in subnets]  # fmt: skip
    print_table(
        rows,
        [
            "name",
            "cidr",
            "gateway",
            "interface",
            ("pools", "POOLS", _pools),
            *USAGE_COLUMNS,
            ("lease_time", "LEASE-TIME"),
            "domain",
            "boot",
        ],
    )


@subnet.command("show")
@click.argument("name")
@json_option
def show(name: str, as_json: bool) -> None:
    """Show subnet NAME and each of its pools: size, used, reserved, declined, free, utilisation.

    Reserved counts addresses a reservation holds; declined, those a DECLINE quarantines;
    used, active leases; utilisation is what cannot be handed out, over the pool's size.
    """
    subnets = api().get("/v1/subnets")["subnets"]
    found = [s for s in subnets if s.get("name") == name]
    if not found:
        known = ", ".join(str(s.get("name")) for s in subnets) or "none"
        raise CliError(f"refused: no subnet {name!r} (the site has: {known})")
    image = found[0]
    if as_json:
        print_json(image)
        return
    fields = [(k, v) for k, v in image.items() if k not in ("usage", "pools")]
    total = _total(image)
    fields.append(("utilisation", f"{percent(total.get('utilisation'))} of {total.get('size')}"))
    print_fields(fields)
    click.echo()
    print_table(
        (image.get("usage") or {}).get("pools", []),
        ["start", "end", "size", *USAGE_COLUMNS],
    )

"""``ddi boot``: netboot profiles, and what a given client would be told to boot."""

from __future__ import annotations

from typing import Any

import click

from ddi.cli.client import api
from ddi.cli.output import cell, json_option, print_fields, print_json, print_table


@click.group()
def boot() -> None:
    """Netboot profiles and decisions."""


@boot.command("profiles")
@json_option
def profiles(as_json: bool) -> None:
    """List boot profiles: files per architecture, iPXE script, who uses each."""
    result = api().get("/v1/boot/profiles")["profiles"]
    if as_json:
        print_json(result)
        return
    rows = [{**p, "files": " ".join(f"{k}={v}" for k, v in p["files"].items())} for p in result]
    print_table(
        rows,
        ["name", "files", ("ipxe_script", "IPXE-SCRIPT"), ("next_server", "NEXT-SERVER"),
         "subnets", "hosts"],
    )  # fmt: skip


@boot.command("explain")
@click.option("--mac", metavar="MAC", help="The client's MAC address (DHCPv4).")
@click.option(
    "--v6",
    "v6",
    metavar="MAC|DUID",
    help="Explain DHCPv6 netboot (RFC 5970) for this client: a MAC or a DUID in hex.",
)
@click.option(
    "--arch", type=click.IntRange(0, 65535), metavar="N", help="Option 93 (DHCPv6: 61) value."
)
@click.option("--user-class", metavar="TEXT", help="Option 77, e.g. iPXE.")
@click.option(
    "--vendor-class",
    metavar="TEXT",
    help="Option 60; default PXEClient:Arch:… (HTTPClient:… for arch 16 and 19).",
)
@click.option("--subnet", metavar="NAME", help="Subnet the client is on (default: from its IP).")
@json_option
def explain(
    mac: str | None,
    v6: str | None,
    arch: int | None,
    user_class: str | None,
    vendor_class: str | None,
    subnet: str | None,
    as_json: bool,
) -> None:
    """Print the boot options the DHCP server would send this client, and why."""
    if v6 is not None:
        _explain6(v6, arch, user_class, vendor_class, subnet, as_json)
        return
    if mac is None:
        raise click.UsageError("give --mac (DHCPv4) or --v6 MAC|DUID")
    result: dict[str, Any] = api().get(
        "/v1/boot/explain",
        mac=mac,
        arch=arch,
        user_class=user_class,
        vendor_class=vendor_class,
        subnet=subnet,
    )
    if as_json:
        print_json(result)
        return
    client = result["client"]
    kind = [k for k in ("is_pxe_client", "is_http_client", "is_ipxe") if client[k]]
    host = result.get("host")
    profile = result.get("profile")
    if profile is not None:
        profile = f"{profile} (from {result.get('profile_source')})"
    print_fields(
        [
            ("client", f"{client['mac']} arch {result['arch_name']} {cell(kind)}"),
            ("host", None if host is None else f"{host['hostname']} {host['ip']}"),
            ("subnet", result.get("subnet")),
            ("rule", result["rule"]),
            ("profile", profile),
            ("siaddr", result.get("siaddr") or "-"),
            ("file", result.get("file") or "-"),
        ]
    )
    if result.get("problem"):
        click.echo(f"problem: {result['problem']}")
    if result["options"]:
        click.echo("options:")
        for option in result["options"]:
            click.echo(f"  {option['code']:>3} {option['name']}: {option['value']}")
    else:
        click.echo("options: none (no boot options are sent)")
    if result.get("server") is None and "{server}" in str(result.get("file", "")) + str(
        result["options"]
    ):
        click.echo("note: {server} is the DHCP server's address on the client's link")


def _explain6(
    client: str,
    arch: int | None,
    user_class: str | None,
    vendor_class: str | None,
    subnet: str | None,
    as_json: bool,
) -> None:
    result: dict[str, Any] = api().get(
        "/v1/boot/explain6",
        client=client,
        arch=arch,
        user_class=user_class,
        vendor_class=vendor_class,
        subnet=subnet,
    )
    if as_json:
        print_json(result)
        return
    info = result["client"]
    kind = [k for k in ("is_pxe_client", "is_http_client", "is_ipxe") if info[k]]
    host = result.get("host")
    profile = result.get("profile")
    if profile is not None:
        profile = f"{profile} (from {result.get('profile_source')})"
    who = info["duid"] or info["mac"]
    print_fields(
        [
            ("client", f"{who} arch {result['arch_name']} {cell(kind)}"),
            ("host", None if host is None else f"{host['hostname']} {host.get('ip6')}"),
            ("subnet", result.get("subnet")),
            ("rule", result["rule"]),
            ("profile", profile),
            ("url", result.get("url") or "-"),
            ("params", " ".join(result.get("params") or ()) or "-"),
        ]
    )
    if result.get("problem"):
        click.echo(f"problem: {result['problem']}")
    if result["options"]:
        click.echo("options:")
        for option in result["options"]:
            click.echo(f"  {option['code']:>3} {option['name']}: {option['value']}")
    else:
        click.echo("options: none (no boot options are sent)")

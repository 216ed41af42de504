"""``ddi reserve``: reservations (host objects) — add, list, show, set, rm."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from ddi.cli.client import api, quote_key, write_body, write_options
from ddi.cli.output import Column, cell, json_option, print_fields, print_json, print_table

F = TypeVar("F", bound=Callable[..., Any])

HOST_COLUMNS: list[Column] = [
    "hostname",
    "ip",
    "mac",
    ("client_id", "CLIENT-ID"),
    ("circuit_id", "CIRCUIT-ID"),
    "boot",
    "owner",
    "version",
]

HOST_FIELDS = (
    "id",
    "hostname",
    "ip",
    "mac",
    "client_id",
    "circuit_id",
    "boot",
    "boot_file",
    "boot_script",
    "owner",
    "version",
)

CLEARABLE = ("mac", "client_id", "circuit_id", "boot", "boot_file", "boot_script")


def _host_options(*, required: bool) -> Callable[[F], F]:
    def decorate(f: F) -> F:
        options = [
            click.option("--mac", metavar="MAC", help="Client hardware address."),
            click.option("--client-id", metavar="ID", help="DHCP client identifier (option 61)."),
            click.option("--circuit-id", metavar="ID", help="Relay agent circuit-id (option 82)."),
            click.option("--ip", metavar="IP", required=required, help="Reserved IPv4 address."),
            click.option("--hostname", metavar="NAME", required=required, help="One DNS label."),
            click.option("--boot", metavar="PROFILE", help="Boot profile name."),
            click.option("--boot-file", metavar="FILE", help="Boot file overriding the profile."),
            click.option(
                "--boot-script", metavar="URL", help="iPXE script URL overriding the profile."
            ),
        ]
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def _show_change(result: Mapping[str, Any], verb: str, dry_run: bool) -> None:
    host = result.get("host") or result["change"].get("image", {})
    seq = result["change"].get("seq")
    name = f"{host.get('hostname')} {host.get('ip')}"
    if dry_run:
        click.echo(f"dry run: would {verb} host {name}; nothing written")
    else:
        click.echo(f"{verb} host {name} (change seq {seq})")
    before = result.get("before")
    if before is None:
        print_fields((key, host.get(key)) for key in HOST_FIELDS)
        return
    print_fields(
        (key, host.get(key))
        if before.get(key) == host.get(key)
        else (key, f"{cell(before.get(key))} -> {cell(host.get(key))}")
        for key in HOST_FIELDS
    )


@click.group()
def reserve() -> None:
    """Reservations: a MAC, client-id or circuit-id bound to an IP, hostname and boot profile."""


@reserve.command("add")
@_host_options(required=True)
@write_options
@json_option
def add(
    mac: str | None,
    client_id: str | None,
    circuit_id: str | None,
    ip: str,
    hostname: str,
    boot: str | None,
    boot_file: str | None,
    boot_script: str | None,
    reason: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Reserve IP and HOSTNAME for the client with MAC, CLIENT-ID or CIRCUIT-ID."""
    if not (mac or client_id or circuit_id):
        raise click.UsageError("give at least one of --mac, --client-id, --circuit-id")
    fields = {
        "mac": mac,
        "client_id": client_id,
        "circuit_id": circuit_id,
        "ip": ip,
        "hostname": hostname,
        "boot": boot,
        "boot_file": boot_file,
        "boot_script": boot_script,
    }
    result = api().post("/v1/hosts", write_body(reason, dry_run, **fields))
    if as_json:
        print_json(result)
    else:
        _show_change(result, "add" if dry_run else "added", dry_run)


@reserve.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List every reservation, by IP."""
    hosts = api().get("/v1/hosts")["hosts"]
    if as_json:
        print_json(hosts)
    else:
        print_table(hosts, HOST_COLUMNS)


@reserve.command("show")
@click.argument("key")
@json_option
def show(key: str, as_json: bool) -> None:
    """Show one reservation; KEY is its id, MAC, client-id, IP or hostname."""
    host = api().get(f"/v1/hosts/{quote_key(key)}")["host"]
    if as_json:
        print_json(host)
    else:
        print_fields((k, host.get(k)) for k in HOST_FIELDS)


@reserve.command("set")
@click.argument("key")
@_host_options(required=False)
@click.option(
    "--clear",
    "clear",
    multiple=True,
    type=click.Choice([c.replace("_", "-") for c in CLEARABLE]),
    help="Remove an optional field (repeatable).",
)
@write_options
@json_option
def set_(
    key: str,
    clear: tuple[str, ...],
    reason: str | None,
    dry_run: bool,
    as_json: bool,
    **given: str | None,
) -> None:
    """Change fields of the reservation KEY (id, MAC, client-id, IP or hostname)."""
    fields: dict[str, str | None] = {k: v for k, v in given.items() if v is not None}
    for name in clear:
        field = name.replace("-", "_")
        if field in fields:
            raise click.UsageError(f"--{name} and --clear {name} contradict each other")
        fields[field] = None
    if not fields:
        raise click.UsageError("nothing to change: give at least one field option or --clear")
    result = api().patch(f"/v1/hosts/{quote_key(key)}", write_body(reason, dry_run, fields=fields))
    if as_json:
        print_json(result)
    else:
        _show_change(result, "change" if dry_run else "changed", dry_run)


@reserve.command("rm")
@click.argument("key")
@write_options
@json_option
def rm(key: str, reason: str | None, dry_run: bool, as_json: bool) -> None:
    """Remove the reservation KEY (id, MAC, client-id, IP or hostname)."""
    result = api().delete(f"/v1/hosts/{quote_key(key)}", write_body(reason, dry_run))
    if as_json:
        print_json(result)
    else:
        _show_change(result, "remove" if dry_run else "removed", dry_run)

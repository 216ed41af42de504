"""``ddi dns``: static DNS records and the served zones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from ddi.cli.client import api, quote_key, write_body, write_options
from ddi.cli.output import json_option, print_fields, print_json, print_table

RECORD_FIELDS = ("id", "name", "rtype", "value", "ttl", "owner", "version")


@click.group()
def dns() -> None:
    """DNS: static records and the zones served from IPAM."""


@dns.group()
def record() -> None:
    """Static records (A, AAAA, CNAME, MX, TXT, SRV, NS, PTR)."""


def _show_change(result: Mapping[str, Any], verb: str, dry_run: bool) -> None:
    rec = result.get("record") or result["change"].get("image", {})
    seq = result["change"].get("seq")
    what = f"{rec.get('name')} {rec.get('rtype')} {rec.get('value')}"
    if dry_run:
        click.echo(f"dry run: would {verb} record {what}; nothing written")
    else:
        click.echo(f"{verb} record {what} (change seq {seq})")
    print_fields((key, rec.get(key)) for key in RECORD_FIELDS)


@record.command("add")
@click.argument("name")
@click.argument("rtype", metavar="TYPE")
@click.argument("value")
@click.option("--ttl", type=click.IntRange(0, 2**31 - 1), help="Seconds; default dns.ttl.")
@write_options
@json_option
def add(
    name: str,
    rtype: str,
    value: str,
    ttl: int | None,
    reason: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Add a record. NAME follows zone-file rules with the site domain as origin: @ is the
    domain, _ldap._tcp is relative to it, a name with a trailing dot is absolute, and a name
    already ending in the site domain is taken as written. VALUE is in zone-file form with
    absolute names ("10 mail.site.example" for MX)."""
    fields: dict[str, Any] = {"name": name, "rtype": rtype.upper(), "value": value}
    if ttl is not None:
        fields["ttl"] = ttl
    result = api().post("/v1/dns/records", write_body(reason, dry_run, **fields))
    if as_json:
        print_json(result)
    else:
        _show_change(result, "add" if dry_run else "added", dry_run)


@record.command("rm")
@click.argument("record_id", metavar="ID")
@write_options
@json_option
def rm(record_id: str, reason: str | None, dry_run: bool, as_json: bool) -> None:
    """Remove the record with ID (see `ddi dns record list`)."""
    result = api().delete(f"/v1/dns/records/{quote_key(record_id)}", write_body(reason, dry_run))
    if as_json:
        print_json(result)
    else:
        _show_change(result, "remove" if dry_run else "removed", dry_run)


@record.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List static records, by name."""
    records = api().get("/v1/dns/records")["records"]
    if as_json:
        print_json(records)
    else:
        print_table(records, ["id", "name", ("rtype", "TYPE"), "value", "ttl", "owner"])


@dns.command("zones")
@json_option
def zones(as_json: bool) -> None:
    """The zones served, with their SOA serials."""
    result = api().get("/v1/dns/zones")
    if as_json:
        print_json(result)
        return
    if not result.get("running"):
        click.echo("dns is not running (dns.enabled = false or no [dns] section)")
        return
    print_table(result["zones"], ["zone", "serial"])

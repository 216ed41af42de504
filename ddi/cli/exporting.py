"""``ddi export FORMAT``: the site's reservations and records as another server's files
(``ddi.migrate.export``), read from the daemon's API."""

from __future__ import annotations

from pathlib import Path

import click

from ddi.cli.client import CliError, api
from ddi.migrate import export

__all__ = ["export_"]

EXPORT_FORMS = ("dnsmasq", "kea", "csv", "zone")


class ExportRefused(CliError):
    pass


@click.command("export")
@click.argument("form", metavar="FORMAT", type=click.Choice(EXPORT_FORMS))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    help="Write to FILE instead of standard output.",
)
@click.option("--origin", metavar="ZONE", help="zone: which zone (default: the site domain).")
@click.option("--ns", "ns_name", metavar="NAME", help="zone: the NS name (default: ns.<zone>).")
@click.option("--ns-address", metavar="IP", help="zone: the NS name's address (its A record).")
def export_(
    form: str,
    output: Path | None,
    origin: str | None,
    ns_name: str | None,
    ns_address: str | None,
) -> None:
    """Write the site's reservations (and DNS records) in another server's form.

    \b
    dnsmasq  dhcp-host=, host-record=, cname=, mx-host=, srv-host=, txt-record= lines
    kea      a Dhcp4 object with subnet4 and each subnet's reservations (JSON)
    csv      ip,hostname,mac,client_id,lease_time (what `ddi import csv` reads)
    zone     a BIND zone file of the site domain (SOA, NS, reservations, records)

    """
    client = api()
    hosts = client.get("/v1/hosts")["hosts"]
    if form == "csv":
        text = export.to_csv(hosts)
    elif form == "kea":
        text = export.to_kea(hosts, client.get("/v1/subnets")["subnets"])
    else:
        records = client.get("/v1/dns/records")["records"]
        if form == "dnsmasq":
            text = export.to_dnsmasq(hosts, records)
        else:
            status = client.get("/v1/status")
            zone = (origin or status.get("domain") or "").rstrip(".").lower()
            if not zone:
                raise ExportRefused("the site has no domain: give --origin")
            serials = {z["zone"]: z["serial"] for z in client.get("/v1/dns/zones")["zones"]}
            text = export.to_zone(
                hosts,
                records,
                origin=zone,
                serial=int(serials.get(zone, 1)),
                ns_name=ns_name or f"ns.{zone}",
                ns_address=ns_address,
            )
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)

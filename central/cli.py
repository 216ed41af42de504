"""``ddi-central``: run the collector and administer it.

Commands open the store named by the config file directly (SQLite in WAL mode or PostgreSQL
both allow this next to a running collector). Exit codes: 0 done; 1 refused (conflict,
unknown site or reservation, invalid value); 2 usage or configuration error.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from central.app import serve
from central.config import CentralConfig, load_central_config
from central.store import CentralStore, new_host_id, open_store
from ddi.errors import ConfigError, StoreError
from ddi.ipam import validate
from ddi.ipam.models import Host, Op, Owner
from ddi.tokens import SCOPES, TokenFile
from sync import protocol

T = TypeVar("T")
DEFAULT_CONFIG = "/etc/ddi-central/central.toml"

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="DDI_CENTRAL_CONFIG",
    default=DEFAULT_CONFIG,
    show_default=True,
    show_envvar=True,
    help="The collector's configuration file.",
)


def _config(path: Path) -> CentralConfig:
    try:
        return load_central_config(path)
    except ConfigError as exc:
        click.echo(f"ddi-central: {path}: {exc}", err=True)
        sys.exit(2)


def _with_store(config: CentralConfig, work: Callable[[CentralStore], Awaitable[T]]) -> T:
    async def main() -> T:
        store = await open_store(config.database, base=config.path.parent)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreError as exc:
        click.echo(f"ddi-central: {exc}", err=True)
        sys.exit(1)
    except ConfigError as exc:
        click.echo(f"ddi-central: {exc}", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """ddi-central: the collector every edge site syncs to."""


@main.command("serve")
@config_option
def serve_command(config_path: Path) -> None:
    """Run the collector until SIGTERM."""
    logging.basicConfig(
        level=os.environ.get("DDI_LOG_LEVEL", "INFO"),
        format="%(levelname)s %(name)s: %(message)s",
    )
    config = _config(config_path)
    try:
        asyncio.run(serve(config))
    except ConfigError as exc:
        click.echo(f"ddi-central: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Private key file to write (PEM); the public key goes to OUT.pub.",
)
def keygen(out: Path) -> None:
    """Make an Ed25519 key pair (for central or for a site)."""
    if out.exists():
        click.echo(f"ddi-central: {out} exists; not overwriting it", err=True)
        sys.exit(1)
    key = protocol.generate_key()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(protocol.private_key_pem(key))
    public = out.with_name(out.name + ".pub")
    public.write_bytes(protocol.public_key_pem(key.public_key()))
    click.echo(f"private key {out}\npublic key  {public}")


@main.group()
def site() -> None:
    """Enrol and list edge sites."""


@site.command("add")
@config_option
@click.option("--id", "site_id", required=True, help="The site id (its [site] id).")
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The site's Ed25519 public key (PEM or base64).",
)
@click.option("--replace", is_flag=True, help="Re-key a site that is already enrolled.")
def site_add(config_path: Path, site_id: str, public_key: Path, replace: bool) -> None:
    """Enrol a site with its public key."""
    try:
        raw = protocol.public_key_raw(protocol.load_public_key(public_key.read_bytes()))
    except ValueError as exc:
        click.echo(f"ddi-central: {public_key}: {exc}", err=True)
        sys.exit(1)
    config = _config(config_path)
    _with_store(config, lambda store: store.add_site(site_id, raw, replace=replace))
    click.echo(f"site {site_id} enrolled")


@site.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def site_list(config_path: Path, as_json: bool) -> None:
    """Enrolled sites and their cursors."""

    async def work(store: CentralStore) -> list[dict[str, Any]]:
        refusals = await store.refusals()
        return [s.to_image() | {"refused": refusals.get(s.site, {})} for s in await store.sites()]

    sites = _with_store(_config(config_path), work)
    if as_json:
        click.echo(json.dumps(sites, indent=2, sort_keys=True))
        return
    click.echo(f"{'SITE':<16} {'EPOCH':>5} {'APPLIED':>10} REFUSED")
    for s in sites:
        refused = ", ".join(f"{k}={v}" for k, v in sorted(s["refused"].items())) or "-"
        click.echo(f"{s['site']:<16} {s['epoch']:>5} {s['applied_seq']:>10} {refused}")


@main.group()
def reserve() -> None:
    """Central-owned reservations, sent down to a site."""


@reserve.command("add")
@config_option
@click.option("--site", "site_id", required=True)
@click.option("--mac", default=None)
@click.option("--client-id", default=None)
@click.option("--ip", required=True)
@click.option("--hostname", required=True)
@click.option("--boot", default=None, help="Boot profile name at the site.")
@click.option("--id", "host_id", default=None, help="Host id (default: a new one).")
def reserve_add(
    config_path: Path,
    site_id: str,
    mac: str | None,
    client_id: str | None,
    ip: str,
    hostname: str,
    boot: str | None,
    host_id: str | None,
) -> None:
    """Queue a reservation for SITE; the edge applies it on its next pull."""
    try:
        host = Host(
            id=host_id or new_host_id(),
            ip=validate.parse_ipv4(ip),
            hostname=validate.parse_hostname(hostname),
            mac=None if mac is None else validate.parse_mac(mac),
            client_id=None if client_id is None else validate.parse_client_id(client_id),
            boot=boot,
            owner=Owner.CENTRAL,
        )
    except StoreError as exc:
        click.echo(f"ddi-central: {exc}", err=True)
        sys.exit(1)
    if host.mac is None and host.client_id is None:
        click.echo("ddi-central: a reservation needs --mac or --client-id", err=True)
        sys.exit(2)
    entry = _with_store(
        _config(config_path), lambda store: store.add_down(site_id, Op.UPSERT, host)
    )
    click.echo(f"reservation {host.id} queued for {site_id} (down seq {entry.dseq})")


@reserve.command("remove")
@config_option
@click.option("--site", "site_id", required=True)
@click.argument("key")
def reserve_remove(config_path: Path, site_id: str, key: str) -> None:
    """Withdraw a central reservation (by id, MAC, IP or hostname)."""

    async def work(store: CentralStore) -> int:
        host = await store.central_host(site_id, key)
        return (await store.add_down(site_id, Op.DELETE, host)).dseq

    dseq = _with_store(_config(config_path), work)
    click.echo(f"removal queued for {site_id} (down seq {dseq})")


@main.command()
@config_option
@click.option("--site", "site_id", default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def conflicts(config_path: Path, site_id: str | None, as_json: bool) -> None:
    """Conflicts sites reported between central reservations and their own state."""
    rows = _with_store(_config(config_path), lambda store: store.conflicts(site_id))
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    if not rows:
        click.echo("no conflicts")
        return
    click.echo(f"{'SITE':<12} {'ID':>4} {'OBJECT':<34} {'FIELD':<10} {'VALUE':<20} STATE")
    for c in rows:
        state = "resolved" if c["resolved_at"] else "open"
        click.echo(
            f"{c['site']:<12} {c['id']:>4} {c['object_id']:<34} {c['field']:<10}"
            f" {c['value']:<20} {state}"
        )


EXPORT_COLUMNS = ("site", "kind", "object_id", "ip", "mac", "hostname", "name", "owner", "state")


@main.command()
@config_option
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="json", show_default=True
)
@click.option("--site", "site_id", default=None)
def export(config_path: Path, fmt: str, site_id: str | None) -> None:
    """Every site's current objects."""
    objects = _with_store(_config(config_path), lambda store: store.objects(site_id))
    if fmt == "json":
        click.echo(json.dumps(objects, indent=2, sort_keys=True))
        return
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*EXPORT_COLUMNS, "image"])
    for o in objects:
        image = o["image"]
        writer.writerow(
            [o["site"], o["kind"], o["object_id"]]
            + ["" if image.get(c) is None else image.get(c) for c in EXPORT_COLUMNS[3:]]
            + [json.dumps(image, sort_keys=True)]
        )
    click.echo(out.getvalue(), nl=False)


@main.group()
def token() -> None:
    """Named tokens for the feed, the objects, the metrics and the fleet console."""


def _tokens(config_path: Path) -> TokenFile:
    config = _config(config_path)
    if config.tokens_file is None:
        click.echo(f"ddi-central: {config_path}: set [central] tokens_file first", err=True)
        sys.exit(2)
    try:
        return TokenFile(config.tokens_file)
    except ConfigError as exc:
        click.echo(f"ddi-central: {exc}", err=True)
        sys.exit(2)


@token.command("add")
@config_option
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(list(SCOPES)),
    required=True,
    help="metrics: /metrics only; read: the feed, objects, conflicts and the console;"
    " write: read and the console's actions.",
)
@click.option(
    "--site",
    "sites",
    multiple=True,
    help="Narrow the token to this site (repeat for more); every site when absent.",
)
def token_add(config_path: Path, name: str, scope: str, sites: tuple[str, ...]) -> None:
    """Make a token; its secret is printed once, only its hash is kept."""
    for site_id in sites:
        if not protocol.valid_site_id(site_id):
            click.echo(f"ddi-central: --site {site_id!r} is not a site id", err=True)
            sys.exit(2)
    tokens = _tokens(config_path)
    try:
        made, secret = tokens.add(name, [scope], sites=list(sites) if sites else None)
    except StoreError as exc:
        click.echo(f"ddi-central: {exc}", err=True)
        sys.exit(1)
    where = "every site" if made.sites is None else ", ".join(made.sites)
    click.echo(f"token {made.name} ({scope}, {where}); keep this secret, it is not shown again:")
    click.echo(secret)


@token.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def token_list(config_path: Path, as_json: bool) -> None:
    """The tokens: name, scopes, sites and creation time (never the secrets)."""
    rows = [t.public() for t in _tokens(config_path).tokens()]
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    click.echo(f"{'NAME':<24} {'SCOPE':<8} {'CREATED':<21} SITES")
    for row in rows:
        sites = "all" if row["sites"] is None else ",".join(row["sites"])
        click.echo(f"{row['name']:<24} {row['scopes'][-1]:<8} {row['created']:<21} {sites}")


@token.command("rm")
@config_option
@click.argument("name")
def token_rm(config_path: Path, name: str) -> None:
    """Remove a token: requests and console sessions made with it are refused from then on."""
    try:
        _tokens(config_path).remove(name)
    except StoreError as exc:
        click.echo(f"ddi-central: {exc}", err=True)
        sys.exit(1)
    click.echo(f"token {name} removed")

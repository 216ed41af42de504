"""``ddi token``: the named API tokens of the TCP listener (``add``, ``list``, ``rm``).

These go through the daemon's unix socket only (the API refuses them on TCP): minting a token
over the network would let a leaked token make its own successor. ``add`` prints the secret
once; the tokens file keeps only its SHA-256. The daemon picks changes up within a second.
"""

from __future__ import annotations

import click

from ddi.cli.client import api, is_remote, quote_key
from ddi.cli.output import json_option, print_json, print_table

SCOPES = ("metrics", "read", "write")


def _local_only() -> None:
    if is_remote():
        raise click.UsageError(
            "tokens are managed on the site itself (its unix socket), never over --url"
        )


@click.group()
def token() -> None:
    """API tokens for the TCP listener: scope metrics < read < write."""


@token.command()
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    type=click.Choice(SCOPES),
    multiple=True,
    required=True,
    help="metrics: /metrics only; read: every GET and the console; write: changes too.",
)
@json_option
def add(name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Make a token NAME and print its secret, once: it is not kept anywhere in clear."""
    _local_only()
    made = api().post("/v1/tokens", {"name": name, "scopes": list(scopes)})
    if as_json:
        print_json(made)
        return
    click.echo(made["secret"])
    click.echo(
        f"token {made['token']['name']} ({', '.join(made['token']['scopes'])}): the line above "
        "is its secret, shown only now; keep it in a file (mode 0600) for --token-file",
        err=True,
    )


@token.command("list")
@json_option
def list_(as_json: bool) -> None:
    """Every token: name, scopes, created (never the secrets)."""
    _local_only()
    tokens = api().get("/v1/tokens")["tokens"]
    if as_json:
        print_json(tokens)
        return
    rows = [{**t, "scopes": ",".join(t["scopes"])} for t in tokens]
    print_table(rows, ["name", "scopes", "created"])


@token.command("rm")
@click.argument("name")
def rm(name: str) -> None:
    """Remove token NAME: it stops working within a second, its console sessions end."""
    _local_only()
    removed = api().delete(f"/v1/tokens/{quote_key(name)}")
    click.echo(f"removed token {removed['token']['name']}")

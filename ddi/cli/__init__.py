"""The ``ddi`` command line: ``ddi serve`` runs the daemon; every other command talks to it
through its admin API (``ApiClient`` over the unix socket, or over HTTPS with a token when
``--url`` is given) and never touches the store.

Exit codes: 0 done; 1 refused (one line on stderr naming the conflict, or the scope a token
lacks); 2 usage or a wrong value (the message names the flag); 3 daemon unreachable (the
message names the socket or URL; an untrusted certificate too).
Lists and shows take ``--json``; with it an error is one JSON object on stdout instead, with
the same exit code.

Area modules define a click group and are registered below with ``main.add_command``; they
use ``ddi.cli.client`` (``api()``, ``write_body``, ``write_options``) and ``ddi.cli.output``.
"""

from __future__ import annotations

from pathlib import Path

import click

from ddi import __version__
from ddi.cli.boot import boot
from ddi.cli.changes import changes
from ddi.cli.client import (
    EXIT_DONE,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    ApiClient,
    CliError,
    Refused,
    Unreachable,
    api,
    parse_fingerprint,
)
from ddi.cli.dns import dns
from ddi.cli.examples import add_examples
from ddi.cli.exporting import export_
from ddi.cli.importing import import_
from ddi.cli.lease import lease
from ddi.cli.output import JsonErrorsGroup, json_option, print_fields, print_json, print_table
from ddi.cli.reload import reload
from ddi.cli.reserve import reserve
from ddi.cli.serve import serve
from ddi.cli.status import status
from ddi.cli.subnet import subnet
from ddi.cli.sync import sync
from ddi.cli.token import token

__all__ = [
    "EXIT_DONE",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "ApiClient",
    "CliError",
    "Refused",
    "Unreachable",
    "api",
    "json_option",
    "main",
    "print_fields",
    "print_json",
    "print_table",
]

DEFAULT_SOCKET = "/run/ddi/ddi.sock"


def _checked_fingerprint(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    if value is not None:
        parse_fingerprint(value)
    return value


@click.group(cls=JsonErrorsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--socket",
    metavar="PATH",
    envvar="DDI_SOCKET",
    default=DEFAULT_SOCKET,
    show_default=True,
    show_envvar=True,
    help="The daemon's admin API socket.",
)
@click.option(
    "--url",
    metavar="URL",
    envvar="DDI_URL",
    show_envvar=True,
    help="Talk to the daemon's TCP listener (https://HOST[:8053]) instead of the socket.",
)
@click.option(
    "--token-file",
    metavar="FILE",
    envvar="DDI_TOKEN_FILE",
    show_envvar=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --url: a file holding the API token (ddi token add prints it once).",
)
@click.option(
    "--fingerprint",
    metavar="SHA256",
    envvar="DDI_FINGERPRINT",
    show_envvar=True,
    help="With --url: trust the certificate with this SHA-256 (ddi status on the site prints it).",
    callback=_checked_fingerprint,
)
@click.option(
    "--ca",
    metavar="FILE",
    envvar="DDI_CA",
    show_envvar=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --url: trust certificates this CA file signs (PEM).",
)
@click.version_option(__version__, prog_name="ddi")
def main(
    socket: str,
    url: str | None,
    token_file: Path | None,
    fingerprint: str | None,
    ca: Path | None,
) -> None:
    """ddi: edge DHCP, netboot, DNS and IPAM.

    \b
    Examples:
      ddi serve --config /etc/ddi/ddi.toml
      ddi reserve add --mac 52:54:00:00:00:10 --ip 198.18.0.10 --hostname web1
      ddi lease list --state bound
      ddi subnet show lan
      ddi reload
      ddi status --json
      ddi --url https://site1:8053 --token-file site1.token --fingerprint AB:CD:... status
    """


# --- command groups: one line per area ---
main.add_command(serve)
main.add_command(boot)
main.add_command(reserve)
main.add_command(subnet)
main.add_command(lease)
main.add_command(changes)
main.add_command(status)
main.add_command(dns)
main.add_command(sync)
main.add_command(reload)
main.add_command(import_)
main.add_command(export_)
main.add_command(token)
add_examples(main)  # last: after every command is registered

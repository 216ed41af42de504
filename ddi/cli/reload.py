"""``ddi reload``: make the daemon read its config file again and say whether it took."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from ddi.cli.client import Refused, api, write_body
from ddi.cli.output import json_option, print_json, safe


def _say(image: Mapping[str, Any]) -> None:
    for what in image.get("restart_needed") or ():
        click.echo(f"note: {safe(what)}: takes effect at the next restart")
    if image.get("forced"):
        click.echo(f"forced: orphaned {', '.join(safe(o) for o in image.get('orphans', []))}")


@click.command()
@click.option(
    "--force",
    is_flag=True,
    help="Apply subnets even when they orphan reservations or active leases.",
)
@json_option
def reload(force: bool, as_json: bool) -> None:
    """Reload the daemon's config file; exit 0 when applied, 1 when refused (and why).

    A file that does not validate, or whose subnets would leave reservations or active leases
    outside every subnet, is refused and the running config kept. The result also shows in
    ``ddi status`` and in the ``ddi_reload_*`` metrics.
    """
    body = write_body(None, False, force=force)
    try:
        result = api().post("/v1/reload", body)
    except Refused as exc:
        image = exc.body.get("reload")
        if isinstance(image, Mapping) and not as_json:
            _say(image)
        raise
    image = result["reload"]
    if as_json:
        print_json(image)
        return
    click.echo(f"reloaded {safe(image['path'])}")
    _say(image)

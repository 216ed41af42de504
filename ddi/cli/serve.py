"""``ddi serve --config FILE``: run the daemon in the foreground (systemd runs it so)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ddi import journal, logline
from ddi.cli.client import EXIT_USAGE, CliError


class ConfigRefused(CliError):
    exit_code = EXIT_USAGE


class CannotStart(CliError):
    """Exit 1: the config is valid but the daemon cannot start (socket held, no access)."""


def _setup_logging(level: str) -> None:
    # Under systemd the journal stamps every line; elsewhere the line carries its own time.
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logline.configure(level, f"{stamp}%(levelname)s %(name)s: %(message)s")
    journal.use_priorities()  # `<N>` syslog priorities when stderr is the journal


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return leaves


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    metavar="FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The site config (TOML), e.g. /etc/ddi/ddi.toml.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option(
    "--check",
    is_flag=True,
    help="Only check the config file and what start-up needs (interfaces, data directory,"
    " script files; a missing boot file is a warning), then exit: 0 ok, 2 with each problem"
    " on stderr.",
)
@click.option(
    "--trace-stalls",
    type=click.IntRange(min=1, max=60_000),
    metavar="MS",
    help="Diagnostic: log (WARNING, ddi.stalls) every stop of the event loop longer than MS"
    " milliseconds, with the code that held it. Costs some CPU; off by default.",
)
def serve(config_path: Path, log_level: str, check: bool, trace_stalls: int | None) -> None:
    """Run the daemon: DHCP, netboot, DNS, the IPAM store and the admin API.

    Exit codes: 0 stopped cleanly; 1 could not start or stopped on an error (systemd restarts
    it); 2 the config is wrong (systemd does not: RestartPreventExitStatus=2).
    """
    # The daemon's modules are imported only here: the other commands stay light.
    from ddi.config import load_config
    from ddi.errors import ConfigError

    _setup_logging(log_level)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise ConfigRefused(f"config error: {exc}") from None
    from ddi.preflight import problems, warnings

    # A missing interface or an unwritable data directory is the file's fault, not the
    # moment's: exit 2 so that systemd does not restart into the same failure.
    found = problems(config)
    for problem in found[:-1]:
        click.echo(f"config error: {problem}", err=True)
    if found:
        raise ConfigRefused(f"config error: {found[-1]}")
    if check:
        for warning in warnings(config):
            click.echo(f"warning: {warning}", err=True)
        click.echo(f"config ok: {config.path}")
        return
    from ddi.app import StartupError, run_daemon

    try:
        run_daemon(config, trace_stalls=None if trace_stalls is None else trace_stalls / 1000)
    except* StartupError as group:
        raise CannotStart(f"cannot start: {_leaves(group)[0]}") from None
    except* ConfigError as group:
        # A service that cannot use what its section names (a port in use): may pass later.
        raise CannotStart(f"cannot start: {_leaves(group)[0]}") from None
    except* OSError as group:
        # A service that cannot bind its port, typically; bugs still end in a traceback.
        reasons = "; ".join(str(e) for e in _leaves(group))
        raise CannotStart(f"ddi stopped: {reasons}") from None

"""The ``ddi(1)`` man page and the shell completion scripts, generated from the click commands
so that they cannot drift from ``--help``.

``python -m ddi.cli.manpage`` rewrites ``share/man/ddi.1`` and ``share/completion/``; the
files are checked in (a test compares them with what this module generates) and installed by
pip as data files (``pyproject.toml``: ``share/man/man1``, ``share/bash-completion``...).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import click
from click.shell_completion import get_completion_class

from ddi import __version__

__all__ = ["COMPLETION_FILES", "completion_script", "man_page", "write_all"]

COMPLETION_FILES = {"bash": "bash/ddi", "zsh": "zsh/_ddi", "fish": "fish/ddi.fish"}
"""Shell -> file under ``share/completion/``, named as each shell looks for it (pip installs
each into that shell's directory and cannot rename)."""

_ROFF_SPECIAL = re.compile(r"^([.'])", re.MULTILINE)


def _roff(text: str) -> str:
    """Plain text as roff: backslashes and hyphens escaped, no line starting a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return _ROFF_SPECIAL.sub(r"\\&\1", text)


def _help_text(command: click.Command) -> str:
    text = inspect.cleandoc(command.help or "")
    return text.replace("\b\n", "").replace("\b", "")


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


def _paragraphs(text: str) -> list[str]:
    out: list[str] = []
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if lines and lines[0].strip() == "Examples:":
            out.append(".nf\n" + _roff(block) + "\n.fi")
        else:
            out.append(_roff(" ".join(line.strip() for line in lines)))
    return out


def man_page(main: click.Group) -> str:
    """``ddi(1)`` in roff (man(7) macros)."""
    ctx = click.Context(main, info_name="ddi", **main.context_settings)
    lines = [
        f'.TH DDI 1 "" "ddi {__version__}" "User Commands"',
        ".SH NAME",
        "ddi \\- edge DHCP, netboot, DNS and IPAM: the daemon and its command line",
        ".SH SYNOPSIS",
        ".B ddi",
        "[\\-\\-socket PATH] COMMAND [ARGS]...",
        ".SH DESCRIPTION",
        *(f"{p}\n.PP" for p in _paragraphs(_help_text(main))),
        "Every command but",
        ".B serve",
        "talks to the running daemon over its admin API socket.",
        ".SH COMMANDS",
    ]
    for path, command in _commands(main):
        sub = click.Context(command, info_name=" ".join(("ddi", *path)), parent=ctx)
        usage = " ".join(command.collect_usage_pieces(sub))
        lines += [".SS " + _roff(" ".join(("ddi", *path)) + " " + usage)]
        lines += [f"{p}\n.PP" for p in _paragraphs(_help_text(command))]
        for param in command.get_params(sub):
            record = param.get_help_record(sub)
            if record is None:
                continue
            lines += [".TP", f".B {_roff(record[0])}", _roff(record[1])]
    lines += [
        ".SH EXIT STATUS",
        ".TP\n0\ndone",
        ".TP\n1\nrefused (the message names the conflict) or the daemon failed",
        ".TP\n2\nusage, or a wrong value (the message names the flag); for \\fBserve\\fR,"
        " a config error",
        ".TP\n3\nthe daemon cannot be reached (the message names the socket)",
        ".PP\nWith \\fB\\-\\-json\\fR an error is one JSON object on standard output with the"
        " same exit status.",
        ".SH ENVIRONMENT",
        ".TP\n.B DDI_SOCKET\nthe admin API socket (default /run/ddi/ddi.sock)",
        ".SH FILES",
        ".TP\n.I /etc/ddi/ddi.toml\nthe site config",
        ".TP\n.I /var/lib/ddi/ddi.sqlite\nthe IPAM store and its change log",
        ".SH SEE ALSO",
        "The README of the ddi project; \\fBsystemctl\\fR(1) \\fBreload ddi\\fR.",
    ]
    return "\n".join(lines) + "\n"


def completion_script(main: click.Group, shell: str) -> str:
    """click's completion script for ``shell``, for a ``ddi`` on the PATH."""
    cls = get_completion_class(shell)
    if cls is None:
        raise ValueError(f"click has no completion for {shell}")
    return cls(main, {}, "ddi", "_DDI_COMPLETE").source()


def write_all(main: click.Group, root: Path) -> list[Path]:
    """Write the man page and the completion scripts under ``root/share``."""
    written = []
    man = root / "share" / "man" / "ddi.1"
    man.parent.mkdir(parents=True, exist_ok=True)
    man.write_text(man_page(main))
    written.append(man)
    for shell, name in COMPLETION_FILES.items():
        path = root / "share" / "completion" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(completion_script(main, shell))
        written.append(path)
    return written


if __name__ == "__main__":
    from ddi.cli import main as ddi_main

    for path in write_all(ddi_main, Path.cwd()):
        click.echo(f"wrote {path}")

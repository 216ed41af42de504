"""``--help`` examples for every command, kept in one table and appended to each command's
help (``ddi reserve add --help`` ends with them). A command added later without an entry here
fails ``tests/unit/test_cli_help.py``. Lab addresses only (RFC 5737 / RFC 2544 ranges)."""

from __future__ import annotations

import inspect

import click

__all__ = ["EXAMPLES", "add_examples"]

EXAMPLES: dict[str, tuple[str, ...]] = {
    "serve": (
        "ddi serve --config /etc/ddi/ddi.toml",
        "ddi serve --config /etc/ddi/ddi.toml --check",
    ),
    "reload": ("ddi reload", "ddi reload --force --json"),
    "status": (
        "ddi status",
        "ddi status --json | jq .store.change_log",
        "ddi --url https://198.18.0.1:8053 --token-file ~/.ddi/site1.token"
        " --fingerprint 67:0A:...:9C status",
    ),
    "token add": (
        "ddi token add grafana --scope metrics > /etc/prometheus/ddi-site1.token",
        "ddi token add alice-laptop --scope write",
    ),
    "token list": ("ddi token list", "ddi token list --json"),
    "token rm": ("ddi token rm alice-laptop",),
    "boot profiles": ("ddi boot profiles",),
    "boot explain": ("ddi boot explain --mac 52:54:00:00:00:10 --arch 7",),
    "reserve add": (
        "ddi reserve add --mac 52:54:00:00:00:10 --ip 198.18.0.10 --hostname web1",
        "ddi reserve add --client-id 0152540000000a --ip 198.18.0.11 --hostname web2"
        " --router 198.18.0.1 --reason 'rack 4'",
    ),
    "reserve list": ("ddi reserve list", "ddi reserve list --json"),
    "reserve show": ("ddi reserve show web1", "ddi reserve show 52:54:00:00:00:10"),
    "reserve set": (
        "ddi reserve set web1 --ip 198.18.0.12",
        "ddi reserve set web1 --clear boot --dry-run",
    ),
    "reserve rm": ("ddi reserve rm web1 --reason 'decommissioned'",),
    "subnet list": ("ddi subnet list",),
    "subnet show": ("ddi subnet show lan", "ddi subnet show lan --json"),
    "lease list": ("ddi lease list --state bound", "ddi lease list --subnet lan --json"),
    "lease show": ("ddi lease show 198.18.0.150", "ddi lease show 52:54:00:00:00:10"),
    "lease release": ("ddi lease release 198.18.0.150 --reason 'moved'",),
    "lease history": (
        "ddi lease history 198.18.0.10 --since 1d",
        "ddi lease history 52:54:00:aa:bb:01",
        "ddi lease history printer-2 --since 2026-12-01 --until 2026-12-03",
    ),
    "changes list": (
        "ddi changes list --kind host --since 2d",
        "ddi changes list --actor alice --op delete",
        "ddi changes list --object 198.18.0.10 --since 2026-12-01",
    ),
    "dns record add": (
        "ddi dns record add www CNAME web1",
        "ddi dns record add _ldap._tcp SRV '0 5 389 ldap1'",
    ),
    "dns record rm": ("ddi dns record rm REC_ID",),
    "dns record list": ("ddi dns record list",),
    "dns zones": ("ddi dns zones",),
    "sync status": ("ddi sync status",),
    "sync now": ("ddi sync now --timeout 30",),
    "sync conflicts": ("ddi sync conflicts --open",),
    "sync resolve": ("ddi sync resolve 3 --keep central --reason 'central is right'",),
    "import": (
        "ddi import dnsmasq --dry-run /etc/dnsmasq.conf /var/lib/misc/dnsmasq.leases",
        "ddi import kea /etc/kea/kea-dhcp4.conf /var/lib/kea/kea-leases4.csv",
        "ddi import zone --origin site.example db.site.example",
    ),
    "export": (
        "ddi export dnsmasq -o /etc/dnsmasq.d/ddi.conf",
        "ddi export zone --ns-address 198.18.0.1 -o db.site.example",
    ),
}
"""Command path -> example command lines."""


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        else:
            found.append((" ".join((*path, name)), command))
    return found


def add_examples(group: click.Group) -> None:
    """Append each command's examples to its help text (``\\b`` keeps click from rewrapping)."""
    for path, command in _commands(group):
        lines = EXAMPLES.get(path)
        if not lines or "Examples:" in (command.help or ""):
            continue
        block = "\n".join(f"  {line}" for line in lines)
        text = inspect.cleandoc(command.help or "")
        command.help = f"{text}\n\n\b\nExamples:\n{block}"

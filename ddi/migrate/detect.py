"""Which of a server's files a text is (``ddi import dnsmasq dnsmasq.conf dnsmasq.leases``
needs no flag per file), and the parser for it."""

from __future__ import annotations

import re
from collections.abc import Callable

from ddi.migrate import dnsmasq, isc, kea, table
from ddi.migrate.items import Parsed

__all__ = ["FORMS", "Parser", "parser_for"]

Parser = Callable[[str, str], Parsed]

FORMS = ("dnsmasq", "kea", "isc-dhcpd", "zone", "csv")
"""The FORMAT argument of ``ddi import``."""

_DNSMASQ_LEASE = re.compile(r"^(\d+ \S+ \d{1,3}(\.\d{1,3}){3} \S+ \S+|duid \S+)$")
_HOSTS_LINE = re.compile(r"^[0-9a-fA-F:.]+\s+\S")
_DHCP_HOST_LINE = re.compile(r"^([0-9a-fA-F]{1,2}[:-]){5}[0-9a-fA-F]{1,2}\s*,|^id:")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped
    return ""


def dnsmasq_parser(text: str) -> tuple[str, Parser]:
    """dnsmasq's lease file, a dhcp-hostsfile, an /etc/hosts-style file or a config file."""
    first = _first_line(text)
    if _DNSMASQ_LEASE.match(first):
        return "lease file", dnsmasq.parse_leases
    if _DHCP_HOST_LINE.match(first):
        return "dhcp-hostsfile", dnsmasq.parse_hostsfile
    if _HOSTS_LINE.match(first) and "=" not in first:
        return "hosts file", dnsmasq.parse_hosts
    return "configuration", dnsmasq.parse_conf


def parser_for(form: str, text: str, *, origin: str | None = None) -> tuple[str, Parser]:
    """``(what the file is, its parser)`` for a file of ``form`` holding ``text``."""
    if form == "dnsmasq":
        return dnsmasq_parser(text)
    if form == "kea":
        if _first_line(text).startswith("address,"):
            return "memfile lease CSV", kea.parse_leases
        return "configuration", kea.parse_conf
    if form == "isc-dhcpd":
        if re.search(r"^\s*lease\s+\d{1,3}(\.\d{1,3}){3}\s*\{", text, re.MULTILINE):
            return "lease database", isc.parse_leases
        return "configuration", isc.parse_conf
    if form == "zone":
        # Imported here: dnspython costs every process that loads the CLI (``ddi serve``
        # too) 1.9 MiB resident and 30 ms, and only a zone file needs it.
        from ddi.migrate import zonefile

        return "zone file", lambda text, name: zonefile.parse_zone(text, name, origin=origin)
    if form == "csv":
        return "reservations CSV", table.parse_csv
    raise ValueError(f"unknown form {form!r}")

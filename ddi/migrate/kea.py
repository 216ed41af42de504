"""Kea's files: reservations in ``kea-dhcp4.conf`` (global ``Dhcp4.reservations``, each
subnet's in ``subnet4``, and those of subnets inside ``shared-networks``) and the memfile lease
CSV (``kea-leases4.csv``).

Kea's configuration is JSON with comments (``#``, ``//``, ``/* */``); they are blanked out,
keeping line breaks, so a JSON error still names its line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from ipaddress import IPv4Address
from typing import Any

from ddi.migrate.dnsmasq import unnamed_host
from ddi.migrate.items import HostItem, LeaseItem, Parsed, Problem
from ddi.migrate.limits import MAX_LINE, lines, number

__all__ = ["parse_conf", "parse_leases", "strip_comments"]


def strip_comments(text: str) -> str:
    """``text`` with Kea's comments replaced by spaces (line breaks kept), strings untouched."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif c == "#" or text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _reservation(source: str, entry: Any, parsed: Parsed) -> None:
    if not isinstance(entry, Mapping):
        parsed.refused.append(Problem(source=source, why="a reservation must be an object"))
        return
    ip = entry.get("ip-address")
    if not isinstance(ip, str):
        parsed.skipped.append(
            Problem(source=source, why="no ip-address: options or a name only, not reserved")
        )
        return
    mac = entry.get("hw-address")
    client_id = entry.get("client-id")
    for key in ("duid", "circuit-id", "flex-id"):
        if key in entry and mac is None and client_id is None:
            parsed.refused.append(
                Problem(source=source, why=f"identified by {key}, which ddi does not match on")
            )
            return
    if not isinstance(mac, str | None) or not isinstance(client_id, str | None):
        parsed.refused.append(Problem(source=source, why="hw-address/client-id must be text"))
        return
    if mac is None and client_id is None:
        parsed.refused.append(Problem(source=source, why="no hw-address and no client-id"))
        return
    hostname = entry.get("hostname")
    if not isinstance(hostname, str) or not hostname:
        hostname = unnamed_host(ip)
    # Kea takes a hostname as given; ddi names a host by one label under its domain.
    hostname = hostname.rstrip(".").split(".", 1)[0]
    parsed.hosts.append(
        HostItem(source=source, ip=ip, hostname=hostname, mac=mac, client_id=client_id)
    )


def _subnets(dhcp4: Mapping[str, Any], name: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for i, subnet in enumerate(dhcp4.get("subnet4") or []):
        out.append((f"{name}: subnet4[{i}]", subnet))
    for j, network in enumerate(dhcp4.get("shared-networks") or []):
        if isinstance(network, Mapping):
            for i, subnet in enumerate(network.get("subnet4") or []):
                out.append((f"{name}: shared-networks[{j}].subnet4[{i}]", subnet))
    return out


def parse_conf(text: str, name: str) -> Parsed:
    """The reservations of a ``kea-dhcp4.conf``; each is named by its JSON path."""
    parsed = Parsed()
    try:
        document = json.loads(strip_comments(text))
    except RecursionError:
        parsed.refused.append(Problem(source=name, why="nested too deeply"))
        return parsed
    except json.JSONDecodeError as exc:
        parsed.refused.append(Problem(source=f"{name}:{exc.lineno}", why=f"not JSON: {exc.msg}"))
        return parsed
    dhcp4 = document.get("Dhcp4") if isinstance(document, Mapping) else None
    if not isinstance(dhcp4, Mapping):
        parsed.refused.append(Problem(source=name, why="no Dhcp4 object"))
        return parsed
    for i, entry in enumerate(dhcp4.get("reservations") or []):
        _reservation(f"{name}: reservations[{i}]", entry, parsed)
    for where, subnet in _subnets(dhcp4, name):
        if not isinstance(subnet, Mapping):
            parsed.refused.append(Problem(source=where, why="a subnet must be an object"))
            continue
        for i, entry in enumerate(subnet.get("reservations") or []):
            _reservation(f"{where}.reservations[{i}]", entry, parsed)
    return parsed


_STATES = {"0": "default", "1": "declined", "2": "expired-reclaimed", "3": "released"}


def parse_leases(text: str, name: str) -> Parsed:
    """Kea's memfile CSV (``kea-leases4.csv``). The file is a log: a later line for an address
    replaces an earlier one, and a line with ``valid_lifetime`` 0 removes the lease. Only
    leases in the default state are carried."""
    parsed = Parsed()
    rows = list(lines(text, name, parsed))
    if not rows:
        return parsed
    header = [h.strip() for h in rows[0][1].split(",")]
    need = ("address", "hwaddr", "client_id", "valid_lifetime", "expire", "hostname", "state")
    missing = [h for h in need if h not in header]
    if missing:
        parsed.refused.append(
            Problem(source=rows[0][0], why=f"not a Kea lease file: no {', '.join(missing)} column")
        )
        return parsed
    at = {h: header.index(h) for h in need}
    latest: dict[str, LeaseItem | None] = {}
    for source, line in rows[1:]:
        if not line.strip():
            continue
        try:
            fields = next(csv.reader([line], strict=True), [])
        except csv.Error as exc:
            parsed.refused.append(Problem(source=source, why=f"not CSV: {exc}"))
            continue
        if len(fields) < len(header) or len(line) > MAX_LINE:
            parsed.refused.append(Problem(source=source, why=f"{len(header)} fields expected"))
            continue
        address = fields[at["address"]]
        try:
            ip = str(IPv4Address(address))
        except ValueError:
            parsed.refused.append(Problem(source=source, why=f"not an IPv4 address: {address!r}"))
            continue
        lifetime = number(fields[at["valid_lifetime"]])
        expire = number(fields[at["expire"]])
        if lifetime is None or expire is None:
            parsed.refused.append(Problem(source=source, why="bad valid_lifetime or expire"))
            continue
        state = fields[at["state"]].strip()
        if lifetime == 0 or state != "0":
            latest[ip] = None
            if state != "0":
                why = f"{ip}: state {_STATES.get(state, state)}, not carried"
                parsed.skipped.append(Problem(source=source, why=why))
            continue
        # Kea writes the client-id and MAC as colon hex; unescape its "&#x2c" commas in names.
        hostname = fields[at["hostname"]].replace("&#x2c", ",").rstrip(".") or None
        latest[ip] = LeaseItem(
            source=source,
            ip=ip,
            mac=fields[at["hwaddr"]] or None,
            client_id=fields[at["client_id"]] or None,
            start=float(expire - lifetime),
            end=float(expire),
            hostname=None if hostname is None else hostname.split(".", 1)[0],
        )
    parsed.leases += [lease for lease in latest.values() if lease is not None]
    return parsed

"""ddi's reservations and records in other servers' forms: a dnsmasq configuration, a Kea
``Dhcp4`` fragment, CSV and a BIND zone file. Each function takes the admin API's images (the
JSON of ``/v1/hosts``, ``/v1/dns/records``, ``/v1/subnets``) and returns the file's text, which
the matching importer reads back to the same objects."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ddi.migrate.table import COLUMNS

__all__ = ["to_csv", "to_dnsmasq", "to_kea", "to_zone"]

Image = Mapping[str, Any]


def _lease_time(host: Image) -> int | None:
    dhcp = host.get("dhcp") or {}
    value = dhcp.get("lease_time")
    return int(value) if value is not None else None


def _by_ip(hosts: Sequence[Image]) -> list[Image]:
    return sorted(hosts, key=lambda h: IPv4Address(h["ip"]))


def _quote_txt(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dnsmasq(hosts: Sequence[Image], records: Sequence[Image]) -> str:
    """``dhcp-host=`` for each reservation, and ``host-record=``, ``cname=``, ``mx-host=``,
    ``srv-host=`` and ``txt-record=`` for the static records dnsmasq can serve."""
    out = ["# dnsmasq configuration written by ddi export"]
    for host in _by_ip(hosts):
        fields = [host["mac"]] if host.get("mac") else []
        if host.get("client_id"):
            fields.append(f"id:{host['client_id']}")
        fields += [host["ip"], host["hostname"]]
        lease_time = _lease_time(host)
        if lease_time is not None:
            fields.append(str(lease_time))
        out.append("dhcp-host=" + ",".join(fields))
    for record in records:
        name, rtype, value = record["name"], record["rtype"], record["value"]
        if rtype in ("A", "AAAA"):
            out.append(f"host-record={name},{value}")
        elif rtype == "CNAME":
            out.append(f"cname={name},{value}")
        elif rtype == "MX":
            preference, exchange = value.split()
            out.append(f"mx-host={name},{exchange},{preference}")
        elif rtype == "SRV":
            priority, weight, port, target = value.split()
            out.append(f"srv-host={name},{target},{port},{priority},{weight}")
        elif rtype == "TXT":
            out.append(f"txt-record={name},{_quote_txt(value)}")
        else:
            out.append(f"# {rtype} {name} {value}: dnsmasq has no option for it")
    return "\n".join(out) + "\n"


def to_kea(hosts: Sequence[Image], subnets: Sequence[Image]) -> str:
    """A ``Dhcp4`` object with each subnet's reservations (``subnet4``, ids 1, 2... in address
    order), to merge into ``kea-dhcp4.conf``."""
    ordered = sorted(subnets, key=lambda s: IPv4Network(s["cidr"]))
    networks = [IPv4Network(s["cidr"]) for s in ordered]
    reservations: list[list[dict[str, Any]]] = [[] for _ in ordered]
    for host in _by_ip(hosts):
        ip = IPv4Address(host["ip"])
        held = [i for i, net in enumerate(networks) if ip in net]
        if not held:
            continue
        entry: dict[str, Any] = {"ip-address": host["ip"], "hostname": host["hostname"]}
        if host.get("mac"):
            entry["hw-address"] = host["mac"]
        if host.get("client_id"):
            entry["client-id"] = host["client_id"]
        reservations[max(held, key=lambda i: networks[i].prefixlen)].append(entry)
    subnet4 = [
        {"id": i + 1, "subnet": subnet["cidr"], "reservations": reservations[i]}
        for i, subnet in enumerate(ordered)
    ]
    return json.dumps({"Dhcp4": {"subnet4": subnet4}}, indent=2) + "\n"


def to_csv(hosts: Sequence[Image]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for host in _by_ip(hosts):
        lease_time = _lease_time(host)
        writer.writerow(
            [host["ip"], host["hostname"], host.get("mac") or "", host.get("client_id") or "",
             "" if lease_time is None else lease_time]
        )  # fmt: skip
    return buffer.getvalue()


def _relative(name: str, origin: str) -> str | None:
    """``name`` relative to ``origin`` (``@`` for the apex), None when outside it."""
    if name == origin:
        return "@"
    if name.endswith("." + origin):
        return name[: -len(origin) - 1]
    return None


def _target(name: str) -> str:
    return name if name == "." else name + "."


def to_zone(
    hosts: Sequence[Image],
    records: Sequence[Image],
    *,
    origin: str,
    serial: int,
    ns_name: str,
    ns_address: str | None = None,
    ttl: int = 3600,
) -> str:
    """The zone ``origin`` as a BIND zone file: SOA and NS, each reservation's A record and the
    static records under ``origin`` (others are left out)."""
    origin = origin.rstrip(".").lower()
    ns_name = ns_name.rstrip(".")
    lines = [
        f"$ORIGIN {origin}.",
        f"$TTL {ttl}",
        f"@ IN SOA {ns_name}. hostmaster.{origin}. {serial} 3600 600 604800 {min(ttl, 3600)}",
        f"@ IN NS {ns_name}.",
    ]
    taken: set[tuple[str, str]] = set()
    if ns_address is not None:
        relative = _relative(ns_name, origin)
        if relative is not None:
            lines.append(f"{relative} IN A {ns_address}")
            taken.add((ns_name, "A"))
    for host in _by_ip(hosts):
        name = f"{host['hostname']}.{origin}"
        if (name, "A") not in taken:
            lines.append(f"{host['hostname']} IN A {host['ip']}")
    for record in sorted(records, key=lambda r: (r["name"], r["rtype"], r["value"])):
        relative = _relative(record["name"], origin)
        if relative is None:
            continue
        rtype, value = record["rtype"], record["value"]
        if rtype in ("CNAME", "NS", "PTR"):
            value = _target(value)
        elif rtype == "MX":
            preference, exchange = value.split()
            value = f"{preference} {_target(exchange)}"
        elif rtype == "SRV":
            *numbers, target = value.split()
            value = " ".join([*numbers, _target(target)])
        elif rtype == "TXT":
            # RFC 1035 §3.3.14: at most 255 bytes a string; a longer text is several strings.
            value = " ".join(_quote_txt(value[i : i + 255]) for i in range(0, len(value), 255))
        ttl_text = "" if record.get("ttl") is None else f"{record['ttl']} "
        lines.append(f"{relative} {ttl_text}IN {rtype} {value}")
    return "\n".join(lines) + "\n"

"""The data every contender serves: the same names, addresses and MACs for all of them.

Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking), names from ``site1.example``.
Everything is derived from an index, so a contender's input files and ddi's store hold exactly
the same objects.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

DOMAIN = "site1.example"
NS_ADDRESS = IPv4Address("198.18.0.1")
REVERSE_ZONE = "18.198.in-addr.arpa"
_FIRST = int(IPv4Address("198.18.1.0"))


@dataclass(frozen=True, slots=True)
class Name:
    hostname: str
    ip: IPv4Address
    mac: str

    @property
    def fqdn(self) -> str:
        return f"{self.hostname}.{DOMAIN}"


def mac(prefix: int, index: int) -> str:
    """``02:<prefix>:<index as 4 bytes>``: locally administered, unique per (prefix, index)."""
    raw = bytes([0x02, prefix]) + index.to_bytes(4, "big")
    return ":".join(f"{b:02x}" for b in raw)


def dns_names(count: int) -> list[Name]:
    """The DNS benchmark's names: ``h<i>.site1.example`` at 198.18.1.0 + i."""
    return [Name(f"h{i}", IPv4Address(_FIRST + i), mac(0x10, i)) for i in range(count)]


def query_lines(names: list[Name], count: int, seed: int = 7) -> list[str]:
    """dnsperf input: 80% A for existing names, 10% A for absent names (NXDOMAIN), 10% AAAA
    for existing names (NODATA), shuffled with a fixed seed."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        kind = i % 10
        if kind == 8:
            lines.append(f"nx{rng.randrange(10**6)}.{DOMAIN} A")
        elif kind == 9:
            lines.append(f"{rng.choice(names).fqdn} AAAA")
        else:
            lines.append(f"{rng.choice(names).fqdn} A")
    rng.shuffle(lines)
    return lines


def distinct_query_lines(names: list[Name], count: int, seed: int = 11) -> list[str]:
    """dnsperf input of ``count`` distinct questions (no question asked twice, so no cache
    of past answers helps): 80% names that exist (A for each name, then PTR for their
    addresses), 10% absent names (NXDOMAIN), 10% AAAA for existing names (NODATA), shuffled
    with a fixed seed. The positive questions take each name's A, then PTRs: ``count`` may be
    up to 2.5 times ``len(names)``."""
    rng = random.Random(seed)
    positive = count * 8 // 10
    nodata = count // 10
    absent = count - positive - nodata
    if positive > 2 * len(names) or nodata > len(names):
        raise ValueError(f"{count} distinct questions need more than {len(names)} names")
    lines = [f"{n.fqdn} A" for n in names[:positive]]
    lines += [f"{reverse_name(n.ip)} PTR" for n in names[: positive - len(lines)]]
    lines += [f"{n.fqdn} AAAA" for n in rng.sample(names, nodata)]
    lines += [f"nx{i}.{DOMAIN} A" for i in range(absent)]
    rng.shuffle(lines)
    return lines


def reverse_name(ip: IPv4Address) -> str:
    return ".".join(reversed(str(ip).split("."))) + ".in-addr.arpa"


def reverse_zones(names: list[Name]) -> list[str]:
    """The /16 reverse zones the names' addresses fall in (``18.198.in-addr.arpa``, and
    ``19.198.in-addr.arpa`` past 65,000 names), in order."""
    return sorted({_reverse_zone(n.ip) for n in names} | {REVERSE_ZONE})


def _reverse_zone(ip: IPv4Address) -> str:
    a, b, _, _ = str(ip).split(".")
    return f"{b}.{a}.in-addr.arpa"


def write_nsd_zones(folder: Path, names: list[Name], ttl: int = 300) -> tuple[Path, list[Path]]:
    """Forward zone ``site1.example`` and the reverse zones (``reverse_zones``) for NSD."""
    soa = f"@ IN SOA ns.{DOMAIN}. hostmaster.{DOMAIN}. 1 3600 600 86400 {ttl}\n"
    forward = folder / f"{DOMAIN}.zone"
    with forward.open("w") as f:
        f.write(f"$ORIGIN {DOMAIN}.\n$TTL {ttl}\n{soa}@ IN NS ns.{DOMAIN}.\n")
        f.write(f"ns IN A {NS_ADDRESS}\n")
        for n in names:
            f.write(f"{n.hostname} IN A {n.ip}\n")
    reverse = []
    for zone in reverse_zones(names):
        path = folder / f"{zone}.zone"
        with path.open("w") as f:
            f.write(f"$ORIGIN {zone}.\n$TTL {ttl}\n{soa}@ IN NS ns.{DOMAIN}.\n")
            for n in names:
                if _reverse_zone(n.ip) == zone:
                    f.write(f"{reverse_name(n.ip)}. IN PTR {n.fqdn}.\n")
        reverse.append(path)
    return forward, reverse


def write_hosts_file(path: Path, names: list[Name]) -> Path:
    """An ``/etc/hosts``-style file (dnsmasq ``--addn-hosts``): A and derived PTR."""
    with path.open("w") as f:
        for n in names:
            f.write(f"{n.ip} {n.fqdn}\n")
    return path


# --- memory data set ---


def mem_hosts(count: int) -> list[Name]:
    """Reservations ``m<i>`` at 198.18.1.0 + i."""
    return [Name(f"m{i}", IPv4Address(_FIRST + i), mac(0x20, i)) for i in range(count)]


def mem_leases(hosts: list[Name], count: int) -> Iterator[tuple[IPv4Address, str, str | None]]:
    """(ip, mac, hostname): one lease per reservation first, then dynamic ones after them."""
    for n in hosts[:count]:
        yield n.ip, n.mac, n.hostname
    for i in range(max(0, count - len(hosts))):
        yield IPv4Address(_FIRST + len(hosts) + i), mac(0x21, i), None


def mem_records(count: int) -> list[Name]:
    """Static A records ``r<i>.site1.example`` (addresses may repeat the leases': A records
    do not hold addresses)."""
    return [Name(f"r{i}", IPv4Address(_FIRST + i), "") for i in range(count)]


# --- boot storm ---

STORM_BASE_MAC = "52:54:00:00:00:00"
"""perfdhcp ``-b mac=…``: with ``--scenario avalanche -R N`` the clients are base + 0..N-1."""
STORM_RESERVED_FIRST = int(IPv4Address("198.18.128.0"))


def storm_mac(index: int) -> str:
    raw = int(STORM_BASE_MAC.replace(":", ""), 16) + index
    return ":".join(f"{b:02x}" for b in raw.to_bytes(6, "big"))


def storm_reservations(clients: int) -> list[Name]:
    """Every even-numbered storm client has a reservation ``s<i>`` at 198.18.128.0 + i."""
    return [
        Name(f"s{i}", IPv4Address(STORM_RESERVED_FIRST + i), storm_mac(i))
        for i in range(0, clients, 2)
    ]

"""The export forms: each reads back through its importer to the same objects, and the zone
file is one BIND's own checker accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from ddi.migrate import dnsmasq, export, kea, table, zonefile
from tests.ci import require_tool

HOSTS: list[dict[str, Any]] = [
    {"ip": "198.18.0.11", "hostname": "cam1", "mac": None, "client_id": "01:52:54:00:aa:bb:03",
     "dhcp": None},
    {"ip": "198.18.0.10", "hostname": "web1", "mac": "52:54:00:aa:bb:01", "client_id": None,
     "dhcp": {"lease_time": 600}},
    {"ip": "198.18.1.10", "hostname": "lab1", "mac": "52:54:00:aa:bb:02", "client_id": None,
     "dhcp": None},
]  # fmt: skip
RECORDS: list[dict[str, Any]] = [
    {"name": "www.site.example", "rtype": "CNAME", "value": "web1.site.example", "ttl": None},
    {"name": "site.example", "rtype": "MX", "value": "10 mail.site.example", "ttl": 600},
    {"name": "mail.site.example", "rtype": "A", "value": "198.18.0.25", "ttl": None},
    {"name": "mail.site.example", "rtype": "AAAA", "value": "2001:db8::25", "ttl": None},
    {"name": "_ldap._tcp.site.example", "rtype": "SRV", "value": "0 5 389 web1.site.example",
     "ttl": None},
    {"name": "site.example", "rtype": "TXT", "value": "v=spf1 mx " + "x" * 300 + ' "q"',
     "ttl": None},
    {"name": "other.example", "rtype": "A", "value": "198.18.0.26", "ttl": None},
]  # fmt: skip
SUBNETS = [{"name": "lab", "cidr": "198.18.1.0/24"}, {"name": "lan", "cidr": "198.18.0.0/24"}]


def _hosts_of(parsed: Any) -> set[tuple[Any, ...]]:
    return {(h.ip, h.hostname, h.mac, h.client_id) for h in parsed.hosts}


EXPECTED_HOSTS = {(h["ip"], h["hostname"], h["mac"], h["client_id"]) for h in HOSTS}


def test_dnsmasq_round_trip() -> None:
    text = export.to_dnsmasq(HOSTS, RECORDS)
    parsed = dnsmasq.parse_conf(text, "ddi.conf")
    assert not parsed.refused
    assert _hosts_of(parsed) == EXPECTED_HOSTS
    assert {h.lease_time for h in parsed.hosts} == {None, 600}
    got = {(r.name.rstrip("."), r.rtype, r.value.replace(".\u0020", " ").rstrip("."))
           for r in parsed.records}  # fmt: skip
    assert got == {(r["name"], r["rtype"], r["value"]) for r in RECORDS}


def test_kea_round_trip_groups_by_subnet() -> None:
    text = export.to_kea(HOSTS, SUBNETS)
    parsed = kea.parse_conf(text, "kea.json")
    assert not parsed.refused
    assert _hosts_of(parsed) == EXPECTED_HOSTS
    assert [h.source.split(":")[1].strip() for h in parsed.hosts] == [
        "subnet4[0].reservations[0]",
        "subnet4[0].reservations[1]",
        "subnet4[1].reservations[0]",
    ]


def test_csv_round_trip() -> None:
    parsed = table.parse_csv(export.to_csv(HOSTS), "hosts.csv")
    assert not parsed.refused
    assert _hosts_of(parsed) == EXPECTED_HOSTS
    assert {h.hostname: h.lease_time for h in parsed.hosts}["web1"] == 600


def _zone() -> str:
    return export.to_zone(
        HOSTS, RECORDS, origin="site.example", serial=7, ns_name="ns.site.example",
        ns_address="198.18.0.1",
    )  # fmt: skip


def test_zone_round_trip() -> None:
    parsed = zonefile.parse_zone(_zone(), "db.site.example")
    assert not parsed.refused
    got = {(r.name, r.rtype, r.value) for r in parsed.records}
    assert ("web1.site.example.", "A", "198.18.0.10") in got
    assert ("ns.site.example.", "A", "198.18.0.1") in got
    assert ("lab1.site.example.", "A", "198.18.1.10") in got
    assert ("site.example.", "TXT", RECORDS[5]["value"]) in got  # 255-byte strings, rejoined
    assert ("_ldap._tcp.site.example.", "SRV", "0 5 389 web1.site.example.") in got
    assert not any(name.startswith("other") for name, _, _ in got)  # outside the zone


def test_named_checkzone_accepts_the_exported_zone(tmp_path: Path) -> None:
    checker = require_tool("named-checkzone")
    path = tmp_path / "db.site.example"
    path.write_text(_zone())
    result = subprocess.run(
        [checker, "-k", "fail", "-n", "fail", "site.example", str(path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "serial 7" in result.stdout

"""``ddi import``, ``ddi export``, ``ddi lease history`` and ``ddi changes list`` filters
against a real ``ddi serve`` process: one bulk request, one transaction, round trips."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ci import require_tool
from tests.net.cli.test_cli import Daemon

DNSMASQ_CONF = """\
interface=eth1
dhcp-range=198.18.0.100,198.18.0.199,12h
dhcp-host=52:54:00:aa:bb:01,198.18.0.10,web1
dhcp-host=52:54:00:aa:bb:02,198.18.0.11,printer,2h
host-record=nas.site.example,198.18.0.20
cname=www.site.example,web1.site.example
conf-dir={confdir},*.conf
addn-hosts={hosts}
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "ddi")
    d.start()
    yield d
    assert d.stop() == 0, d.log.read_text()


def _files(tmp_path: Path, expiry: int) -> list[str]:
    confdir = tmp_path / "dnsmasq.d"
    confdir.mkdir()
    (confdir / "lab.conf").write_text("dhcp-host=52:54:00:aa:bb:03,198.18.0.12,cam\n")
    (confdir / "old.conf.bak").write_text("dhcp-host=52:54:00:aa:bb:04,198.18.0.13,gone\n")
    hosts = tmp_path / "hosts"
    hosts.write_text("198.18.0.10 web1\n198.18.0.21 files\n")
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(DNSMASQ_CONF.format(confdir=confdir, hosts=hosts))
    leases = tmp_path / "dnsmasq.leases"
    leases.write_text(
        f"{expiry} 52:54:00:aa:bb:10 198.18.0.150 laptop 01:52:54:00:aa:bb:10\n"
        f"{expiry} 52:54:00:aa:bb:01 198.18.0.10 web1 *\n"
    )
    return [str(conf), str(leases)]


def test_import_dry_run_then_import_then_export_round_trip(site: Daemon, tmp_path: Path) -> None:
    expiry = int(json.loads(site.get("/v1/status")[2])["started"]) + 7200
    files = _files(tmp_path, expiry)

    dry = site.cli("import", "dnsmasq", "--dry-run", *files)
    assert dry.returncode == 0, dry.stderr
    assert "would be added (8):" in dry.stdout
    assert "dry run: 8 added, 0 changed, 0 unchanged, 1 skipped, 0 refused" in dry.stdout
    assert "the name of host web1" in dry.stdout  # the hosts file's web1 line is the host
    assert f"{files[0]}: configuration (dnsmasq), 4 items" in dry.stdout
    assert site.json("reserve", "list") == []

    done = site.json("import", "dnsmasq", "--reason", "move from dnsmasq", *files)
    assert done["applied"] is True
    hosts = {h["hostname"]: h for h in site.json("reserve", "list")}
    assert sorted(hosts) == ["cam", "printer", "web1"]  # not the .bak file's
    assert hosts["printer"]["dhcp"] == {"lease_time": 7200}
    [lease] = [x for x in site.json("lease", "list") if x["ip"] == "198.18.0.150"]
    assert (lease["end"], lease["mac"], lease["state"]) == (expiry, "52:54:00:aa:bb:10", "bound")
    entries = site.json("changes", "list", "--actor", "root", "--limit", "100")
    assert len(entries) == 8  # 3 hosts, 3 records, 2 leases: one commit
    assert {e["reason"] for e in entries if e["kind"] != "lease"} == {"move from dnsmasq"}

    again = site.cli("import", "dnsmasq", *files)
    assert again.returncode == 0, again.stderr
    assert "imported: 0 added, 0 changed, 8 unchanged" in again.stdout

    # export, then import into a second site: the same reservations and records
    exported = {form: site.cli("export", form).stdout for form in ("dnsmasq", "csv", "kea")}
    assert "dhcp-host=52:54:00:aa:bb:02,198.18.0.11,printer,7200" in exported["dnsmasq"]
    for form, text in exported.items():
        path = tmp_path / f"export.{form}"
        path.write_text(text)
        check = site.cli("import", form if form != "kea" else "kea", "--dry-run", str(path))
        assert check.returncode == 0, check.stderr
        assert " 0 added, 0 changed" in check.stdout, (form, check.stdout)


def test_a_refused_item_writes_nothing_and_names_file_and_line(
    site: Daemon, tmp_path: Path
) -> None:
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(
        "dhcp-host=52:54:00:aa:bb:01,198.18.0.10,web1\n"
        "dhcp-host=52:54:00:aa:bb:02,198.18.0.1,router\n"
        "dhcp-host=52:54:00:aa:bb:03,203.0.113.9,far\n"
    )
    result = site.cli("import", "dnsmasq", str(conf))
    assert result.returncode == 1
    assert f"{conf}:2: host 198.18.0.1: 198.18.0.1 is the gateway" in result.stdout
    assert f"{conf}:3: host 203.0.113.9:" in result.stdout
    assert "refused: 2 items; nothing written" in result.stderr
    assert site.json("reserve", "list") == []
    bad = tmp_path / "bad.conf"
    bad.write_text("dhcp-host=52:54:00:*:*:01,198.18.0.10,wild\n")
    parse = site.cli("import", "dnsmasq", str(bad))
    assert parse.returncode == 1
    assert f"{bad}:1: wildcard MAC" in parse.stdout
    missing = site.cli("import", "csv", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1
    assert "cannot read" in missing.stdout


def test_lease_history_and_change_filters(site: Daemon, tmp_path: Path) -> None:
    start = int(json.loads(site.get("/v1/status")[2])["started"])
    leases = tmp_path / "dnsmasq.leases"
    leases.write_text(f"{start + 600} 52:54:00:aa:bb:10 198.18.0.150 laptop *\n")
    assert site.cli("import", "dnsmasq", str(leases)).returncode == 0
    leases.write_text(f"{start + 600} 52:54:00:aa:bb:11 198.18.0.151 laptop *\n")
    assert site.cli("lease", "release", "198.18.0.150").returncode == 0
    assert site.cli("import", "dnsmasq", str(leases)).returncode == 0

    by_ip = site.json("lease", "history", "198.18.0.150")
    assert [(e["image"]["mac"], e["image"]["state"]) for e in by_ip] == [
        ("52:54:00:aa:bb:10", "bound"),
        ("52:54:00:aa:bb:10", "released"),
    ]
    by_name = site.json("lease", "history", "laptop", "--since", "1d")
    assert [e["image"]["ip"] for e in by_name] == ["198.18.0.150", "198.18.0.150", "198.18.0.151"]
    assert site.json("lease", "history", "52-54-00-AA-BB-11") == by_name[2:]
    assert site.json("lease", "history", "laptop", "--until", "2000-01-01") == []
    table = site.cli("lease", "history", "198.18.0.150")
    assert table.stdout.splitlines()[0].split()[:4] == ["TIME", "KIND", "IP", "MAC"]

    deletes = site.json("changes", "list", "--op", "delete")
    assert deletes == []
    leases_only = site.json("changes", "list", "--kind", "lease")
    assert {e["kind"] for e in leases_only} == {"lease"}
    assert len(leases_only) == 3
    one = site.json("changes", "list", "--object", "198.18.0.151")
    assert [e["object_id"] for e in one] == ["198.18.0.151"]
    bad = site.cli("changes", "list", "--since", "yesterday")
    assert bad.returncode == 2
    assert "2d, 3h" in bad.stderr
    assert site.get("/v1/changes?op=update")[0] == 400
    assert site.get("/v1/changes?subject=not%20a%20key!")[0] == 422


def test_bulk_api_bounds(site: Daemon) -> None:
    status, _, body = _post(site, {"hosts": [{"ip": "198.18.0.10"}]})
    assert status == 400
    assert b"source is required" in body
    status, _, body = _post(site, {"hosts": "x"})
    assert (status, b"hosts must be a list" in body) == (400, True)
    status, _, body = _post(site, {"leases": [{"source": "a", "ip": "198.18.0.150", "mac": None,
                                               "start": 0, "end": True}]})  # fmt: skip
    assert status == 400


def _post(site: Daemon, body: dict[str, Any]) -> tuple[int, str, bytes]:
    from tests.net.cli.test_cli import _UnixConnection

    conn = _UnixConnection(site.socket)
    try:
        conn.request("POST", "/v1/import", body=json.dumps(body),
                     headers={"Content-Type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def test_exported_zone_passes_named_checkzone(site: Daemon, tmp_path: Path) -> None:
    checker = require_tool("named-checkzone")
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(
        "dhcp-host=52:54:00:aa:bb:01,198.18.0.10,web1\n"
        "cname=www.site.example,web1.site.example\n"
        "mx-host=site.example,web1.site.example,10\n"
        "srv-host=_ldap._tcp.site.example,web1.site.example,389\n"
        'txt-record=site.example,"v=spf1 mx -all"\n'
    )
    assert site.cli("import", "dnsmasq", str(conf)).returncode == 0
    zone = tmp_path / "db.site.example"
    out = site.cli("export", "zone", "--ns-address", "198.18.0.1", "-o", str(zone))
    assert out.returncode == 0, out.stderr
    result = subprocess.run(
        [checker, "-k", "fail", "-n", "fail", "site.example", str(zone)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + zone.read_text()
    back = site.cli("import", "zone", "--dry-run", str(zone))
    assert back.returncode == 0, back.stderr
    assert " 1 added, 0 changed, 4 unchanged, 3 skipped, 0 refused" in back.stdout, back.stdout

"""The server DUID: configured, else kept in the data dir across restarts; ``[dhcp6]`` parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddi.config.dhcp6 import parse_dhcp6, parse_duid
from ddi.config.table import Table
from ddi.dhcp6.server_duid import DUID_FILE, server_duid
from ddi.errors import ConfigError


def test_configured_duid_wins_and_nothing_is_written(tmp_path: Path) -> None:
    duid = server_duid("00:03:00:01:52:54:00:00:00:01", tmp_path, [])
    assert duid == bytes.fromhex("00030001525400000001")
    assert not (tmp_path / DUID_FILE).exists()


def test_a_made_duid_is_kept_and_read_back(tmp_path: Path) -> None:
    first = server_duid(None, tmp_path, ["lo", "no-such-interface"])
    # lo has no MAC: a DUID-EN (RFC 8415 §11.3) with the documentation enterprise number.
    assert first[:6] == bytes.fromhex("000200007ed9")
    assert (tmp_path / DUID_FILE).read_text().strip() == first.hex(":")
    assert server_duid(None, tmp_path, ["lo"]) == first  # the next start serves the same DUID


def test_a_damaged_duid_file_is_an_error_not_a_new_duid(tmp_path: Path) -> None:
    (tmp_path / DUID_FILE).write_text("not hex\n")
    with pytest.raises(ConfigError):
        server_duid(None, tmp_path, [])


@pytest.mark.parametrize("text", ["", "00:01", "zz:zz:zz", "0" * 300, "0:00:00"])
def test_bad_duids_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duid(text, "dhcp6.server_duid")


def test_dhcp6_section_defaults_off_and_checks_its_duid() -> None:
    assert parse_dhcp6(None).enabled is False
    config = parse_dhcp6(Table({"enabled": True, "port": 1547}, "dhcp6", Path(".")))
    assert (config.enabled, config.port, config.client_port) == (True, 1547, 546)
    with pytest.raises(ConfigError, match=r"dhcp6\.server_duid"):
        parse_dhcp6(Table({"server_duid": "xyz"}, "dhcp6", Path(".")))
    with pytest.raises(ConfigError, match=r"dhcp6\.prot"):
        parse_dhcp6(Table({"prot": 1}, "dhcp6", Path(".")))

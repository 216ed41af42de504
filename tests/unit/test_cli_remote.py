"""``ddi --url``: what the remote options accept and refuse before any connection."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from ddi.cli.client import API_PORT, parse_fingerprint, remote

PIN = (
    "67:0A:DA:F0:BF:12:7F:17:51:66:B2:A3:C2:3B:6D:7E"
    ":92:94:73:50:AA:A0:2F:9A:CD:82:18:F7:00:E2:80:9C"
)


@pytest.mark.parametrize(
    "text", [PIN, PIN.replace(":", ""), PIN.lower(), f"sha256:{PIN}", f"SHA256={PIN}", f" {PIN} "]
)
def test_fingerprint_spellings(text: str) -> None:
    assert parse_fingerprint(text) == bytes.fromhex(PIN.replace(":", ""))


@pytest.mark.parametrize("text", ["", "AB", PIN + ":00", PIN.replace("67", "ZZ"), "x" * 64])
def test_fingerprint_refused(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_fingerprint(text)


def test_remote_url_and_token_file(tmp_path: Path) -> None:
    secret = tmp_path / "site1.token"
    secret.write_text("ddi_secret\n")
    target = remote("https://198.18.0.1", token_file=secret, fingerprint=PIN, ca=None)
    assert (target.https, target.host, target.port, target.token) == (
        True,
        "198.18.0.1",
        API_PORT,
        "ddi_secret",
    )
    v6 = remote("https://[2001:db8::1]:9443/", token_file=None, fingerprint=None, ca=None)
    assert (v6.host, v6.port, v6.token) == ("2001:db8::1", 9443, None)
    assert not remote("http://127.0.0.1:8053", token_file=None, fingerprint=None, ca=None).https


@pytest.mark.parametrize(
    "url",
    [
        "http://198.18.0.1:8053",  # a token in the clear across a network
        "ftp://198.18.0.1",
        "https://",
        "https://198.18.0.1/v1/hosts",
        "https://user@198.18.0.1",
        "https://198.18.0.1:99999",
        "198.18.0.1:8053",
    ],
)
def test_remote_url_refused(url: str) -> None:
    with pytest.raises(click.BadParameter):
        remote(url, token_file=None, fingerprint=None, ca=None)


def test_remote_token_file_refused(tmp_path: Path) -> None:
    with pytest.raises(click.BadParameter, match="cannot read"):
        remote("https://h", token_file=tmp_path / "missing", fingerprint=None, ca=None)
    empty = tmp_path / "empty"
    empty.write_text("\n\n")
    with pytest.raises(click.BadParameter, match="holds no token"):
        remote("https://h", token_file=empty, fingerprint=None, ca=None)
    with pytest.raises(click.UsageError, match="need an https"):
        remote("http://127.0.0.1", token_file=None, fingerprint=PIN, ca=None)

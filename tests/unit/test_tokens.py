"""The tokens file: scopes nest, secrets are stored only hashed, bad files and names refused."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ddi.errors import ConfigError, Conflict, Invalid, NotFound
from ddi.tokens import TokenFile, digest, granted


def test_scopes_nest() -> None:
    assert granted(["write"]) == {"write", "read", "metrics"}
    assert granted(["read"]) == {"read", "metrics"}
    assert granted(["metrics"]) == {"metrics"}


def test_add_verify_remove(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    tokens = TokenFile(path)
    token, secret = tokens.add("grafana", ["metrics"])
    assert secret.startswith("ddi_")
    assert len(secret) > 40
    assert secret not in path.read_text()
    assert json.loads(path.read_text())["tokens"][0]["sha256"] == digest(secret)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.verify(secret) == token
    assert tokens.verify(secret + "x") is None
    assert token.allows("metrics")
    assert not token.allows("read")
    # Another process's view picks the file up; removal is seen on reload.
    other = TokenFile(path)
    assert other.verify(secret) == token
    tokens.remove("grafana")
    assert other.reload_if_changed()
    assert other.verify(secret) is None
    with pytest.raises(NotFound):
        tokens.remove("grafana")


def test_sites_narrow_a_token(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "t.json")
    token, _ = tokens.add("noc-east", ["read"], sites=["site1"])
    assert token.allows("read", "site1")
    assert not token.allows("read", "site2")
    assert not token.allows("write", "site1")


@pytest.mark.parametrize(
    ("name", "scopes"), [("bad name", ["read"]), ("a:b", ["read"]), ("ok", []), ("ok", ["root"])]
)
def test_bad_name_or_scope_refused(tmp_path: Path, name: str, scopes: list[str]) -> None:
    with pytest.raises(Invalid):
        TokenFile(tmp_path / "t.json").add(name, scopes)
    assert not (tmp_path / "t.json").exists()


def test_duplicate_name_refused(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "t.json")
    tokens.add("ci", ["read"])
    with pytest.raises(Conflict):
        tokens.add("ci", ["write"])
    assert [t.name for t in tokens.tokens()] == ["ci"]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"version": 2, "tokens": []}',
        '{"version": 1, "tokens": [{"name": "x", "scopes": ["read"], "sha256": "zz"}]}',
        '{"version": 1, "tokens": [{"name": "x", "scopes": ["god"], "sha256": "'
        + "a" * 64
        + '"}]}',
    ],
)
def test_bad_file_refused_with_its_path(tmp_path: Path, body: str) -> None:
    path = tmp_path / "t.json"
    path.write_text(body)
    with pytest.raises(ConfigError) as caught:
        TokenFile(path)
    assert str(path) in str(caught.value)


def test_by_digest_finds_a_token_by_its_hash(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "tokens.json")
    token, secret = tokens.add("viewer", ["read"])
    assert tokens.by_digest(token.sha256) == token
    assert tokens.by_digest(digest(secret)) == token
    assert tokens.by_digest("0" * 64) is None

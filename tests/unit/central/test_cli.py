"""``ddi-central``: its config file and the administration commands, on a SQLite store."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from central.cli import main
from central.config import load_central_config
from ddi.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "central.toml"


def test_example_config_parses() -> None:
    config = load_central_config(EXAMPLE)
    assert config.listen == ("127.0.0.1", 8443)
    assert config.insecure_http
    assert config.signing_key == EXAMPLE.parent / "central.key"
    assert config.tokens_file == EXAMPLE.parent / "central.tokens.json"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            '[central]\nsigning_key = "k"\ninsecure_http = true\nlisten_on = "x"\n',
            "central.listen_on",
        ),
        ('[central]\nsigning_key = "k"\n', "central.tls_cert"),
        ("[central]\ninsecure_http = true\n", "central.signing_key"),
        ('[central]\nsigning_key = "k"\ninsecure_http = true\nlisten = "nope"\n', "central.listen"),
        ("[other]\n", "other"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_central_config(path)
    assert info.value.key == key


def test_keygen_site_add_reserve_and_export(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["keygen", "--out", str(tmp_path / "central.key")])
    assert result.exit_code == 0, result.output
    assert runner.invoke(main, ["keygen", "--out", str(tmp_path / "central.key")]).exit_code == 1
    assert runner.invoke(main, ["keygen", "--out", str(tmp_path / "site.key")]).exit_code == 0
    config = tmp_path / "central.toml"
    config.write_text(
        '[central]\ndatabase = "sqlite://c.sqlite"\nsigning_key = "central.key"\n'
        "insecure_http = true\n"
    )
    c = ["--config", str(config)]
    add = ["site", "add", *c, "--id", "s1", "--public-key", str(tmp_path / "site.key.pub")]
    assert runner.invoke(main, add).exit_code == 0
    again = runner.invoke(main, add)
    assert again.exit_code == 1
    assert "already" in again.output
    reserve = ["reserve", "add", *c, "--site", "s1", "--mac", "52-54-00-00-00-0A",
               "--ip", "198.18.0.10", "--hostname", "pxe1", "--boot", "uefi"]  # fmt: skip
    result = runner.invoke(main, reserve)
    assert result.exit_code == 0, result.output
    assert "down seq 1" in result.output
    bad = runner.invoke(main, [*reserve[:-6], "--ip", "198.18.0.300", "--hostname", "x"])
    assert bad.exit_code == 1
    other = ["--mac", "52:54:00:00:00:0b", "--ip", "198.18.0.11", "--hostname", "y"]
    unknown = runner.invoke(main, ["reserve", "add", *c, "--site", "nosuch", *other])
    assert unknown.exit_code == 1
    assert "no site nosuch" in unknown.output
    removed = runner.invoke(main, ["reserve", "remove", *c, "--site", "s1", "pxe1"])
    assert removed.exit_code == 0, removed.output
    assert "down seq 2" in removed.output
    listed = runner.invoke(main, ["site", "list", *c, "--json"])
    assert json.loads(listed.output)[0]["site"] == "s1"
    assert runner.invoke(main, ["conflicts", *c]).output.strip() == "no conflicts"
    exported = runner.invoke(main, ["export", *c, "--format", "csv"])
    assert exported.exit_code == 0
    assert next(csv.reader(io.StringIO(exported.output)))[:3] == ["site", "kind", "object_id"]
    assert json.loads(runner.invoke(main, ["export", *c, "--format", "json"]).output) == []

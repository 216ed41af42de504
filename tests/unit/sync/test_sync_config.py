"""``[sync]``: an https:// central is pinned to ``ca_file``, which is therefore required."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ddi.config import SyncConfig, parse_config
from ddi.errors import ConfigError
from sync.agent import ssl_context

MINIMAL: dict[str, Any] = {"site": {"id": "s", "domain": "s.example"}}
PATH = Path("/etc/ddi/ddi.toml")
SYNC = {"central_url": "https://central.example", "site_key": "k", "central_public_key": "c"}


def test_an_https_central_needs_the_ca_it_is_pinned_to() -> None:
    with pytest.raises(ConfigError, match=r"sync\.ca_file.*required"):
        parse_config(MINIMAL | {"sync": SYNC}, path=PATH)
    pinned = parse_config(MINIMAL | {"sync": SYNC | {"ca_file": "ca.pem"}}, path=PATH).sync
    assert pinned is not None
    assert pinned.ca_file is not None
    lab = SYNC | {"central_url": "http://central.lab:8443", "insecure_http": True}
    assert parse_config(MINIMAL | {"sync": lab}, path=PATH).sync is not None


def test_the_tls_context_needs_a_ca_file_it_can_load(tmp_path: Path) -> None:
    config = SyncConfig(central_url="https://c.example", site_key=tmp_path / "k",
                        central_public_key=tmp_path / "c")  # fmt: skip
    with pytest.raises(ConfigError, match=r"sync\.ca_file"):
        ssl_context(config)
    missing = SyncConfig(**{**_fields(config), "ca_file": tmp_path / "none.pem"})
    with pytest.raises(ConfigError, match=r"sync\.ca_file.*cannot load"):
        ssl_context(missing)


def _fields(config: SyncConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in SyncConfig.__dataclass_fields__}

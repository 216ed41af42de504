"""systemd/ddi-central.service: a hardened notify service that runs the collector."""

from __future__ import annotations

import configparser
from pathlib import Path

UNIT = Path(__file__).resolve().parents[3] / "systemd" / "ddi-central.service"


def _service() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return dict(parser["Service"])


def test_unit_is_a_hardened_notify_service_without_capabilities() -> None:
    service = _service()
    assert service["Type"] == "notify"
    assert service["ExecStart"] == (
        "/opt/ddi/venv/bin/ddi-central serve --config /etc/ddi-central/central.toml"
    )
    assert service["WatchdogSec"] == "30"
    assert service["RestartPreventExitStatus"] == "2"
    assert service["User"] == "ddi-central"
    assert service["StateDirectory"] == "ddi-central"
    assert service["CapabilityBoundingSet"] == ""
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"

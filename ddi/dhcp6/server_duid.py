"""The server's DUID (RFC 8415 §11): the configured one, else the one kept in the data dir, else
a new DUID-LLT from an interface's MAC (a DUID-EN when none has one), kept for the next start.

Clients remember the server by its DUID (RENEW names it): it must not change across restarts.
"""

from __future__ import annotations

import logging
import os
import secrets
import struct
import time
from collections.abc import Sequence
from pathlib import Path

from ddi.config.dhcp6 import parse_duid
from ddi.dhcp6.options import DUID_LLT, HWTYPE_ETHERNET, duid_en, duid_text
from ddi.errors import ConfigError

log = logging.getLogger(__name__)

DUID_FILE = "dhcp6-server-duid"
DUID_EPOCH = 946684800
"""RFC 8415 §11.2: DUID-LLT time counts seconds from 2000-01-01 00:00 UTC."""
ENTERPRISE_EXAMPLE = 32473
"""RFC 5612's documentation enterprise number, for a DUID-EN when no MAC is at hand."""


def interface_mac(name: str) -> bytes | None:
    """The Ethernet address of interface ``name`` (sysfs), or None."""
    try:
        text = Path(f"/sys/class/net/{name}/address").read_text().strip()
    except OSError:
        return None
    raw = bytes.fromhex(text.replace(":", "")) if len(text) == 17 else b""
    return raw if len(raw) == 6 and any(raw) else None


def server_duid(configured: str | None, data_dir: Path, interfaces: Sequence[str]) -> bytes:
    """The DUID to serve with (see the module docstring).

    Raises:
        ConfigError: the kept file holds no DUID, or it cannot be written.
    """
    if configured is not None:
        return parse_duid(configured, "dhcp6.server_duid")
    path = data_dir / DUID_FILE
    try:
        return parse_duid(path.read_text().strip(), str(path))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError("dhcp6.server_duid", f"cannot read {path}: {exc}") from None
    mac = next((m for m in map(interface_mac, interfaces) if m is not None), None)
    if mac is not None:
        seconds = (int(time.time()) - DUID_EPOCH) & 0xFFFFFFFF
        duid = struct.pack("!HHI", DUID_LLT, HWTYPE_ETHERNET, seconds) + mac
    else:
        duid = duid_en(ENTERPRISE_EXAMPLE, secrets.token_bytes(8))
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(duid_text(duid) + "\n")
        with temporary.open("rb") as f:
            os.fsync(f.fileno())
        temporary.replace(path)
    except OSError as exc:
        raise ConfigError("dhcp6.server_duid", f"cannot keep the DUID in {path}: {exc}") from None
    log.info("dhcp6: new server DUID %s kept in %s", duid_text(duid), path)
    return duid

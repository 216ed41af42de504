"""What ``ddi serve --check`` (and ``systemctl reload``'s ExecReload) verifies beyond the file's
syntax: that start-up would find what the config names.

* Every interface named (``[dhcp] interfaces``, a subnet's ``interface``) exists.
* The data directory is (or can be created) writable by this user.
* With ``[dhcp] enabled``, there is a subnet to serve.
* The script files the profiles name exist.
* The admin listener's TLS certificate and key (``[api] tls_cert``/``tls_key``, or the
  self-signed pair already made in the data directory) load and match; the tokens file, if
  there is one, is a valid tokens file.

Each problem names the key, as a config error does. The boot files the profiles name are
looked for under ``[boot] root`` too, but one missing is a warning (:func:`warnings`): the
files are often copied in after the config (from Debian's ``ipxe`` package), and the daemon
serves everything else meanwhile. A name with a template field (``{mac}``) is made per client
and not checked.
"""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path

from ddi.config import Config
from ddi.config.site import TOKENS_FILE
from ddi.errors import ConfigError
from ddi.tokens import TokenFile
from ddi.web.tls import CERT_FILE, KEY_FILE, server_context

__all__ = ["problems", "warnings"]


def _interface_exists(name: str) -> bool:
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def _writable_dir(path: Path) -> str | None:
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return f"{path}: no existing parent directory"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user"
    return None


def _api_problems(config: Config) -> list[str]:
    api = config.api
    found: list[str] = []
    tokens = api.tokens_file or config.site.data_dir / TOKENS_FILE
    try:
        TokenFile(tokens)
    except ConfigError as exc:
        found.append(f"api.tokens_file: {exc}")
    if api.listen is None or not api.tls:
        return found
    if api.tls_cert is not None and api.tls_key is not None:
        pair, key = (api.tls_cert, api.tls_key), "api.tls_cert"
    else:
        pair, key = (config.site.data_dir / CERT_FILE, config.site.data_dir / KEY_FILE), "api"
        if not (pair[0].exists() and pair[1].exists()):
            return found  # made at first start
    try:
        server_context(*pair)
    except (OSError, ssl.SSLError, ValueError) as exc:
        found.append(f"{key}: {pair[0]} and {pair[1]} are not a usable certificate and key: {exc}")
    return found


def problems(config: Config) -> list[str]:
    """What start-up would trip on, one line each; empty when none."""
    found: list[str] = _api_problems(config)
    if config.dhcp.enabled:
        for name in config.dhcp.interfaces:
            if not _interface_exists(name):
                found.append(f"dhcp.interfaces: no interface {name!r} on this host")
        for i, subnet in enumerate(config.subnets):
            if subnet.interface is not None and not _interface_exists(subnet.interface):
                found.append(f"subnets[{i}].interface: no interface {subnet.interface!r}")
        # DHCPv4 is on by default: a site that describes only [[subnets6]] is not refused.
        if not config.subnets and not config.subnets6:
            found.append("dhcp.enabled: DHCP is enabled but no [[subnets]] is configured")
    if config.dhcp6.enabled:
        for i, subnet6 in enumerate(config.subnets6):
            if subnet6.interface is not None and not _interface_exists(subnet6.interface):
                found.append(f"subnets6[{i}].interface: no interface {subnet6.interface!r}")
        if not config.subnets6:
            found.append("dhcp6.enabled: DHCPv6 is enabled but no [[subnets6]] is configured")
    why = _writable_dir(config.site.data_dir)
    if why is not None:
        found.append(f"site.data_dir: {why}")
    boot = config.boot
    if boot.tftp_enabled or boot.http_enabled:
        for name, profile in sorted(boot.profiles.items()):
            key = f"boot.profiles.{name}"
            for what, path in (
                ("script_template", profile.script_template),
                ("default_script", profile.default_script),
            ):
                if path is not None and not path.is_file():
                    found.append(f"{key}.{what}: no file {path}")
        if boot.script_template is not None and not boot.script_template.is_file():
            found.append(f"boot.script_template: no file {boot.script_template}")
    return found


def warnings(config: Config) -> list[str]:
    """Boot files the profiles name that are not under ``[boot] root``, one line a file."""
    boot = config.boot
    if not (boot.tftp_enabled or boot.http_enabled):
        return []
    missing: dict[str, list[str]] = {}
    for name, profile in sorted(boot.profiles.items()):
        for file in profile.files.values():
            if "{" not in file and not (boot.root / file.lstrip("/")).is_file():
                keys = missing.setdefault(file, [])
                if f"boot.profiles.{name}" not in keys:
                    keys.append(f"boot.profiles.{name}")
    return [
        f"{', '.join(keys)}: boot file {file!r} is not in {boot.root}"
        for file, keys in sorted(missing.items())
    ]

"""One module per wire entry point; ``TARGETS`` names them for the runner."""

from __future__ import annotations

from collections.abc import Callable

from fuzz.core import Target


def _dhcp() -> Target:
    from fuzz.targets import dhcp

    return dhcp.target()


def _dhcp6() -> Target:
    from fuzz.targets import dhcp6

    return dhcp6.target()


def _dns() -> Target:
    from fuzz.targets import dns

    return dns.target()


def _tftp() -> Target:
    from fuzz.targets import tftp

    return tftp.target()


def _http_boot() -> Target:
    from fuzz.targets import http_boot

    return http_boot.target()


def _sync() -> Target:
    from fuzz.targets import sync

    return sync.target()


def _api() -> Target:
    from fuzz.targets import api

    return api.target()


def _auth() -> Target:
    from fuzz.targets import auth

    return auth.target()


def _ra() -> Target:
    from fuzz.targets import ra

    return ra.target()


def _imports() -> Target:
    from fuzz.targets import imports

    return imports.target()


def _fleet() -> Target:
    from fuzz.targets import fleet

    return fleet.target()


def _console() -> Target:
    from fuzz.targets import console

    return console.target()


TARGETS: dict[str, Callable[[], Target]] = {
    "dhcp": _dhcp,
    "dhcp6": _dhcp6,
    "dns": _dns,
    "tftp": _tftp,
    "http_boot": _http_boot,
    "sync": _sync,
    "api": _api,
    "auth": _auth,
    "ra": _ra,
    "imports": _imports,
    "fleet": _fleet,
    "console": _console,
}
"""Name -> builder; a target is built (and its modules imported) only when it runs."""

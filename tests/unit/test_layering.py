"""STYLE.md R18, enforced: the protocol cores import no I/O, clock or randomness and never
their transports; only the two stores import a database driver; the CLI talks to the daemon
through its API only; the edge (``ddi``, ``sync``) never imports the collector (``central``)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IO = {"asyncio", "socket", "ssl", "aiosqlite", "sqlite3", "aiohttp", "asyncpg",
      "prometheus_client", "time", "random", "ddi.metrics"}  # fmt: skip
DRIVERS = {"aiosqlite", "asyncpg", "sqlite3"}

PURE: dict[str, set[str]] = {
    # module: what it must not import besides IO
    "ddi.errors": set(),
    "ddi.values": set(),
    "ddi.ipam.models": set(),
    "ddi.ipam.validate": set(),
    "ddi.ipam.rows": {"ddi.ipam.store"},
    "ddi.ipam.write_checks": {"ddi.ipam.store"},
    "ddi.ipam.owner": {"ddi.ipam.store"},
    "ddi.ipam.allocator": {"ddi.ipam.store"},
    "ddi.ipam.sync_values": {"ddi.ipam.store", "ddi.ipam.store_sync"},
    "ddi.ipam.models6": set(),
    "ddi.ipam.validate6": set(),
    "ddi.ipam.rows6": {"ddi.ipam.store"},
    "ddi.ipam.allocator6": {"ddi.ipam.store"},
    "ddi.ipam.views6": {"ddi.ipam.store"},
    "ddi.ipam.orphans": {"ddi.ipam.store"},
    "ddi.ipam.usage": {"ddi.ipam.store"},
    "ddi.ipam.import_plan": {"ddi.ipam.store", "ddi.ipam.store_import"},
    "ddi.ipam.change_query": {"ddi.ipam.store"},
    "ddi.web.ring": set(),
    "ddi.web.charts": set(),
    "ddi.console.usage6": {"ddi.ipam.store"},
    "ddi.console.timefilter": set(),
    "ddi.migrate.items": {"ddi.ipam", "pathlib", "os"},
    "ddi.migrate.limits": {"ddi.ipam", "pathlib", "os"},
    "ddi.migrate.dnsmasq": {"ddi.ipam", "pathlib", "os"},
    "ddi.migrate.kea": {"ddi.ipam", "pathlib", "os"},
    "ddi.migrate.isc": {"ddi.ipam", "pathlib", "os"},
    "ddi.migrate.zonefile": {"ddi.ipam", "pathlib", "os"},
    "ddi.migrate.table": {"ddi.ipam", "pathlib", "os"},
    "ddi.migrate.detect": {"ddi.ipam", "pathlib", "os"},
    "ddi.migrate.export": {"ddi.ipam", "pathlib", "os"},
    "ddi.dhcp.lease_log": {"ddi.dhcp.server", "ddi.ipam.store"},
    "ddi.dhcp.options": set(),
    "ddi.dhcp.packet": set(),
    "ddi.dhcp.decision": {"ddi.dhcp.server", "ddi.dhcp.commit", "ddi.ipam.store"},
    "ddi.dhcp.engine": {"ddi.dhcp.server", "ddi.dhcp.commit", "ddi.ipam.store"},
    "ddi.dhcp.offers": {"ddi.dhcp.server", "ddi.dhcp.engine", "ddi.dhcp.commit", "ddi.ipam.store"},
    "ddi.dhcp.reply_options": {"ddi.dhcp.server", "ddi.dhcp.commit", "ddi.ipam.store"},
    "ddi.dhcp.admission": {"ddi.dhcp.server", "ddi.dhcp.commit", "ddi.ipam.store"},
    "ddi.dhcp.option_defs": {"ddi.dhcp.server", "ddi.dhcp.commit", "ddi.ipam.store"},
    "ddi.dhcp.classes": {"ddi.dhcp.server", "ddi.dhcp.commit", "ddi.ipam.store"},
    "ddi.dhcp.shared_networks": {"ddi.dhcp.server", "ddi.dhcp.commit", "ddi.ipam.store"},
    "ddi.dhcp.netboot": {"ddi.dhcp.server", "ddi.boot.tftp", "ddi.boot.http"},
    "ddi.dhcp6.options": set(),
    "ddi.dhcp6.packet": set(),
    "ddi.dhcp6.nets": set(),
    "ddi.dhcp6.admission6": set(),
    "ddi.dhcp6.netboot": {"ddi.dhcp6.server", "ddi.dhcp.server", "ddi.boot.tftp"},
    "ddi.dhcp6.decision": {"ddi.dhcp6.server", "ddi.dhcp.commit", "ddi.ipam.store"},
    "ddi.dhcp6.engine": {"ddi.dhcp6.server", "ddi.dhcp.commit", "ddi.ipam.store"},
    "ddi.boot.templates": {"ddi.boot.tftp", "ddi.boot.http", "ddi.config"},
    "ddi.boot.tftp_session": {"os", "pathlib", "ddi.boot.tftp", "ddi.boot.files"},
    "ddi.ra.message": {"ddi.ra.service"},
    "ddi.ra.schedule": {"ddi.ra.service", "random"},
    "ddi.ra.settings": {"ddi.ra.service"},
    "ddi.config.ra": {"ddi.ra.service"},
    "ddi.numbers": {"os", "ddi.boot.tftp", "ddi.boot.http"},
    "ddi.dns.zone": {"ddi.dns.server", "ddi.dns.forward", "ddi.dns.zones"},
    "ddi.dns.zones": {"ddi.dns.server", "ddi.dns.forward"},
    "ddi.dns.zone6": {"ddi.dns.server", "ddi.dns.forward"},
    "ddi.dns.engine": {"ddi.dns.server", "ddi.dns.forward"},
    "ddi.dns.wire": {"ddi.dns.server", "ddi.dns.forward"},
    "ddi.dns.acl": {"ddi.dns.server", "ddi.dns.forward"},
    "ddi.dns.rrl": {"ddi.dns.server", "ddi.dns.forward"},
    "ddi.dns.cache": {"ddi.dns.server", "ddi.dns.forward"},
    "ddi.dns.compiled": {"ddi.dns.server", "ddi.dns.forward"},
    "ddi.dns.tsig": {"ddi.dns.server", "ddi.dns.forward"},
    "ddi.dns.xfr": {"ddi.dns.server", "ddi.dns.forward"},
    "ddi.dns.responder": {
        "ddi.dns.server",
        "ddi.dns.tcp",
        "ddi.dns.notify",
        "ddi.dns.forward",
        "ddi.dns.counting",
    },
    # The wire format both programs share imports neither of them.
    "sync.protocol": {"ddi.ipam.store", "sync.agent", "central"},
    "sync.signing": {"ddi.ipam.store", "sync.agent", "central"},
    "sync.outbox": {"ddi.ipam.store", "sync.agent", "central"},
    "sync.backoff": {"ddi.ipam.store", "sync.agent", "central"},
    "sync.round": {"ddi.ipam.store", "ddi.ipam.store_sync", "sync.agent", "central"},
    "central.admission": {"ddi.ipam.store", "sync.agent", "central.app", "central.store"},
    "central.console.fleet": {"central.app", "central.store", "central.console.reads"},
    "central.nautobot.mapping": {"central.store", "central.app", "pynautobot", "requests"},
    "central.nautobot.reserve": {"central.store", "central.app", "pynautobot", "requests"},
}
DRIVER_MODULES = {"ddi.ipam.store", "ddi.ipam.transaction", "central.store"}


def _imports(module: str) -> set[str]:
    spec = importlib.util.find_spec(module)
    assert spec is not None
    assert spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _hits(module: str, forbidden: set[str]) -> set[str]:
    return {n for n in _imports(module) for f in forbidden if n == f or n.startswith(f + ".")}


def _all_modules() -> list[str]:
    found = []
    for package in ("ddi", "sync", "central"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


@pytest.mark.parametrize("module", sorted(PURE))
def test_pure_module_imports_no_io_and_no_transport(module: str) -> None:
    bad = _hits(module, IO | PURE[module])
    assert not bad, f"{module} imports {sorted(bad)}"


@pytest.mark.parametrize("module", [m for m in _all_modules() if m not in DRIVER_MODULES])
def test_only_the_stores_import_a_database_driver(module: str) -> None:
    assert not _hits(module, DRIVERS), f"{module} imports a database driver"


# `ddi serve` starts the daemon itself; every other command only speaks to its API.
CLI_CLIENTS = [m for m in _all_modules() if m.startswith("ddi.cli") and m != "ddi.cli.serve"]


@pytest.mark.parametrize("module", CLI_CLIENTS)
def test_the_cli_talks_to_the_daemon_only(module: str) -> None:
    bad = _hits(module, {"ddi.ipam.store", "ddi.app", "sync", "central", "aiohttp"})
    assert not bad, f"{module} imports {sorted(bad)}"


@pytest.mark.parametrize(
    "module", [m for m in _all_modules() if m.split(".")[0] in ("ddi", "sync")]
)
def test_the_edge_never_imports_the_collector(module: str) -> None:
    assert not _hits(module, {"central"}), f"{module} imports the collector"


def test_every_pure_module_exists() -> None:
    assert set(PURE) <= set(_all_modules())

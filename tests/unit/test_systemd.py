"""systemd integration: the unit file (checked by ``systemd-analyze verify``) and the
sd_notify client (READY/STOPPING/RELOADING/WATCHDOG datagrams)."""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from ddi.sdnotify import Notifier, run_watchdog, watchdog_interval
from tests.ci import require_tool

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "ddi.service"
EXEC_START = "/opt/ddi/venv/bin/ddi"


def _directives() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return dict(parser["Service"])


def test_unit_is_a_hardened_notify_service() -> None:
    service = _directives()
    assert service["Type"] == "notify"
    assert service["WatchdogSec"] == "30"
    assert service["StateDirectory"] == "ddi"
    assert service["RuntimeDirectory"] == "ddi"
    assert service["User"] == "ddi"
    # Two ExecReload lines: the file is checked first, then the daemon answers applied or
    # refused; either failing fails `systemctl reload`.
    reloads = [line for line in UNIT.read_text().splitlines() if line.startswith("ExecReload=")]
    assert reloads == [
        f"ExecReload={EXEC_START} serve --check --config /etc/ddi/ddi.toml",
        f"ExecReload={EXEC_START} reload",
    ]
    assert service["ExecStart"].startswith(f"{EXEC_START} serve --config /etc/ddi/ddi.toml")
    capabilities = {"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}
    assert set(service["AmbientCapabilities"].split()) == capabilities
    assert set(service["CapabilityBoundingSet"].split()) == capabilities
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices"):
        assert service[key] == "yes", key
    assert service["ProtectSystem"] == "strict"


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze")  # make test installs the systemd package
    # verify checks that ExecStart exists; the unit names the installed path
    # (/opt/ddi/venv), so verify a copy that points at an executable present here.
    # Everything else in the file is verified as it is shipped.
    text = UNIT.read_text()
    assert text.count(f"ExecStart={EXEC_START} ") == 1
    copy = tmp_path / "ddi.service"
    for directive in ("ExecStart", "ExecReload"):
        text = text.replace(f"{directive}={EXEC_START} ", f"{directive}={sys.executable} ")
    copy.write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    assert result.stdout.strip() == "", result.stdout


# --- sd_notify ---


def _receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2.0)
    return sock


def test_notify_sends_states_as_one_datagram(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with _receiver(str(path)) as sock:
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": str(path)})
        assert notifier.notify("READY=1", "STATUS=serving")
        assert sock.recv(4096) == b"READY=1\nSTATUS=serving"


def test_notify_reaches_an_abstract_socket() -> None:
    name = f"ddi-test-{os.getpid()}-{time.monotonic_ns()}"
    with _receiver(b"\0" + name.encode()) as sock:
        assert Notifier(f"@{name}").notify("STOPPING=1")
        assert sock.recv(4096) == b"STOPPING=1"


def test_reloading_carries_monotonic_usec(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with _receiver(str(path)) as sock:
        assert Notifier(str(path)).reloading()
        lines = sock.recv(4096).decode().split("\n")
    assert lines[0] == "RELOADING=1"
    assert lines[1].startswith("MONOTONIC_USEC=")
    assert int(lines[1].partition("=")[2]) > 0


def test_notify_without_socket_is_a_no_op() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    assert not notifier.notify("READY=1")


def test_notify_to_a_vanished_socket_fails_quietly(tmp_path: Path) -> None:
    assert not Notifier(str(tmp_path / "gone")).notify("WATCHDOG=1")


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": pid}) == 2.0


def test_watchdog_off_when_unset_invalid_or_for_another_process() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    other = str(os.getpid() + 1)
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": other}) is None


def test_watchdog_pings_until_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "notify"

    async def three_pings(sock: socket.socket) -> list[bytes]:
        task = asyncio.create_task(run_watchdog(Notifier(str(path)), 0.01))
        pings: list[bytes] = []
        try:
            async with asyncio.timeout(10):
                while len(pings) < 3:
                    try:
                        pings.append(sock.recv(64))
                    except BlockingIOError:
                        await asyncio.sleep(0.005)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return pings

    with _receiver(str(path)) as sock:
        sock.setblocking(False)
        pings = asyncio.run(three_pings(sock))
    assert len(pings) == 3
    assert set(pings) == {b"WATCHDOG=1"}

"""Fixtures for tests with real clients in network namespaces.

A test that lacks root or a Debian tool asks ``tests.ci``: skipped with the reason outside CI,
a failure under CI=true (the test command has installed every tool).
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ddi.lab import Lab
from tests.ci import require_root, require_tools

_counter = itertools.count()


def require(*tools: str) -> None:
    """Skip (or, under CI, fail) unless running as root with every tool on PATH."""
    require_root("needs root for network namespaces")
    require_tools("ip", *tools)


@pytest.fixture
def lab() -> Iterator[Lab]:
    require()
    with Lab(f"t{os.getpid() % 100000}x{next(_counter)}") as the_lab:
        yield the_lab


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def api_get(sock_path: Path, path: str, timeout: float = 5.0) -> tuple[int, Any]:
    conn = _UnixHTTPConnection(sock_path, timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        ctype = resp.getheader("Content-Type", "")
        return resp.status, json.loads(body) if "json" in ctype else body.decode()
    finally:
        conn.close()


@dataclass
class DaemonHandle:
    """A ``ddi serve`` process inside a namespace (or the root namespace when ns is None)."""

    lab: Lab
    ns: str | None
    workdir: Path
    config_path: Path
    socket: Path
    proc: subprocess.Popen[str] | None = None
    _log: Any = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / "daemon.log"

    def start(self, timeout: float = 20.0) -> None:
        argv = [sys.executable, "-m", "ddi", "serve", "--config", str(self.config_path)]
        self._log = self.log_path.open("a")
        if self.ns is None:
            self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                         text=True, start_new_session=True)  # fmt: skip
        else:
            self.proc = self.lab.popen(self.ns, *argv, stdout=self._log,
                                       stderr=subprocess.STDOUT)  # fmt: skip
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"ddi serve exited with {self.proc.returncode}:\n{self.log_path.read_text()}"
                )
            try:
                status, _ = api_get(self.socket, "/healthz", timeout=1.0)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"ddi serve not healthy in {timeout}s:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        code = self.proc.returncode
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "ddi", "--socket", str(self.socket), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=check)

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def api(self, path: str) -> Any:
        status, body = api_get(self.socket, path)
        assert status == 200, (status, body)
        return body


def site_header(workdir: Path, *, site_id: str = "lab1", domain: str = "site1.example") -> str:
    return (
        f'[site]\nid = "{site_id}"\ndomain = "{domain}"\ndata_dir = "{workdir / "var"}"\n\n'
        f'[api]\nsocket = "{workdir / "ddi.sock"}"\n\n'
    )


@pytest.fixture
def ddi_daemon(lab: Lab, tmp_path: Path) -> Iterator[Callable[[str | None, str], DaemonHandle]]:
    """``ddi_daemon(ns, body)`` starts ``ddi serve`` in namespace ``ns`` with a config made of
    a [site]/[api] header (unless ``body`` has its own [site]) and ``body``."""
    handles: list[DaemonHandle] = []

    def start(ns: str | None, body: str) -> DaemonHandle:
        workdir = tmp_path / f"ddi{len(handles)}"
        workdir.mkdir()
        text = body if "[site]" in body else site_header(workdir) + body
        config_path = workdir / "ddi.toml"
        config_path.write_text(text)
        handle = DaemonHandle(lab=lab, ns=ns, workdir=workdir, config_path=config_path,
                              socket=workdir / "ddi.sock")  # fmt: skip
        handles.append(handle)
        handle.start()
        return handle

    yield start
    errors = []
    for handle in handles:
        if handle.proc is not None and handle.proc.poll() is None:
            errors += internal_errors(handle)
        handle.stop()
    assert not errors, f"the daemon hit internal errors (bugs): {errors}; see its log"


def internal_errors(handle: DaemonHandle) -> list[str]:
    """Non-zero ``ddi_internal_errors_total`` samples: every one is a bug, and fails the test."""
    try:
        status, text = api_get(handle.socket, "/metrics")
    except OSError:
        return []
    if status != 200 or not isinstance(text, str):
        return []
    return [
        line
        for line in text.splitlines()
        if line.startswith("ddi_internal_errors_total") and float(line.rsplit(" ", 1)[1]) > 0
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)

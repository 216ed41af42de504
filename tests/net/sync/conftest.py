"""Fixtures for the sync tests: a throwaway PostgreSQL cluster, central store URLs for both
backends, keys, and a factory for edge/central processes.

PostgreSQL comes from Debian (``/usr/lib/postgresql/15/bin``); the cluster lives in a temporary
folder on a free loopback port and is removed after the session. Without it the PostgreSQL
half of the suite is skipped with the reason printed, except under CI=true, where that fails
(``tests.ci``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci import skip_or_fail

PG_BIN = Path(os.environ.get("DDI_PG_BIN", "/usr/lib/postgresql/15/bin"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sync_settings(**kw): [sync] settings for the edge of the `pair` fixture"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable(reason: str) -> None:
    print(f"PostgreSQL unavailable: {reason}")
    skip_or_fail(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A running PostgreSQL cluster; yields its base URL (without database name)."""
    if not (PG_BIN / "initdb").exists():
        _unavailable(f"{PG_BIN}/initdb not found")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no postgres user")
        prefix = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="ddi-pg-"))
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data = folder / "data"
    port = free_port()
    started = False
    try:
        subprocess.run(
            [*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=50"
        subprocess.run(
            [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"),
             "-o", options, "-w", "-t", "60", "start"],
            check=True, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}"
    except subprocess.CalledProcessError as exc:
        _unavailable(f"could not start PostgreSQL: {exc.stderr.strip()[-300:]}")
    finally:
        if started:
            subprocess.run(
                [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                 "stop"],
                capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def _create_database(base: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    port = base.rsplit(":", 1)[1]
    subprocess.run(
        [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-q",
         "-c", f"CREATE DATABASE {name}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def central_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh central store URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/central.sqlite"
    base = request.getfixturevalue("pg_server")
    return _create_database(base)


@pytest.fixture
def fresh_pg_database(pg_server: str) -> str:
    return _create_database(pg_server)

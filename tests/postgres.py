"""A throwaway PostgreSQL cluster for the tests that need one (central's store, the Nautobot
lab): Debian's binaries (``/usr/lib/postgresql/15/bin``), a temporary folder, a free loopback
port, removed on exit.

As root the cluster runs as the ``postgres`` user (initdb refuses root).
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path(os.environ.get("DDI_PG_BIN", "/usr/lib/postgresql/15/bin"))


class Unavailable(Exception):
    """PostgreSQL cannot be started here (the message says why)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True, kw_only=True)
class Cluster:
    url: str
    """``postgresql://postgres@127.0.0.1:PORT`` (no database name)."""
    port: int
    folder: Path

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.psql(f"CREATE DATABASE {name}")
        return f"{self.url}/{name}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", database, "-q", "-At", "-c", sql],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return done.stdout


@contextmanager
def cluster(
    prefix: str = "ddi-pg-", max_connections: int = 50, settings: str = ""
) -> Iterator[Cluster]:
    """A running cluster until the block ends; ``settings`` adds ``-c name=value`` options.

    Raises:
        Unavailable: no initdb, no postgres user as root, or the cluster did not start.
    """
    if not (PG_BIN / "initdb").exists():
        raise Unavailable(f"{PG_BIN}/initdb not found")
    run_as: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no postgres user") from None
        run_as = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data = folder / "data"
    port = free_port()
    started = False
    try:
        try:
            subprocess.run(
                [*run_as, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U",
                 "postgres", "-E", "UTF8", "--no-sync"],
                check=True, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            options = (
                f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
                f" -c max_connections={max_connections} {settings}"
            )
            subprocess.run(
                [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"),
                 "-o", options, "-w", "-t", "60", "start"],
                check=True, capture_output=True, text=True, timeout=90,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise Unavailable(f"could not start PostgreSQL: {exc.stderr.strip()[-300:]}") from None
        started = True
        yield Cluster(url=f"postgresql://postgres@127.0.0.1:{port}", port=port, folder=folder)
    finally:
        if started:
            subprocess.run(
                [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                 "stop"],
                capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)

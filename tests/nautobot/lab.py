"""A real Nautobot on loopback for tests and benchmarks: PostgreSQL (``tests.postgres``), Redis,
and ``nautobot-server`` from its own virtual environment (``make nautobot``: its Django pins
are not ours), all in one temporary folder, all stopped and removed on exit.

Migrating an empty database is the slow part (about 4.5 minutes here). So the migrated
database of the pinned version is in the repository (``schema/nautobot-VERSION-pyXY.sql.gz``)
and a lab restores it in about 2 s. After the pin in the Makefile changes there is none for the
new version: the first lab migrates and caches the dump in ``.nautobot/cache/`` (ignored by
git); ``gzip -9n`` that file into ``schema/`` and commit it.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests import postgres
from tests.postgres import PG_BIN, free_port

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("DDI_NAUTOBOT_VENV", ROOT / ".nautobot" / "venv"))
CACHE = ROOT / ".nautobot" / "cache"
SCHEMA = Path(__file__).resolve().parent / "schema"
"""Nautobot's empty database as its own ``migrate`` left it, one gzip'd ``pg_dump`` per pinned
version: restored in seconds where migrating takes minutes (module docstring)."""
SERVER = VENV / "bin" / "nautobot-server"
TOKEN = "0123456789abcdef0123456789abcdef01234567"
"""The API token the lab gives its superuser (40 hex digits, as Nautobot makes them)."""
STARTUP_DEADLINE = 180.0
MIGRATE_DEADLINE = 1500.0


class Unavailable(Exception):
    """The lab cannot run here (the message says what is missing)."""


@dataclass(slots=True, kw_only=True)
class Timings:
    """Seconds each step of the lab's start took."""

    steps: dict[str, float] = field(default_factory=dict)

    def total(self) -> float:
        return sum(self.steps.values())


@dataclass(slots=True, kw_only=True)
class NautobotLab:
    """A running Nautobot: its URL (no trailing slash), a superuser token, and handles to
    stop and start its web server (to test central while Nautobot is down)."""

    url: str
    token: str
    version: str
    folder: Path
    port: int
    env: dict[str, str]
    timings: Timings
    server: subprocess.Popen[bytes] | None = None

    def api(self, method: str, path: str, body: object = None) -> object:
        """One REST call (``path`` like ``/api/ipam/prefixes/?limit=0``); the decoded JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Token {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            text = answer.read()
        return json.loads(text) if text else None

    def all(self, path: str) -> list[dict[str, object]]:
        """Every object of a list endpoint, following ``next`` pages."""
        found: list[dict[str, object]] = []
        page = self.api("GET", f"{path}{'&' if '?' in path else '?'}limit=1000&depth=1")
        while True:
            assert isinstance(page, dict)
            found.extend(page["results"])
            nxt = page.get("next")
            if not nxt:
                return found
            page = self.api("GET", str(nxt).removeprefix(self.url))

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=30)
            self.server = None

    def start_server(self) -> None:
        """Start the web server and wait for ``/api/status/`` to answer."""
        assert self.server is None
        log = (self.folder / "server.log").open("ab")
        self.server = subprocess.Popen(
            [str(SERVER), "--config", str(self.folder / "nautobot_config.py"), "runserver",
             "--noreload", f"127.0.0.1:{self.port}"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + STARTUP_DEADLINE
        while True:
            try:
                status = self.api("GET", "/api/status/")
                if isinstance(status, dict) and "nautobot-version" in status:
                    return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if self.server.poll() is not None:
                tail = (self.folder / "server.log").read_text(errors="replace")[-1500:]
                raise Unavailable(f"nautobot-server exited: {tail}")
            if time.monotonic() > deadline:
                raise Unavailable(f"Nautobot did not answer within {STARTUP_DEADLINE}s")
            time.sleep(0.2)


def version() -> str:
    """The Nautobot version in the lab's virtual environment."""
    python = VENV / "bin" / "python"
    if not python.exists():
        raise Unavailable(f"{python} not found: run `make nautobot`")
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('nautobot'))"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise Unavailable(f"nautobot is not installed in {VENV}: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


_CONFIG = """\
from nautobot.core.settings import *  # noqa: F403
from nautobot.core.settings_funcs import parse_redis_connection

SECRET_KEY = "ddi-test-lab-{secret}"
ALLOWED_HOSTS = ["*"]
DEBUG = False
DATABASES = {{
    "default": {{
        "NAME": "nautobot",
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": "127.0.0.1",
        "PORT": "{pg_port}",
        "ENGINE": "django.db.backends.postgresql",
        "CONN_MAX_AGE": 300,
    }}
}}
CACHES = {{
    "default": {{
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:{redis_port}/0",
        "TIMEOUT": 300,
        "OPTIONS": {{"CLIENT_CLASS": "django_redis.client.DefaultClient"}},
    }}
}}
CELERY_BROKER_URL = "redis://127.0.0.1:{redis_port}/1"
CELERY_RESULT_BACKEND = "redis://127.0.0.1:{redis_port}/2"
MEDIA_ROOT = "{folder}/media"
STATIC_ROOT = "{folder}/static"
GIT_ROOT = "{folder}/git"
JOBS_ROOT = "{folder}/jobs"
INSTALLATION_METRICS_ENABLED = False
MAX_PAGE_SIZE = 10000
"""


def _run(lab_env: dict[str, str], args: list[str], deadline: float, what: str) -> None:
    try:
        subprocess.run(args, env=lab_env, check=True, capture_output=True, text=True,
                       timeout=deadline)  # fmt: skip
    except subprocess.CalledProcessError as exc:
        raise Unavailable(f"{what} failed: {(exc.stderr or exc.stdout).strip()[-1500:]}") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{what} took more than {deadline}s") from None


def _redis(stack: ExitStack, folder: Path) -> int:
    binary = shutil.which("redis-server")
    if binary is None:
        raise Unavailable("redis-server is not installed (Debian redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--logfile", str(folder / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def stop() -> None:
        process.terminate()
        process.wait(timeout=30)

    stack.callback(stop)
    return port


def _database(pg: postgres.Cluster, lab_env: dict[str, str], config: Path, ver: str) -> str:
    """Create the ``nautobot`` database from the migrated schema in the repository (or the
    local cache), else migrate it (and cache it). Returns which it did."""
    pg.psql("CREATE DATABASE nautobot")
    name = f"nautobot-{ver}-py{sys.version_info.major}{sys.version_info.minor}.sql"
    dump = CACHE / name
    for source in (SCHEMA / f"{name}.gz", dump):
        if source.exists():
            sql = gzip.decompress(source.read_bytes()) if source.suffix == ".gz" else None
            subprocess.run(
                [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres",
                 "-d", "nautobot", "-q", "-v", "ON_ERROR_STOP=1",
                 "-f", "-" if sql is not None else str(source)],
                input=sql, check=True, capture_output=True, timeout=600,
            )  # fmt: skip
            return "restored"
    _run(lab_env, [str(SERVER), "--config", str(config), "migrate", "--no-input"],
         MIGRATE_DEADLINE, "nautobot-server migrate")  # fmt: skip
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = dump.with_suffix(".partial")
    with partial.open("wb") as out:
        subprocess.run(
            [str(PG_BIN / "pg_dump"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres",
             "--no-owner", "nautobot"],
            check=True, stdout=out, timeout=600,
        )  # fmt: skip
    partial.rename(dump)
    return "migrated"


_USER = """\
from nautobot.users.models import Token, User
user, _ = User.objects.get_or_create(username="admin", defaults={{"is_superuser": True,
    "is_staff": True}})
user.is_superuser = True
user.is_staff = True
user.set_password("admin")
user.save()
Token.objects.get_or_create(user=user, key="{token}")
"""


@contextmanager
def nautobot_lab() -> Iterator[NautobotLab]:
    """A running Nautobot until the block ends.

    Raises:
        Unavailable: no Nautobot venv, no Redis, no PostgreSQL, or Nautobot did not start.
    """
    ver = version()
    timings = Timings()
    with ExitStack() as stack:
        started = time.monotonic()
        try:
            pg = stack.enter_context(
                postgres.cluster(prefix="ddi-nautobot-pg-", settings="-c fsync=off")
            )
        except postgres.Unavailable as exc:
            raise Unavailable(str(exc)) from None
        folder = Path(tempfile.mkdtemp(prefix="ddi-nautobot-"))
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        redis_port = _redis(stack, folder)
        timings.steps["postgresql+redis"] = time.monotonic() - started
        config = folder / "nautobot_config.py"
        config.write_text(
            _CONFIG.format(
                secret=os.urandom(16).hex(), pg_port=pg.port, redis_port=redis_port, folder=folder
            )
        )
        lab_env = {
            "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(folder),
            "NAUTOBOT_ROOT": str(folder),
            "NAUTOBOT_CONFIG": str(config),
            "LANG": "C.UTF-8",
        }
        step = time.monotonic()
        how = _database(pg, lab_env, config, ver)
        timings.steps[f"database ({how})"] = time.monotonic() - step
        step = time.monotonic()
        _run(lab_env, [str(SERVER), "--config", str(config), "shell", "--command",
                       _USER.format(token=TOKEN)], 300, "creating the API user")  # fmt: skip
        timings.steps["superuser+token"] = time.monotonic() - step
        port = free_port()
        lab = NautobotLab(
            url=f"http://127.0.0.1:{port}",
            token=TOKEN,
            version=ver,
            folder=folder,
            port=port,
            env=lab_env,
            timings=timings,
        )
        step = time.monotonic()
        stack.callback(lab.stop_server)
        lab.start_server()
        timings.steps["web server"] = time.monotonic() - step
        yield lab

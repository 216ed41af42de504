"""Fixtures for the sync tests: a throwaway PostgreSQL cluster, central store URLs for both
backends, keys, and a factory for edge/central processes.

PostgreSQL comes from Debian (``/usr/lib/postgresql/15/bin``); the cluster lives in a temporary
folder on a free loopback port and is removed after the session. Without it the PostgreSQL
half of the suite is skipped with the reason printed, except under CI=true, where that fails
(``tests.ci``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import postgres
from tests.ci import skip_or_fail


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sync_settings(**kw): [sync] settings for the edge of the `pair` fixture"
    )


def _unavailable(reason: str) -> None:
    print(f"PostgreSQL unavailable: {reason}")
    skip_or_fail(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[postgres.Cluster]:
    """A running PostgreSQL cluster (``tests.postgres``)."""
    try:
        with postgres.cluster() as running:
            yield running
    except postgres.Unavailable as exc:
        _unavailable(str(exc))


@pytest.fixture(scope="session")
def pg_server(pg_cluster: postgres.Cluster) -> str:
    """The running cluster's base URL (without database name)."""
    return pg_cluster.url


@pytest.fixture(params=["sqlite", "postgresql"])
def central_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh central store URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/central.sqlite"
    cluster: postgres.Cluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database()


@pytest.fixture
def fresh_pg_database(pg_cluster: postgres.Cluster) -> str:
    return pg_cluster.create_database()

"""``ddi`` against a ``ddi serve`` process whose data dir is a small tmpfs the test fills: a
refused write is named as such (not "internal error"), and ``ddi status`` shows it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.diskfull import fill, small_filesystem
from tests.net.cli.test_cli import Daemon, add


@pytest.fixture
def daemon_on_small_fs(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "ddi")
    with small_filesystem(d.workdir / "data"):
        d.start()
        try:
            yield d
        finally:
            if d.proc is not None:
                d.stop()


def test_a_full_disk_is_reported_as_such_and_writes_resume(daemon_on_small_fs: Daemon) -> None:
    d = daemon_on_small_fs
    assert add(d, 10).returncode == 0
    filler = fill(d.workdir / "data")
    result = add(d, 11)
    assert result.returncode == 1
    assert result.stderr.strip() == "not written: store write failed: disk full"
    status = d.cli("status")
    assert status.returncode == 0, status.stderr
    lines = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in status.stdout.splitlines())
    )
    assert lines["write failures"] == "1"
    assert lines["last write error"].startswith("store write failed: disk full at ")
    assert "(LOW" in lines["free space"]
    metrics = d.get("/metrics")[2].decode()
    assert 'ddi_internal_errors_total{area="api"}' not in metrics or all(
        float(line.rsplit(" ", 1)[1]) == 0
        for line in metrics.splitlines()
        if line.startswith("ddi_internal_errors_total")
    )
    filler.unlink()
    assert add(d, 11).returncode == 0
    assert d.stop() == 0
    assert "Traceback" not in d.log.read_text()

"""A small filesystem to fill: a tmpfs mounted for one test (root and ``mount`` needed, through
``tests.ci``), and a filler file that takes every free byte until it is removed."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.ci import require_root, require_tools


@contextlib.contextmanager
def small_filesystem(where: Path, *, size: str = "4m") -> Iterator[Path]:
    """A fresh tmpfs of ``size`` mounted on ``where`` (created), unmounted on the way out."""
    require_root("needs root to mount a small filesystem")
    require_tools("mount", "umount")
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "ddi-test", str(where)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True, capture_output=True, timeout=30)


def fill(directory: Path) -> Path:
    """Write a file in ``directory`` until the filesystem refuses (ENOSPC); returns its path.
    Removing it gives the space back."""
    filler = directory / "filler"
    chunk = b"\0" * 4096
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(fd)
    return filler

"""The boot root on disk: which requested names may be served, and reading them.

``safe_path`` is the one place a client-supplied name becomes a file. Names are relative to the
root whether or not they start with "/" (GRUB asks for ``/grub/grub.cfg``), as tftp-hpa ``-s``,
dnsmasq and atftpd take them. ``..`` components are refused outright; then the path is resolved
(following symlinks) and anything that ends up outside the resolved root, or is not a regular
file, is refused. Symlinks that stay inside the root are served. A protocol outcome, not an
exception: the caller answers with a TFTP error packet or an HTTP status and counts the reason.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path, PurePosixPath


class PathRefusal(enum.StrEnum):
    """Why a name is not served (a bounded metric label)."""

    TRAVERSAL = "traversal"
    ESCAPE = "symlink_escape"
    NOT_FOUND = "not_found"
    NOT_A_FILE = "not_a_file"


def safe_path(root: Path, name: str) -> Path | PathRefusal:
    """The resolved file under ``root`` that ``name`` designates, or why it is refused."""
    if "\0" in name:
        return PathRefusal.TRAVERSAL
    pure = PurePosixPath(name.lstrip("/"))
    if ".." in pure.parts:
        return PathRefusal.TRAVERSAL
    base = root.resolve()
    try:
        resolved = (base / pure).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, unreadable directory, symlink loop
        return PathRefusal.NOT_FOUND
    if not resolved.is_relative_to(base):
        return PathRefusal.ESCAPE
    if not resolved.is_file():
        return PathRefusal.NOT_A_FILE
    return resolved


class FileSource:
    """An open boot file read by offset (``BlockSource`` of the TFTP transfer)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.size = os.fstat(self._fd).st_size

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self._fd, size, offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

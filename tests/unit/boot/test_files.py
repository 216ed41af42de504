"""safe_path: what a requested name may resolve to under the boot root."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddi.boot.files import FileSource, PathRefusal, safe_path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "efi").mkdir(parents=True)
    (r / "efi" / "ipxe.efi").write_bytes(b"efi")
    (tmp_path / "outside").write_text("secret")
    (r / "out-link").symlink_to(tmp_path / "outside")
    (r / "dir-link").symlink_to(tmp_path)
    (r / "in-link").symlink_to(r / "efi" / "ipxe.efi")
    (r / "loop").symlink_to(r / "loop")
    return r


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("/etc/passwd", PathRefusal.NOT_FOUND),
        ("../outside", PathRefusal.TRAVERSAL),
        ("/../outside", PathRefusal.TRAVERSAL),
        ("//efi/../../outside", PathRefusal.TRAVERSAL),
        ("/out-link", PathRefusal.ESCAPE),
        ("/dir-link/outside", PathRefusal.ESCAPE),
        ("efi/../../outside", PathRefusal.TRAVERSAL),
        ("efi/..", PathRefusal.TRAVERSAL),
        ("out-link", PathRefusal.ESCAPE),
        ("dir-link/outside", PathRefusal.ESCAPE),
        ("missing", PathRefusal.NOT_FOUND),
        ("loop", PathRefusal.NOT_FOUND),
        ("efi", PathRefusal.NOT_A_FILE),
        ("a\0b", PathRefusal.TRAVERSAL),
    ],
)
def test_refused_names(root: Path, name: str, outcome: PathRefusal) -> None:
    assert safe_path(root, name) is outcome


@pytest.mark.parametrize(
    "name",
    ["efi/ipxe.efi", "./efi/ipxe.efi", "efi//ipxe.efi", "in-link", "/efi/ipxe.efi", "//in-link"],
)
def test_served_names_resolve_inside_the_root(root: Path, name: str) -> None:
    """Names are relative to the root with or without a leading "/" (GRUB sends one)."""
    assert safe_path(root, name) == (root / "efi" / "ipxe.efi").resolve()


def test_file_source_reads_by_offset(root: Path) -> None:
    source = FileSource(root / "efi" / "ipxe.efi")
    try:
        assert source.size == 3
        assert source.read(1, 10) == b"fi"
    finally:
        source.close()
    source.close()

"""Packets captured from real DHCP and PXE clients (tests/vectors/README.md says which), kept in
the repository so that the tests read nothing from outside it."""

from __future__ import annotations

from pathlib import Path

VECTORS = Path(__file__).resolve().parent / "vectors"

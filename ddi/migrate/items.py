"""The values every import parser returns: reservations, leases and records as found in a file,
each with where it was found, and what was skipped or refused there."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HostItem",
    "Include",
    "LeaseItem",
    "Parsed",
    "Problem",
    "RecordItem",
    "item_from_wire",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostItem:
    """A reservation as another server wrote it; fields as text, checked by the store."""

    source: str
    """``file:line`` (or ``file: json.path``)."""
    ip: str
    hostname: str
    mac: str | None = None
    client_id: str | None = None
    lease_time: int | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "ip": self.ip, "hostname": self.hostname}
        for name in ("mac", "client_id", "lease_time"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseItem:
    """A lease as another server recorded it: the client keeps ``ip`` until ``end``."""

    source: str
    ip: str
    mac: str | None
    start: float
    end: float
    client_id: str | None = None
    hostname: str | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "ip": self.ip,
            "mac": self.mac,
            "start": self.start,
            "end": self.end,
        }
        for name in ("client_id", "hostname"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordItem:
    """A static DNS record. ``name`` ending in a dot is absolute; without one it is relative to
    the site domain (``@`` is the domain itself)."""

    source: str
    name: str
    rtype: str
    value: str
    ttl: int | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "name": self.name,
            "rtype": self.rtype,
            "value": self.value,
        }
        if self.ttl is not None:
            out["ttl"] = self.ttl
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """Something at ``source`` that is refused (malformed) or skipped (not carried), and why."""

    source: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Include:
    """Another file a parsed file names (dnsmasq's conf-file, conf-dir, dhcp-hostsfile,
    addn-hosts): the reader reads it and parses it as ``form``."""

    source: str
    path: str
    form: str
    """``conf``, ``hostsfile``, ``hosts`` or ``dir``."""
    suffixes: tuple[str, ...] = ()
    """For ``dir``: only files ending so (``*.conf``); empty means every file."""
    excluded: tuple[str, ...] = ()
    """For ``dir``: files ending so are left out (``.bak``)."""


@dataclass(slots=True, kw_only=True)
class Parsed:
    """What one or more files gave. Built up by a parser, then read."""

    hosts: list[HostItem] = field(default_factory=list)
    leases: list[LeaseItem] = field(default_factory=list)
    records: list[RecordItem] = field(default_factory=list)
    refused: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)

    def extend(self, other: Parsed) -> None:
        self.hosts += other.hosts
        self.leases += other.leases
        self.records += other.records
        self.refused += other.refused
        self.skipped += other.skipped
        self.includes += other.includes

    def count(self) -> int:
        return len(self.hosts) + len(self.leases) + len(self.records)

    def to_wire(self) -> dict[str, Any]:
        """The bulk request's objects (``POST /v1/import``)."""
        return {
            "hosts": [h.to_wire() for h in self.hosts],
            "leases": [lease.to_wire() for lease in self.leases],
            "records": [r.to_wire() for r in self.records],
        }


def item_from_wire(kind: str, image: Mapping[str, Any]) -> HostItem | LeaseItem | RecordItem:
    """An item from its wire form; the API checks types before calling (``ddi.api.bulk``)."""
    if kind == "hosts":
        return HostItem(**image)
    if kind == "leases":
        return LeaseItem(**image)
    return RecordItem(**image)

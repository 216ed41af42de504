"""How the model values map onto the site database's rows: the column lists, the statements
that take those rows, the compact JSON of change images, and conversion both ways.

Rules:
* Pure: no database driver, no I/O. The store runs the statements; this module only says what
  a row of each table holds, in the order the column lists name.
* A ``*_row`` function and its ``*_from_row`` are inverses for the columns they cover.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from ddi.ipam.models import (
    Change,
    Host,
    HostDhcpOptions,
    Kind,
    Lease,
    LeaseImage,
    LeaseState,
    Op,
    Owner,
    Record,
)

__all__ = [
    "CHANGE_COLUMNS",
    "CHANGE_INSERT",
    "HOST_COLUMNS",
    "HOST_INSERT",
    "HOST_UPDATE",
    "LEASE_COLUMNS",
    "LEASE_UPSERT",
    "RECORD_COLUMNS",
    "Shared",
    "batch_texts",
    "change_from_row",
    "encode_json",
    "host_from_row",
    "host_row",
    "image_texts",
    "lease_from_row",
    "lease_row",
    "record_from_row",
    "record_row",
    "rows_sql",
]

HOST_COLUMNS = (
    "id, ip, hostname, mac, client_id, circuit_id, boot, boot_file, boot_script, owner, version,"
    " dhcp, ip6, duid"
)
HOST_INSERT = f"INSERT INTO host ({HOST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
HOST_UPDATE = (
    "UPDATE host SET ip = ?, hostname = ?, mac = ?, client_id = ?, circuit_id = ?, boot = ?,"
    " boot_file = ?, boot_script = ?, owner = ?, version = ?, dhcp = ?, ip6 = ?, duid = ?"
    " WHERE id = ?"
)
"""Parameters: ``host_row(host)`` for the insert, ``(*host_row(host)[1:], host.id)`` for
the update."""
LEASE_COLUMNS = 'ip, mac, client_id, circuit_id, hostname, state, start, "end", subnet'
RECORD_COLUMNS = "id, name, rtype, value, ttl, owner, version"
CHANGE_COLUMNS = "seq, epoch, kind, object_id, op, image, actor, reason, time"

LEASE_UPSERT = (
    f"INSERT INTO lease ({LEASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id, "
    "circuit_id = excluded.circuit_id, hostname = excluded.hostname, state = excluded.state, "
    'start = excluded.start, "end" = excluded."end", subnet = excluded.subnet'
)
CHANGE_INSERT = f"INSERT INTO change ({CHANGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
encode_json = json.JSONEncoder(separators=(",", ":")).encode
"""Compact JSON for change images; one encoder, not one per ``json.dumps`` call."""


@functools.lru_cache(maxsize=64)
def rows_sql(statement: str, columns: int, rows: int) -> str:
    """``statement`` (an ``INSERT … VALUES`` with one row of ``columns`` placeholders) for
    ``rows`` rows: one statement, one SQLite step for the lot."""
    one = "(" + ", ".join("?" * columns) + ")"
    head, _, tail = statement.partition("VALUES " + one)
    return head + "VALUES " + ", ".join([one] * rows) + tail


def image_texts(images: Sequence[LeaseImage]) -> list[str]:
    """Each lease image's compact JSON text (:func:`batch_texts`; first key "ip")."""
    return batch_texts(images, "ip")


def batch_texts(images: Sequence[Mapping[str, Any]], first_key: str) -> list[str]:
    """Each image's compact JSON text, from ONE encoder call for the whole batch.

    Every image's first key is ``first_key``, and a quote inside a JSON string is always
    escaped, so ``},{"FIRST_KEY":`` occurs in the batch's text exactly between two images.
    """
    opening = f'{{"{first_key}":'
    parts = encode_json(images)[1:-1].split("}," + opening)
    if len(parts) != len(images):  # not such images after all: one call each
        return [encode_json(image) for image in images]
    last = len(parts) - 1
    return [
        ("" if i == 0 else opening) + part + ("" if i == last else "}")
        for i, part in enumerate(parts)
    ]


def parse_address(text: str) -> IPv4Address:
    """A stored address (the dotted quad ``str(ip)`` wrote) as an IPv4Address, converted
    without ``ipaddress``'s per-octet parser (the start-up load reads one per row). Text that
    is not exactly a canonical dotted quad takes that parser, which names what is wrong."""
    try:
        a, b, c, d = map(int, text.split("."))
    except ValueError:
        return IPv4Address(text)
    in_range = 0 <= a <= 255 and 0 <= b <= 255 and 0 <= c <= 255 and 0 <= d <= 255
    # It must read back as itself: no leading zeros, signs, spaces or other digits.
    if in_range and f"{a}.{b}.{c}.{d}" == text:
        return IPv4Address(a << 24 | b << 16 | c << 8 | d)
    return IPv4Address(text)


_STATES = {state.value: state for state in LeaseState}
_OWNERS = {owner.value: owner for owner in Owner}


def _state(value: str) -> LeaseState:
    found = _STATES.get(value)
    return LeaseState(value) if found is None else found


def _owner(value: str) -> Owner:
    found = _OWNERS.get(value)
    return Owner(value) if found is None else found


_HOST_SHARED = (2, 3, 4)
"""Host columns whose values repeat in other rows: hostname, mac, client_id."""
_LEASE_SHARED = (1, 2, 4, 8)
"""Lease columns whose values repeat in other rows: mac, client_id, hostname, subnet."""


@dataclasses.dataclass(slots=True)
class Shared:
    """One copy of each value repeated among the rows loaded together: reservations and their
    clients' leases repeat MACs, client-ids, hostnames, subnet names and addresses."""

    texts: dict[str, str] = dataclasses.field(default_factory=dict)
    addresses: dict[str, IPv4Address] = dataclasses.field(default_factory=dict)

    def row(self, row: Sequence[Any], columns: tuple[int, ...]) -> list[Any]:
        out = list(row)
        texts = self.texts
        for i in columns:
            if out[i] is not None:
                out[i] = texts.setdefault(out[i], out[i])
        return out

    def address(self, text: str, *, keep: bool) -> IPv4Address:
        found = self.addresses.get(text)
        if found is None:
            found = parse_address(text)
            if keep:
                self.addresses[text] = found
        return found


def host_from_row(row: Sequence[Any], shared: Shared | None = None) -> Host:
    ip: IPv4Address | None = None
    if row[1] is not None:
        ip = parse_address(row[1]) if shared is None else shared.address(row[1], keep=True)
    if shared is not None:
        row = shared.row(row, _HOST_SHARED)
    return Host(
        id=row[0],
        ip=ip,
        hostname=row[2],
        mac=row[3],
        client_id=row[4],
        circuit_id=row[5],
        boot=row[6],
        boot_file=row[7],
        boot_script=row[8],
        owner=_owner(row[9]),
        version=row[10],
        dhcp=None if row[11] is None else HostDhcpOptions.from_image(json.loads(row[11])),
        ip6=None if row[12] is None else IPv6Address(row[12]),
        duid=row[13],
    )


def host_row(host: Host) -> tuple[Any, ...]:
    return (
        host.id,
        None if host.ip is None else str(host.ip),
        host.hostname,
        host.mac,
        host.client_id,
        host.circuit_id,
        host.boot,
        host.boot_file,
        host.boot_script,
        host.owner.value,
        host.version,
        None if host.dhcp is None else json.dumps(host.dhcp.to_image()),
        None if host.ip6 is None else str(host.ip6),
        host.duid,
    )


def lease_from_row(row: Sequence[Any], shared: Shared | None = None) -> Lease:
    ip = parse_address(row[0]) if shared is None else shared.address(row[0], keep=False)
    if shared is not None:
        row = shared.row(row, _LEASE_SHARED)
    return Lease(
        ip=ip,
        mac=row[1],
        client_id=row[2],
        circuit_id=row[3],
        hostname=row[4],
        state=_state(row[5]),
        start=row[6],
        end=row[7],
        subnet=row[8],
    )


def lease_row(lease: Lease) -> tuple[Any, ...]:
    return (
        str(lease.ip),
        lease.mac,
        lease.client_id,
        lease.circuit_id,
        lease.hostname,
        lease.state.value,
        lease.start,
        lease.end,
        lease.subnet,
    )


def record_from_row(row: Sequence[Any]) -> Record:
    return Record(
        id=row[0],
        name=row[1],
        rtype=row[2],
        value=row[3],
        ttl=row[4],
        owner=_owner(row[5]),
        version=row[6],
    )


def record_row(record: Record) -> tuple[Any, ...]:
    return (
        record.id,
        record.name,
        record.rtype,
        record.value,
        record.ttl,
        record.owner.value,
        record.version,
    )


def change_from_row(row: Sequence[Any]) -> Change:
    return Change(
        seq=row[0],
        epoch=row[1],
        kind=Kind(row[2]),
        object_id=row[3],
        op=Op(row[4]),
        image=json.loads(row[5]),
        actor=row[6],
        reason=row[7],
        time=row[8],
    )

"""How the IPv6 values map onto rows of the ``lease6`` and ``subnet6`` tables (pure; the
counterpart of :mod:`ddi.ipam.rows`)."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv6Network
from typing import Any

from ddi.ipam.models import LeaseState
from ddi.ipam.models6 import Lease6, Lease6Kind

__all__ = ["LEASE6_COLUMNS", "LEASE6_UPSERT", "lease6_from_row", "lease6_row"]

LEASE6_COLUMNS = (
    'kind, prefix, duid, iaid, mac, hostname, state, start, "end", preferred_end, subnet'
)
LEASE6_UPSERT = (
    f"INSERT INTO lease6 ({LEASE6_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (kind, prefix) DO UPDATE SET duid = excluded.duid, iaid = excluded.iaid, "
    "mac = excluded.mac, hostname = excluded.hostname, state = excluded.state, "
    'start = excluded.start, "end" = excluded."end", preferred_end = excluded.preferred_end, '
    "subnet = excluded.subnet"
)


def lease6_row(lease: Lease6) -> tuple[Any, ...]:
    return (
        lease.kind.value,
        str(lease.prefix),
        lease.duid,
        lease.iaid,
        lease.mac,
        lease.hostname,
        lease.state.value,
        lease.start,
        lease.end,
        lease.preferred_end,
        lease.subnet,
    )


def lease6_from_row(row: Sequence[Any]) -> Lease6:
    return Lease6(
        kind=Lease6Kind(row[0]),
        prefix=IPv6Network(row[1]),
        duid=row[2],
        iaid=row[3],
        mac=row[4],
        hostname=row[5],
        state=LeaseState(row[6]),
        start=row[7],
        end=row[8],
        preferred_end=row[9],
        subnet=row[10],
    )

"""How the IPv6 values map onto rows of the ``lease6`` and ``subnet6`` tables (pure; the
counterpart of :mod:`ddi.ipam.rows`)."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv6Network
from typing import Any

from ddi.ipam.models import LeaseState
from ddi.ipam.models6 import Lease6, Lease6Image, Lease6Kind
from ddi.ipam.rows import batch_texts

__all__ = [
    "LEASE6_COLUMNS",
    "LEASE6_UPSERT",
    "image_texts6",
    "lease6_batch",
    "lease6_from_row",
    "lease6_row",
]

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


def image_texts6(images: Sequence[Lease6Image]) -> list[str]:
    """Each DHCPv6 lease image's compact JSON text (``rows.batch_texts``; first key "kind")."""
    return batch_texts(images, "kind")


def lease6_batch(
    leases: Sequence[Lease6],
) -> tuple[list[Lease6Image], list[str], list[str], list[tuple[Any, ...]]]:
    """The images, object ids, JSON texts and rows of a v6 lease batch, each prefix formatted
    once (in its image): ``str(IPv6Network)`` costs more than the rest of a row."""
    images = [Lease6Image(lease) for lease in leases]
    ids = [image.object_id for image in images]
    rows = [
        (image["kind"], image["prefix"], lease.duid, lease.iaid, lease.mac, lease.hostname,
         image["state"], lease.start, lease.end, lease.preferred_end, lease.subnet)
        for lease, image in zip(leases, images, strict=True)
    ]  # fmt: skip
    return images, ids, image_texts6(images), rows

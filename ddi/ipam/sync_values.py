"""What the store's sync block hands the edge sync agent and the API: frozen values, not
dicts with string keys (pure: no I/O, importable by the agent's core)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ddi.ipam.models import JsonObject

__all__ = ["Backlog", "CentralApply", "DownResult", "EpochRoll", "SyncConflict", "SyncCursors"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncCursors:
    """The edge's replication state, read in one go."""

    cursor: int = 0
    """The highest seq central acknowledged."""
    down_cursor: int = 0
    """The last down-log entry applied."""
    floor: int = 0
    """Change-log entries up to this seq were compacted away."""
    snapshot_seq: int = 0
    """The as-of seq of the current epoch's snapshot."""
    conflicts_reported: int = 0
    """The highest conflict id reported to central."""
    resolutions_reported: int = 0
    """Resolutions up to this unix time, in milliseconds, were reported to central."""
    withheld: int = 0
    """1 when objects a central of the previous version cannot take (IPv6) were held back
    from it: once central takes them, a snapshot brings them across."""
    epoch: int
    last_seq: int
    """The highest seq ever written (0 for a new store)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backlog:
    """The change-log entries past a cursor: how many, and the time of the oldest."""

    count: int
    oldest: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochRoll:
    """A new epoch, and the seq its snapshot is as of."""

    epoch: int
    as_of: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncConflict:
    """A central-owned reservation that could not apply over what the edge holds."""

    id: int
    kind: str
    object_id: str
    field: str
    value: str
    edge_image: JsonObject | None
    central_image: JsonObject | None
    detected_at: float
    resolved_at: float | None

    def to_json(self) -> dict[str, Any]:
        """The row as the API answers it and as the conflict report carries it to central."""
        return {
            "id": self.id,
            "kind": self.kind,
            "object_id": self.object_id,
            "field": self.field,
            "value": self.value,
            "edge_image": None if self.edge_image is None else dict(self.edge_image),
            "central_image": None if self.central_image is None else dict(self.central_image),
            "detected_at": self.detected_at,
            "resolved_at": self.resolved_at,
        }


class DownResult(enum.Enum):
    """What one down-log entry did; the values are the ``ddi_sync_down_applied`` labels."""

    APPLIED = "applied"
    """Applied, or already in place."""
    DELETED = "deleted"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True, kw_only=True)
class CentralApply:
    """The outcome of applying one central-owned reservation from the down log."""

    result: DownResult
    conflict: SyncConflict | None = None
    """The conflict recorded (or already open) when ``result`` is CONFLICT."""

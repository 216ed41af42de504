"""The outcome of a config reload (SIGHUP, ``ddi reload``, ``systemctl reload``), kept by the
daemon so ``ddi status``, ``/metrics`` and the caller of ``POST /v1/reload`` can tell whether
the file on disk is the one in force."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["ReloadOutcome", "ReloadResult"]


class ReloadOutcome(StrEnum):
    APPLIED = "applied"
    CONFIG_ERROR = "config_error"
    """The file does not parse or validate: the running config stays."""
    ORPHANS = "orphans"
    """The new subnets would orphan reservations or active leases (``--force`` applies it)."""
    STORE_REFUSED = "store_refused"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadResult:
    outcome: ReloadOutcome
    path: str
    at: float
    """Unix time the reload finished."""
    reason: str = ""
    """Why it was refused; empty when applied."""
    orphans: tuple[str, ...] = ()
    """What the new subnets orphan: refused for them, or applied despite them (forced)."""
    forced: bool = False
    restart_needed: tuple[str, ...] = ()
    """Sections whose change takes effect only at the next restart (``[api]``, ``[dns]``...)."""

    @property
    def applied(self) -> bool:
        return self.outcome is ReloadOutcome.APPLIED

    def to_image(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "outcome": self.outcome.value,
            "path": self.path,
            "at": self.at,
            "reason": self.reason,
            "orphans": list(self.orphans),
            "forced": self.forced,
            "restart_needed": list(self.restart_needed),
        }

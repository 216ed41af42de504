"""An error from the store or the API's body checks, as the console shows it: in words, with
the field it concerns (which the form then marks, in text as well as colour)."""

from __future__ import annotations

from dataclasses import dataclass

from ddi.api.common import BadRequest
from ddi.errors import Conflict, Invalid, NotFound, StoreWriteFailed


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    title: str
    message: str
    field: str | None = None


def problem_of(exc: Exception) -> Problem | None:
    """The problem ``exc`` tells the user about; None for an exception that is a bug."""
    if isinstance(exc, Conflict):
        return Problem(
            title="Refused: conflict",
            message=f"{exc.field} {exc.value} is already used by {exc.holder}.",
            field=exc.field,
        )
    if isinstance(exc, Invalid):
        return Problem(
            title="Refused: not valid",
            message=f"{exc.field} {exc.value!r}: {exc.reason}.",
            field=exc.field,
        )
    if isinstance(exc, BadRequest):
        return Problem(title="Refused: not valid", message=f"{exc}.", field=exc.field)
    if isinstance(exc, NotFound):
        return Problem(title="Not found", message=f"There is no {exc.kind} {exc.key}.")
    if isinstance(exc, StoreWriteFailed):
        return Problem(
            title="Not written: the store is unavailable",
            message=f"{exc} Nothing was written; retry once the disk has room.",
        )
    return None

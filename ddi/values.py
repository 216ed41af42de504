"""Building frozen values fast, for the measured hot paths (STYLE R10).

A frozen dataclass's generated ``__init__`` sets each field with ``object.__setattr__``: about
0.4 µs a field, 6 µs for a DHCP packet. :func:`slot_builder` returns a function that makes the
same value through the fields' slot descriptors instead (about a third of that), so a value
stays frozen for everyone else and costs less where the profile says it matters.

Rules:
* Only for ``slots=True`` dataclasses; every field must be given (no defaults are applied and
  no ``__post_init__`` runs): use it where every field is at hand.
* ``builder(**fields) == cls(**fields)`` for any fields (tested).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["slot_builder"]


def slot_builder(cls: type[T]) -> Callable[..., T]:
    """A constructor of ``cls`` taking every field (by position or name, in field order)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if not fields or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    names = [f.name for f in fields]
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls}
    lines = [f"def build_{cls.__name__}({', '.join(names)}):", "    value = new(cls)"]
    for i, name in enumerate(names):
        scope[f"set{i}"] = getattr(cls, name).__set__
        lines.append(f"    set{i}(value, {name})")
    lines.append("    return value")
    # Generated once per class, from field names only (as dataclasses makes __init__).
    exec("\n".join(lines), scope)
    builder: Callable[..., T] = scope[f"build_{cls.__name__}"]
    return builder

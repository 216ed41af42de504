"""A search of the change log (``ddi changes list`` filters, ``ddi lease history``) as one
SQL statement: the value says what to match, :meth:`ChangeQuery.sql` says how.

Pure: no database; the store runs the statement on its read connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from ddi.errors import Invalid
from ddi.ipam.models import Kind, Op
from ddi.ipam.rows import CHANGE_COLUMNS
from ddi.ipam.validate import parse_hostname, parse_mac

__all__ = ["MAX_LIMIT", "ChangeQuery", "kinds_of", "subject_filter"]

MAX_LIMIT = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeQuery:
    """Entries matching every field given (None: any). ``subject`` is ``(field, value)``: the
    object's image has ``field`` (ip, mac or hostname) equal to ``value``. Without ``after``,
    the latest ``limit`` matches are returned (still oldest first)."""

    kinds: tuple[Kind, ...] = ()
    object_id: str | None = None
    actor: str | None = None
    op: Op | None = None
    since: float | None = None
    until: float | None = None
    subject: tuple[str, str] | None = None
    after: int | None = None
    limit: int = 1000

    def sql(self) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if self.kinds:
            where.append(f"kind IN ({', '.join('?' * len(self.kinds))})")
            params += [k.value for k in self.kinds]
        for column, value in (("object_id", self.object_id), ("actor", self.actor)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if self.op is not None:
            where.append("op = ?")
            params.append(self.op.value)
        if self.since is not None:
            where.append("time >= ?")
            params.append(self.since)
        if self.until is not None:
            where.append("time < ?")
            params.append(self.until)
        if self.subject is not None:
            field, value = self.subject
            # The field name is one of three fixed words (subject_filter), never user text.
            where.append(f"json_extract(image, '$.{field}') = ?")
            params.append(value)
        if self.after is not None:
            where.append("seq > ?")
            params.append(self.after)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        order = "ASC" if self.after is not None else "DESC"
        sql = f"SELECT {CHANGE_COLUMNS} FROM change{clause} ORDER BY seq {order} LIMIT ?"
        return sql, [*params, self.limit]


def subject_filter(key: str) -> tuple[str, str]:
    """What ``key`` (an IP, a MAC or a hostname) is, as the image field to match.

    Raises:
        Invalid: ``key`` is none of the three.
    """
    text = key.strip()
    with suppress(ValueError):
        return "ip", str(IPv4Address(text))
    with suppress(Invalid):
        return "mac", parse_mac(text)
    try:
        return "hostname", parse_hostname(text)
    except Invalid:
        raise Invalid("key", key, "not an IPv4 address, a MAC or a hostname") from None


def kinds_of(names: Sequence[str]) -> tuple[Kind, ...]:
    """Kinds by name. Raises Invalid naming the unknown one."""
    out = []
    for name in names:
        try:
            out.append(Kind(name))
        except ValueError:
            known = ", ".join(k.value for k in Kind)
            raise Invalid("kind", name, f"not one of {known}") from None
    return tuple(out)

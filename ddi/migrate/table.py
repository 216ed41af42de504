"""CSV of reservations: a header line naming the columns, then one reservation a row.

Columns: ``ip`` and ``hostname`` are required, and ``mac`` or ``client_id`` for each row;
``lease_time`` is optional. ``ddi export csv`` writes this form.
"""

from __future__ import annotations

import csv

from ddi.migrate.items import HostItem, Parsed, Problem
from ddi.migrate.limits import lines, number

__all__ = ["COLUMNS", "parse_csv"]

COLUMNS = ("ip", "hostname", "mac", "client_id", "lease_time")


def parse_csv(text: str, name: str) -> Parsed:
    parsed = Parsed()
    rows = [(s, line) for s, line in lines(text, name, parsed) if line.strip()]
    if not rows:
        return parsed
    header_source, header_line = rows[0]
    header = [h.strip().lower().replace("-", "_") for h in next(csv.reader([header_line]))]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown or "ip" not in header or "hostname" not in header:
        why = f"unknown column {unknown[0]!r}" if unknown else "needs ip and hostname columns"
        parsed.refused.append(Problem(source=header_source, why=f"{why} ({', '.join(COLUMNS)})"))
        return parsed
    for source, line in rows[1:]:
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error as exc:
            parsed.refused.append(Problem(source=source, why=f"not CSV: {exc}"))
            continue
        if len(fields) != len(header):
            parsed.refused.append(
                Problem(source=source, why=f"{len(fields)} fields, the header has {len(header)}")
            )
            continue
        row = {k: v.strip() or None for k, v in zip(header, fields, strict=True)}
        lease_time = None
        if row.get("lease_time") is not None:
            lease_time = number(row["lease_time"] or "", digits=9)
            if lease_time is None:
                parsed.refused.append(Problem(source=source, why="lease_time: not seconds"))
                continue
        if row["ip"] is None or row["hostname"] is None:
            parsed.refused.append(Problem(source=source, why="ip and hostname are required"))
            continue
        parsed.hosts.append(
            HostItem(
                source=source,
                ip=row["ip"],
                hostname=row["hostname"],
                mac=row.get("mac"),
                client_id=row.get("client_id"),
                lease_time=lease_time,
            )
        )
    return parsed

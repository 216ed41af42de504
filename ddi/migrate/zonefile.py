"""A BIND zone file, parsed by dnspython (``$INCLUDE`` refused, nothing opened): A, AAAA, CNAME,
MX, SRV and TXT become static records (an A or AAAA at a reservation's name becomes that
reservation's name when the store sees it, ``ddi.ipam.import_plan``). The SOA and the apex NS
set are the site's own and are skipped; PTRs are skipped too (ddi derives them from
reservations and leases); other types are refused."""

from __future__ import annotations

import dns.exception
import dns.name
import dns.rdatatype
import dns.zone

from ddi.migrate.items import Parsed, Problem, RecordItem
from ddi.migrate.limits import MAX_LINE

__all__ = ["parse_zone"]

_CARRIED = {"A", "AAAA", "CNAME", "MX", "SRV", "TXT", "NS"}


def _rdata_text(rtype: str, rdata: dns.rdata.Rdata) -> str:
    if rtype == "TXT":
        # One TXT value in ddi: the record's strings joined (RFC 7208 §3.3 reads SPF so).
        return "".join(s.decode("utf-8", "replace") for s in rdata.strings)  # type: ignore[attr-defined]
    return str(rdata.to_text())


def parse_zone(text: str, name: str, *, origin: str | None = None) -> Parsed:
    """The records of one zone file. ``origin`` is the zone's name when the file has no
    ``$ORIGIN`` (or to override it)."""
    parsed = Parsed()
    for number_, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE:
            parsed.refused.append(
                Problem(source=f"{name}:{number_}", why=f"longer than {MAX_LINE} characters")
            )
            return parsed
    try:
        zone = dns.zone.from_text(
            text,
            origin=origin,
            relativize=False,
            filename=name,
            allow_include=False,
            check_origin=False,
        )
    except dns.zone.UnknownOrigin:
        parsed.refused.append(Problem(source=name, why="no $ORIGIN: give the zone's --origin"))
        return parsed
    except (dns.exception.DNSException, ValueError) as exc:
        # dnspython raises ValueError for some zone-level faults (an SOA below the apex).
        text_ = str(exc)
        source, _, why = text_.partition(": ") if text_.startswith(name) else (name, "", text_)
        parsed.refused.append(Problem(source=source, why=why or text_))
        return parsed
    apex = zone.origin
    assert apex is not None
    for owner, ttl, rdata in zone.iterate_rdatas():
        rtype = dns.rdatatype.to_text(rdata.rdtype)
        owner_text = owner.to_text()
        source = f"{name}: {owner_text} {rtype}"
        if rtype == "SOA" or (rtype == "NS" and owner == apex):
            parsed.skipped.append(Problem(source=source, why="the zone's own, ddi serves its own"))
            continue
        if rtype == "PTR":
            parsed.skipped.append(
                Problem(source=source, why="PTRs come from reservations and leases")
            )
            continue
        if rtype not in _CARRIED:
            parsed.refused.append(Problem(source=source, why=f"type {rtype} is not served"))
            continue
        parsed.records.append(
            RecordItem(source=source, name=owner_text, rtype=rtype,
                       value=_rdata_text(rtype, rdata), ttl=int(ttl))
        )  # fmt: skip
    return parsed

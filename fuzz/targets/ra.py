"""Router solicitations: what ``ddi.ra.service`` does with a datagram from its raw socket.

An input is one byte of context then the ICMPv6 message: bit 0 says the source was the
unspecified address, bits 1-7 pick the received hop limit (0x7f: none given, else the hop limit
255 or a wrong one). The message goes through ``decode_solicit`` (RFC 4861 §6.1.1) and, when it
passes, a ``RaSchedule`` that it may bring forward: the advertisement must never be due sooner
than 3 s after the last one (§6.2.6).

Outcomes: ``NdFormatError`` (a counted drop), a solicitation that brings the advertisement
forward, or one merged into the one already due.
"""

from __future__ import annotations

from ddi.ra.message import OPT_SOURCE_LL, NdFormatError, decode_solicit
from ddi.ra.schedule import MIN_DELAY_BETWEEN_RAS, RaSchedule
from fuzz.core import Target, Unexpected

_HOP_LIMITS = (255, 254, 64, 1, 0)


def check(data: bytes) -> str:
    if not data:
        return "drop:empty"
    context, message = data[0], data[1:]
    pick = context >> 1
    hop_limit = None if pick == 0x7F else _HOP_LIMITS[pick % len(_HOP_LIMITS)]
    solicit = decode_solicit(message, hop_limit=hop_limit, unspecified_source=bool(context & 1))
    if solicit.source_mac is not None and len(solicit.source_mac) % 8 != 6:
        raise Unexpected(f"a source link-layer option of {len(solicit.source_mac)} octets")
    schedule = RaSchedule(min_interval=198, max_interval=600, due_at=700.0, last_sent=99.0)
    draw = (sum(message) % 1000) / 1000
    moved = schedule.solicited(100.0, draw)
    if schedule.due_at < 99.0 + MIN_DELAY_BETWEEN_RAS:
        raise Unexpected(f"advertisement due at {schedule.due_at}, under 3 s after the last")
    return "solicit:forward" if moved else "solicit:merged"


def _rs(*options: bytes) -> bytes:
    return bytes((133, 0, 0, 0, 0, 0, 0, 0)) + b"".join(options)


def seeds() -> list[bytes]:
    slla = bytes((OPT_SOURCE_LL, 1)) + bytes.fromhex("525400000010")
    return [
        b"\x00" + _rs(),
        b"\x00" + _rs(slla),
        b"\x01" + _rs(),
        b"\x01" + _rs(slla),
        b"\x02" + _rs(slla),
        b"\xfe" + _rs(),
        b"\x00" + _rs(bytes((OPT_SOURCE_LL, 0)) + bytes(6)),
        b"\x00" + _rs(bytes((99, 2)) + bytes(14), slla),
        b"\x00" + bytes((134, 0, 0, 0)),
    ]


def target() -> Target:
    return Target(
        name="ra",
        doc="router solicitations: a context byte (source, hop limit) and the ICMPv6 message, "
        "through decode_solicit and the advertisement schedule",
        check=check,
        seeds=seeds,
        allowed=(NdFormatError,),
        max_len=1500,
        dictionary=(b"\x85\x00", b"\x01\x01", b"\x01\x00", b"\x01\xff"),
    )

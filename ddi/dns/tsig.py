"""TSIG (RFC 8945) with HMAC-SHA256: verify signed requests, sign replies and NOTIFYs.

dnslib does not implement TSIG, so this module works on wire bytes with ``struct`` and
``hmac``. The clock is an argument (``now``, seconds since the epoch).

Rules:
* The TSIG RR must be the last record of the additional section (RFC 8945 §5.1); a TSIG
  anywhere else, or one that does not parse, is a format error.
* The MAC covers the message as it was before the TSIG was added (ARCOUNT one less, the original
  ID) followed by the TSIG variables (RFC 8945 §4.3.3); a reply's MAC is preceded by the
  request's MAC (§5.3); each later message of a multi-message reply (AXFR/IXFR) is preceded by
  the previous message's MAC and covers only the timers (§5.3.1).
* Verification results are values: ``Verified`` or ``Failed(error)`` (BADKEY, BADSIG, BADTIME);
  the caller answers a failure with NOTAUTH and an unsigned TSIG carrying the error (§5.2).
* Names read off the wire (the key's, the algorithm's) stay bytes: a key is looked up by its
  canonical wire name, and a name that matches no configured key, whatever its bytes, is
  BADKEY (echoed back as it came).
* Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from ddi.dns.wire import (
    HEADER,
    QClass,
    QType,
    TsigError,
    name_key,
    name_text,
    read_name,
    text_labels,
    write_name,
)
from ddi.errors import DnsFormatError

ALGORITHM = "hmac-sha256"
DEFAULT_FUDGE = 300
_RR_FIXED = struct.Struct("!HHIH")
_TIMERS = struct.Struct("!HIH")  # 48-bit time signed as (high 16, low 32), then fudge


@dataclass(frozen=True, slots=True, kw_only=True)
class TsigKey:
    name: str
    """Key name, lower case, no trailing dot."""
    secret: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class TsigRecord:
    key_wire: bytes
    """The key name as it came, in canonical wire form (lower case, uncompressed): what the
    MAC covers, and what an error reply echoes. Any bytes: it is never decoded."""
    key_name: str
    """The key name in presentation form, any byte escaped (for logs)."""
    algorithm: str
    """The algorithm name in presentation form, lower case."""
    time_signed: int
    fudge: int
    mac: bytes
    original_id: int
    error: int
    other: bytes
    offset: int
    """Where the TSIG RR starts in the message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verified:
    key: TsigKey
    record: TsigRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed:
    error: TsigError
    record: TsigRecord


def encode_name(name: str) -> bytes:
    """Canonical (lower-case, uncompressed) wire form of an absolute name (RFC 4034 §6.2)."""
    return write_name(text_labels(name.lower()))


def _read_name(data: bytes, pos: int) -> tuple[tuple[bytes, ...], int]:
    """The canonical (lower-case) labels of the name at ``pos`` and the offset after it."""
    labels, end = read_name(data, pos)
    return name_key(labels), end


def find_tsig(data: bytes) -> TsigRecord | None:
    """The TSIG record of ``data``, if it has one.

    Raises:
        DnsFormatError: the message does not parse, or a TSIG is not the last record.
    """
    if len(data) < HEADER.size:
        raise DnsFormatError("short header")
    _, _, qd, an, ns, ar = HEADER.unpack_from(data)
    if ar == 0:
        return None
    pos = HEADER.size
    for _ in range(qd):
        _, pos = _read_name(data, pos)
        pos += 4
    last_start = -1
    last_type = -1
    total = an + ns + ar
    for i in range(total):
        start = pos
        _, pos = _read_name(data, pos)
        if pos + _RR_FIXED.size > len(data):
            raise DnsFormatError("truncated RR header")
        rtype, _, _, rdlength = _RR_FIXED.unpack_from(data, pos)
        pos += _RR_FIXED.size + rdlength
        if pos > len(data):
            raise DnsFormatError("truncated rdata")
        if rtype == QType.TSIG and i != total - 1:
            raise DnsFormatError("TSIG is not the last record (RFC 8945 §5.1)")
        last_start, last_type = start, rtype
    if last_type != QType.TSIG:
        return None
    key_labels, pos = _read_name(data, last_start)
    rtype, rclass, _, rdlength = _RR_FIXED.unpack_from(data, pos)
    pos += _RR_FIXED.size
    end = pos + rdlength
    try:
        algorithm, pos = _read_name(data, pos)
        hi, lo, fudge = _TIMERS.unpack_from(data, pos)
        pos += _TIMERS.size
        (mac_size,) = struct.unpack_from("!H", data, pos)
        pos += 2
        mac = data[pos : pos + mac_size]
        pos += mac_size
        original_id, error, other_len = struct.unpack_from("!HHH", data, pos)
        pos += 6
        other = data[pos : pos + other_len]
        pos += other_len
    except struct.error:
        raise DnsFormatError("truncated TSIG rdata") from None
    if pos != end or len(mac) != mac_size or len(other) != other_len or rclass != QClass.ANY:
        raise DnsFormatError("malformed TSIG rdata")
    return TsigRecord(
        key_wire=write_name(key_labels),
        key_name=name_text(key_labels),
        algorithm=name_text(algorithm),
        time_signed=(hi << 32) | lo,
        fudge=fudge,
        mac=mac,
        original_id=original_id,
        error=error,
        other=other,
        offset=last_start,
    )


def _unsigned(data: bytes, record: TsigRecord) -> bytes:
    """The message as it was before the TSIG was added (RFC 8945 §4.3.2)."""
    _, flags, qd, an, ns, ar = HEADER.unpack_from(data)
    head = HEADER.pack(record.original_id, flags, qd, an, ns, ar - 1)
    return head + data[HEADER.size : record.offset]


def _variables(
    key_wire: bytes, time_signed: int, fudge: int, error: int, other: bytes, *, timers_only: bool
) -> bytes:
    timers = _TIMERS.pack(time_signed >> 32, time_signed & 0xFFFFFFFF, fudge)
    if timers_only:
        return timers
    return (
        key_wire
        + struct.pack("!HI", QClass.ANY, 0)
        + encode_name(ALGORITHM)
        + timers
        + struct.pack("!HH", error, len(other))
        + other
    )


def _mac(secret: bytes, *parts: bytes) -> bytes:
    h = hmac.new(secret, digestmod=hashlib.sha256)
    for part in parts:
        h.update(part)
    return h.digest()


def _prefixed(mac: bytes) -> bytes:
    return struct.pack("!H", len(mac)) + mac


def verify(
    data: bytes,
    keys: Mapping[str, TsigKey],
    *,
    now: float,
    request_mac: bytes | None = None,
) -> Verified | Failed | None:
    """Check the TSIG of ``data`` (a request, or with ``request_mac`` a reply to one).

    Returns:
        None when the message is unsigned, else ``Verified`` or ``Failed``.

    Raises:
        DnsFormatError: the message or its TSIG does not parse.
    """
    record = find_tsig(data)
    if record is None:
        return None
    key = _key(keys, record)
    if key is None or record.algorithm != ALGORITHM:
        return Failed(error=TsigError.BADKEY, record=record)
    variables = _variables(
        record.key_wire,
        record.time_signed,
        record.fudge,
        record.error,
        record.other,
        timers_only=False,
    )
    prefix = b"" if request_mac is None else _prefixed(request_mac)
    expected = _mac(key.secret, prefix, _unsigned(data, record), variables)
    # RFC 8945 §5.2.2: a MAC shorter than half the hash (or 10 bytes) is refused.
    if len(record.mac) < 16 or not hmac.compare_digest(expected[: len(record.mac)], record.mac):
        return Failed(error=TsigError.BADSIG, record=record)
    # RFC 8945 §5.2.3: the time check follows the MAC check.
    if abs(now - record.time_signed) > record.fudge:
        return Failed(error=TsigError.BADTIME, record=record)
    return Verified(key=key, record=record)


def _key(keys: Mapping[str, TsigKey], record: TsigRecord) -> TsigKey | None:
    """The configured key named by ``record``: compared by canonical wire name, so a name
    with bytes no configured name has (non-ASCII, a dot inside a label) is simply not found."""
    for key in keys.values():
        if encode_name(key.name) == record.key_wire:
            return key
    return None


def _append(data: bytes, key_wire: bytes, rdata: bytes) -> bytes:
    msg_id, flags, qd, an, ns, ar = HEADER.unpack_from(data)
    head = HEADER.pack(msg_id, flags, qd, an, ns, ar + 1)
    rr = key_wire + _RR_FIXED.pack(QType.TSIG, QClass.ANY, 0, len(rdata)) + rdata
    return head + data[HEADER.size :] + rr


def _rdata(
    time_signed: int, fudge: int, mac: bytes, original_id: int, error: int, other: bytes
) -> bytes:
    return (
        encode_name(ALGORITHM)
        + _TIMERS.pack(time_signed >> 32, time_signed & 0xFFFFFFFF, fudge)
        + _prefixed(mac)
        + struct.pack("!HHH", original_id, error, len(other))
        + other
    )


def sign(
    data: bytes,
    key: TsigKey,
    *,
    now: float,
    request_mac: bytes | None = None,
    prior_mac: bytes | None = None,
    fudge: int = DEFAULT_FUDGE,
) -> tuple[bytes, bytes]:
    """Sign ``data`` (an unsigned message): a request, a reply to a request with
    ``request_mac``, or with ``prior_mac`` a later message of a multi-message reply.

    Returns:
        The signed message and its MAC (the next message's ``prior_mac``).
    """
    time_signed = int(now)
    (original_id,) = struct.unpack_from("!H", data)
    if prior_mac is not None:
        variables = _variables(b"", time_signed, fudge, 0, b"", timers_only=True)
        mac = _mac(key.secret, _prefixed(prior_mac), data, variables)
    else:
        variables = _variables(encode_name(key.name), time_signed, fudge, 0, b"", timers_only=False)
        prefix = b"" if request_mac is None else _prefixed(request_mac)
        mac = _mac(key.secret, prefix, data, variables)
    return _append(
        data, encode_name(key.name), _rdata(time_signed, fudge, mac, original_id, 0, b"")
    ), mac


def error_tsig(data: bytes, failure: Failed, *, now: float) -> bytes:
    """Append the unsigned TSIG that reports ``failure`` to the error reply ``data``
    (RFC 8945 §5.2: BADKEY/BADSIG replies carry an empty MAC)."""
    other = b""
    if failure.error is TsigError.BADTIME:
        t = int(now)
        other = _TIMERS.pack(t >> 32, t & 0xFFFFFFFF, 0)[:6]
    rdata = _rdata(
        failure.record.time_signed,
        failure.record.fudge,
        b"",
        failure.record.original_id,
        failure.error,
        other,
    )
    return _append(data, failure.record.key_wire, rdata)


REPLAY_CACHE_SIZE = 1024
"""Signed transfer requests remembered. Transfers are rare (a few secondaries, each after a
NOTIFY or its refresh timer): 1024 outlasts any honest rate inside a 300 s fudge window."""


class ReplayCache:
    """Signed requests already accepted, by (key, MAC), while their time stamp is inside the
    fudge window: the same request again is a replay. RFC 8945 §5.2.3 bounds a signature's
    life by the window only; inside it, a captured request could be sent again to take the
    zone again. Bounded: past ``capacity`` the oldest entry goes.

    Pure: ``now`` is an argument.
    """

    def __init__(self, capacity: int = REPLAY_CACHE_SIZE) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, bytes], float] = OrderedDict()
        self.replays = 0

    def replayed(self, verified: Verified, now: float) -> bool:
        """True when ``verified`` was accepted before (counted); otherwise it is remembered
        until its window closes, and False."""
        seen = self._seen
        while seen:
            first, closes = next(iter(seen.items()))
            if closes >= now:
                break
            del seen[first]
        record = verified.record
        key = (verified.key.name, record.mac)
        expires = seen.get(key)
        if expires is not None and expires >= now:
            self.replays += 1
            return True
        seen[key] = record.time_signed + record.fudge
        seen.move_to_end(key)
        while len(seen) > self.capacity:
            seen.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._seen)

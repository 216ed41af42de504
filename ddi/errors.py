"""The ddi error tree.

Four kinds of failure, and where each is handled:

* DdiError
  x ConfigError(key, reason)           operator: refuse to start; the message names the dotted key
  x StoreError                         operator: rendered once at the API/CLI boundary
    + Conflict(field, value, holder)   a change would collide; CLI exit 1, nothing written
    + NotFound(kind, key)              the object named does not exist; CLI exit 1
    + Invalid(field, value, reason)    a value is malformed or outside what the site serves
    + StoreWriteFailed(cause)          the disk refused the write (full, I/O error): nothing
                                       was written; API 503, logged rate-limited, never a bug
  x WireFormatError                    peer input: counted and dropped by the one transport
    + DhcpFormatError                  boundary that decodes it, never propagates further
    + DnsFormatError
    + TftpFormatError
  x SyncRefused(reason)                a batch central will not apply (unknown site, forged, replay)

Protocol outcomes (NAK, REFUSED, pool exhausted) are not exceptions: engines return them as
decision values with a reason enum. Anything else raised is a bug: the per-packet boundary logs
it with its traceback, counts ``ddi_internal_errors_total`` and drops that one packet.
"""

from __future__ import annotations


class DdiError(Exception):
    """Root of every error ddi raises on purpose."""


class ConfigError(DdiError):
    """The configuration is invalid; ``key`` is the dotted path of the offending key."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.key = key
        self.reason = reason


class StoreError(DdiError):
    """An operator's change the store refuses; nothing was written."""


class Conflict(StoreError):
    """``field`` = ``value`` is already held by ``holder`` (a human-readable description)."""

    def __init__(self, field: str, value: str, holder: str) -> None:
        super().__init__(f"{field} {value} is already used by {holder}")
        self.field = field
        self.value = value
        self.holder = holder


class NotFound(StoreError):
    """No ``kind`` object is known by ``key``."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"no {kind} {key}")
        self.kind = kind
        self.key = key


class Invalid(StoreError):
    """``field`` = ``value`` is malformed or not allowed: ``reason`` says why."""

    def __init__(self, field: str, value: str, reason: str) -> None:
        super().__init__(f"{field} {value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class StoreWriteFailed(StoreError):
    """The store could not write (SQLITE_FULL, SQLITE_IOERR): the transaction was rolled back,
    nothing of it was written, and a retry succeeds once the disk has room again. ``cause`` is
    ``"disk full"`` or ``"I/O error"``; the message is ``"store write failed: <cause>"``."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"store write failed: {cause}")
        self.cause = cause


class WireFormatError(DdiError):
    """Peer input that does not parse. Raised only by codecs."""


class DhcpFormatError(WireFormatError):
    """A malformed DHCP/BOOTP packet."""


class DnsFormatError(WireFormatError):
    """A malformed DNS message."""


class TftpFormatError(WireFormatError):
    """A malformed TFTP packet."""


class SyncRefused(DdiError):
    """Central refuses a batch; ``reason`` is a short, bounded token (used as a metric label)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

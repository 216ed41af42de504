"""TFTP read transfers without I/O: RFC 1350, 2347 (OACK), 2348 (blksize), 2349 (tsize,
timeout), 7440 (windowsize).

The module has two parts: a codec (``decode_packet``/``encode_*``) and ``TftpTransfer``, one
read transfer shaped like aioquic's connection: the transport feeds it datagrams with
``receive(data, now)``, sends what ``datagrams_to_send(now)`` returns, and calls
``handle_timer(now)`` when ``get_timer()`` says so. Time is always passed in.

Rules:
* Every number in a request is read by ``numbers.decimal``: ASCII digits, length-capped before
  conversion. ``read_options`` turns the options into checked values before the transport
  opens anything, so nothing after it raises on a client's input.
* Only read requests in octet mode are served; ``refusal_for`` says why any other request is
  refused (WRQ, netascii/mail mode) and with which error packet.
* Block numbers on the wire are 16 bits and wrap from 65535 to 0, as tftp-hpa, curl and iPXE do;
  inside the transfer they are counted without wrapping.
* The transfer only sends in answer to a new ACK or to its own timer. A duplicate ACK never
  triggers a send (the Sorcerer's Apprentice bug, RFC 1350 errata / RFC 1123 §4.2.3.1).
* File data come through the ``BlockSource`` seam; this module reads no file and no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ddi.errors import TftpFormatError
from ddi.numbers import decimal

MIN_BLKSIZE = 8
MAX_BLKSIZE = 65464
DEFAULT_BLKSIZE = 512
MAX_WINDOWSIZE = 65535
_BLOCK_MODULUS = 1 << 16


class Opcode(enum.IntEnum):
    """RFC 1350 §5 and RFC 2347 (OACK)."""

    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


class ErrorCode(enum.IntEnum):
    """RFC 1350 appendix and RFC 2347 (8, option negotiation refused)."""

    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8


def error_code(value: int) -> ErrorCode | int:
    try:
        return ErrorCode(value)
    except ValueError:
        return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """RRQ or WRQ. ``mode`` and option names are lower case; ``options`` keep the client's
    order and the first of any duplicates."""

    opcode: Opcode
    filename: str
    mode: str
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Data:
    block: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    block: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    code: ErrorCode | int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionAck:
    options: tuple[tuple[str, str], ...]


Packet = Request | Data | Ack | Error | OptionAck


def _strings(body: bytes) -> list[bytes]:
    """Split NUL-terminated strings; the body must end with a NUL."""
    if not body.endswith(b"\0"):
        raise TftpFormatError("string not terminated by NUL")
    return body[:-1].split(b"\0")


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise TftpFormatError(f"{what} is not ASCII") from None


def _options(strings: Sequence[bytes]) -> tuple[tuple[str, str], ...]:
    # Some ROMs pad a request with NULs after the last option; empty trailing strings are
    # padding, not an option.
    items = list(strings)
    while items and items[-1] == b"":
        items.pop()
    if len(items) % 2:
        raise TftpFormatError("option without a value")
    seen: dict[str, str] = {}
    for i in range(0, len(items), 2):
        name = _text(items[i], "option name").lower()
        if not name:
            raise TftpFormatError("empty option name")
        # RFC 2347 does not say which of two equal options wins; the first does here.
        seen.setdefault(name, _text(items[i + 1], "option value"))
    return tuple(seen.items())


def decode_packet(data: bytes) -> Packet:
    """Decode one TFTP datagram.

    Raises:
        TftpFormatError: the datagram is not a well-formed TFTP packet.
    """
    if len(data) < 4:
        raise TftpFormatError(f"datagram of {len(data)} bytes is too short")
    value = int.from_bytes(data[:2], "big")
    body = data[2:]
    if value in (Opcode.RRQ, Opcode.WRQ):
        strings = _strings(body)
        if len(strings) < 2:
            raise TftpFormatError("request without a mode")
        try:
            filename = strings[0].decode("utf-8")
        except UnicodeDecodeError:
            raise TftpFormatError("file name is not UTF-8") from None
        if not filename:
            raise TftpFormatError("empty file name")
        return Request(
            opcode=Opcode(value),
            filename=filename,
            mode=_text(strings[1], "mode").lower(),
            options=_options(strings[2:]),
        )
    block = int.from_bytes(body[:2], "big")
    if value == Opcode.DATA:
        return Data(block=block, data=body[2:])
    if value == Opcode.ACK:
        if len(body) != 2:
            raise TftpFormatError(f"ACK of {len(data)} bytes")
        return Ack(block=block)
    if value == Opcode.ERROR:
        message = body[2:].split(b"\0", 1)[0]
        return Error(code=error_code(block), message=message.decode("utf-8", "replace"))
    if value == Opcode.OACK:
        return OptionAck(options=_options(_strings(body)))
    raise TftpFormatError(f"unknown opcode {value}")


def _pack_strings(*strings: str) -> bytes:
    return b"".join(s.encode("utf-8") + b"\0" for s in strings)


def encode_request(request: Request) -> bytes:
    flat = [s for pair in request.options for s in pair]
    return request.opcode.to_bytes(2, "big") + _pack_strings(request.filename, request.mode, *flat)


def encode_data(block: int, data: bytes) -> bytes:
    return b"\0\3" + (block % _BLOCK_MODULUS).to_bytes(2, "big") + data


def encode_ack(block: int) -> bytes:
    return b"\0\4" + (block % _BLOCK_MODULUS).to_bytes(2, "big")


def encode_error(code: ErrorCode | int, message: str) -> bytes:
    return b"\0\5" + int(code).to_bytes(2, "big") + _pack_strings(message)


def encode_oack(options: Sequence[tuple[str, str]]) -> bytes:
    return b"\0\6" + _pack_strings(*(s for pair in options for s in pair))


class RefusalReason(enum.StrEnum):
    """Why a request is refused before any transfer starts (a bounded metric label)."""

    WRITE = "write_refused"
    MODE = "mode_refused"
    NOT_FOUND = "not_found"
    ACCESS = "access_refused"
    BUSY = "busy"
    CLIENT_LIMIT = "client_limit"


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    reason: RefusalReason
    code: ErrorCode
    message: str

    def datagram(self) -> bytes:
        return encode_error(self.code, self.message)


def refusal_for(request: Request) -> Refusal | None:
    """The error to answer a request with before looking for its file, or None to serve it.

    Netascii (and the obsolete mail mode) are refused: boot files are binary, every boot ROM
    asks for octet, and a translated transfer could not announce its tsize up front.
    """
    if request.opcode is Opcode.WRQ:
        return Refusal(
            reason=RefusalReason.WRITE,
            code=ErrorCode.ACCESS_VIOLATION,
            message="write requests are not accepted",
        )
    if request.mode != "octet":
        return Refusal(
            reason=RefusalReason.MODE,
            code=ErrorCode.ILLEGAL_OPERATION,
            message=f"mode {request.mode!r} is not supported, use octet",
        )
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferLimits:
    """What the server accepts; the config's boot.tftp section fills it."""

    timeout: float = 1.0
    """Seconds before retransmitting, unless the client negotiates ``timeout`` (RFC 2349)."""
    retries: int = 5
    """Retransmissions of one window without progress before the transfer is abandoned."""
    max_blksize: int = MAX_BLKSIZE
    """Largest block size granted (RFC 2348); larger requests get this value in the OACK."""
    max_windowsize: int = 64
    """Largest window granted (RFC 7440); larger requests get this value in the OACK."""
    max_window_bytes: int = 65536
    """Largest window in bytes (blocks x blksize) granted. A window that overruns the
    client's socket buffer loses its tail, which only a timeout repairs (measured: 8192 x 16
    against atftp on loopback stalls a second per window; 64 KiB windows never do)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Negotiated:
    blksize: int
    windowsize: int
    timeout: float
    oack: tuple[tuple[str, str], ...]
    """Options acknowledged, in the client's order; empty means no OACK is sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The options of a read request this server acts on, converted and range-checked. One that
    is unknown, not a number or out of range is None here and so left out of the OACK, which
    the client takes as a refusal of that option only (RFC 2347 §2)."""

    blksize: int | None = None
    windowsize: int | None = None
    timeout: int | None = None
    tsize: bool = False
    order: tuple[str, ...] = ()
    """Names of the accepted options in the client's order, for the OACK."""


def read_options(request: Request) -> Options:
    """The options of ``request`` as checked values. Never raises."""
    values: dict[str, int] = {}
    for name, raw in request.options:
        value = decimal(raw)
        if value is None:
            continue
        if name == "blksize" and value >= MIN_BLKSIZE:
            # RFC 2348: 8-65464. A larger request gets the largest, as tftp-hpa does.
            values[name] = min(value, MAX_BLKSIZE)
        elif name == "windowsize" and value >= 1:
            values[name] = min(value, MAX_WINDOWSIZE)  # RFC 7440: 1-65535
        elif name == "timeout" and 1 <= value <= 255:
            values[name] = value  # RFC 2349 §2: 1-255 seconds, echoed unchanged
        elif name == "tsize":
            values[name] = value  # RFC 2349 §4: a read request carries 0
    return Options(
        blksize=values.get("blksize"),
        windowsize=values.get("windowsize"),
        timeout=values.get("timeout"),
        tsize="tsize" in values,
        order=tuple(values),
    )


def negotiate(options: Options, *, size: int | None, limits: TransferLimits) -> Negotiated:
    """Grant checked options within ``limits``; the server may answer a smaller blksize or
    windowsize than asked (RFC 2348, RFC 7440 §3)."""
    blksize = DEFAULT_BLKSIZE
    if options.blksize is not None:
        blksize = min(options.blksize, limits.max_blksize)
    windowsize = 1
    if options.windowsize is not None:
        # The byte budget needs the final blksize, which may come after windowsize.
        budget = max(1, limits.max_window_bytes // blksize)
        windowsize = min(options.windowsize, limits.max_windowsize, budget)
    timeout = limits.timeout if options.timeout is None else float(options.timeout)
    granted = {
        "blksize": str(blksize),
        "windowsize": str(windowsize),
        "timeout": str(options.timeout),
        "tsize": str(size),
    }
    oack = tuple(
        (name, granted[name]) for name in options.order if name != "tsize" or size is not None
    )
    return Negotiated(blksize=blksize, windowsize=windowsize, timeout=timeout, oack=oack)


class BlockSource(Protocol):
    """The file being sent, as the transport opened it."""

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``; fewer only at the end of the file."""
        ...


class Outcome(enum.StrEnum):
    """How a transfer ended (a bounded metric label)."""

    COMPLETED = "completed"
    TIMEOUT = "timeout"
    CLIENT_ERROR = "client_error"
    UNREACHABLE = "unreachable"
    ABORTED = "aborted"
    """The server stopped or a bug ended the transfer."""
    SIZE_QUERY = "size_query"
    """The client ended the transfer after the OACK that told it the size, before any data:
    EDK2 asks every file's size that way first (Mtftp4 GetInfo), then fetches it."""


class _Phase(enum.Enum):
    OACK_SENT = enum.auto()
    DATA = enum.auto()
    DONE = enum.auto()


class TftpTransfer:
    """One read transfer from the moment its request was accepted.

    Blocks are numbered from 1 without wrapping; block 0 stands for the OACK. ``_acked`` is the
    highest block the client acknowledged, ``_sent`` the highest block sent, and ``_last`` the
    final (short) block once it is known. The window is ``_acked + 1 .. _acked + windowsize``.
    """

    def __init__(
        self,
        request: Request,
        source: BlockSource,
        *,
        options: Options,
        size: int | None,
        limits: TransferLimits,
        now: float,
    ) -> None:
        self.request = request
        self.negotiated = negotiate(options, size=size, limits=limits)
        self._source = source
        self._retries_left = limits.retries
        self._retries = limits.retries
        self._acked = 0
        self._sent = 0
        self._last: int | None = None
        self._blocks: dict[int, bytes] = {}
        self._queue: list[bytes] = []
        self._timer: float | None = None
        self.outcome: Outcome | None = None
        self.error_message = ""
        self.bytes_sent = 0
        self.retransmissions = 0
        self.duplicate_acks = 0
        self.window_restarts = 0
        self.ignored = 0
        self.started = now
        if self.negotiated.oack:
            # RFC 2347 §3: the OACK answers the request; the client ACKs it with block 0.
            self._phase = _Phase.OACK_SENT
            self._queue.append(encode_oack(self.negotiated.oack))
        else:
            self._phase = _Phase.DATA
            self._queue_window(first=1)

    @property
    def done(self) -> bool:
        return self._phase is _Phase.DONE

    def _block(self, number: int) -> bytes:
        data = self._blocks.get(number)
        if data is None:
            size = self.negotiated.blksize
            data = self._source.read((number - 1) * size, size)
            self._blocks[number] = data
            if len(data) < size:
                # RFC 1350 §6: a block shorter than blksize (possibly empty) ends the transfer.
                self._last = number
        return data

    def _queue_window(self, *, first: int) -> None:
        end = self._acked + self.negotiated.windowsize
        number = first
        while number <= end and (self._last is None or number <= self._last):
            data = self._block(number)
            self._queue.append(encode_data(number, data))
            self.bytes_sent += len(data)
            number += 1
        self._sent = max(self._sent, number - 1)

    def _finish(self, outcome: Outcome) -> None:
        self._phase = _Phase.DONE
        self.outcome = outcome
        self._timer = None
        self._blocks.clear()

    def receive(self, data: bytes, now: float) -> None:
        """Take one datagram from the client's transfer ID."""
        if self._phase is _Phase.DONE:
            return
        try:
            packet = decode_packet(data)
        except TftpFormatError:
            self.ignored += 1
            return
        if isinstance(packet, Error):
            # RFC 1350 §7: an error packet ends the transfer and is neither ACKed nor resent.
            self.error_message = packet.message
            size_only = self._phase is _Phase.OACK_SENT and any(
                name == "tsize" for name, _ in self.negotiated.oack
            )
            self._finish(Outcome.SIZE_QUERY if size_only else Outcome.CLIENT_ERROR)
        elif isinstance(packet, Ack):
            self._on_ack(packet.block)
        else:
            self.ignored += 1

    def abort(self, outcome: Outcome, message: str) -> None:
        """End the transfer from outside: the client is unreachable, or the server stops."""
        if self._phase is not _Phase.DONE:
            self.error_message = message
            self._finish(outcome)

    def _on_ack(self, wire_block: int) -> None:
        if self._phase is _Phase.OACK_SENT:
            if wire_block != 0:
                self.ignored += 1
                return
            self._phase = _Phase.DATA
            self._retries_left = self._retries
            self._queue_window(first=1)
            return
        # Map the 16-bit number onto the window: the only block in _acked.._sent with that
        # number modulo 2**16 (the window is never wider than 65535 blocks).
        block = self._acked + (wire_block - self._acked) % _BLOCK_MODULUS
        if block > self._sent:
            self.ignored += 1
            return
        if block == self._acked:
            # A duplicate ACK: resending here would double every later block. Our own timer
            # repairs a lost DATA.
            self.duplicate_acks += 1
            return
        for number in range(self._acked + 1, block + 1):
            self._blocks.pop(number, None)
        self._acked = block
        self._retries_left = self._retries
        if self._last is not None and block >= self._last:
            self._finish(Outcome.COMPLETED)
            return
        # RFC 7440 §4: an ACK inside the window means the client lost what followed; the next
        # window starts right after the block it acknowledged.
        if block < self._sent:
            self.window_restarts += 1
        self._queue_window(first=block + 1)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Datagrams to send now, in order; arms the retransmission timer when any."""
        queue, self._queue = self._queue, []
        if queue and self._phase is not _Phase.DONE:
            self._timer = now + self.negotiated.timeout
        return queue

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called, or None once the transfer is over."""
        return self._timer

    def handle_timer(self, now: float) -> None:
        """Retransmit the unacknowledged window, or give up after ``limits.retries`` tries."""
        if self._timer is None or now < self._timer:
            return
        if self._retries_left <= 0:
            self._queue.append(encode_error(ErrorCode.NOT_DEFINED, "transfer timed out"))
            self._finish(Outcome.TIMEOUT)
            return
        self._retries_left -= 1
        self.retransmissions += 1
        self._timer = None
        if self._phase is _Phase.OACK_SENT:
            self._queue.append(encode_oack(self.negotiated.oack))
        else:
            before = self.bytes_sent
            self._queue_window(first=self._acked + 1)
            self.bytes_sent = before

    def statistics(self) -> dict[str, object]:
        return {
            "file": self.request.filename,
            "blksize": self.negotiated.blksize,
            "windowsize": self.negotiated.windowsize,
            "acked_blocks": self._acked,
            "bytes_sent": self.bytes_sent,
            "retransmissions": self.retransmissions,
            "duplicate_acks": self.duplicate_acks,
            "window_restarts": self.window_restarts,
            "outcome": None if self.outcome is None else self.outcome.value,
        }

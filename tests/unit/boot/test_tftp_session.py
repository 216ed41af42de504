"""Byte-level TFTP conversations with the pure transfer (no sockets, no clock)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddi.boot.tftp_session import (
    Ack,
    Data,
    Error,
    ErrorCode,
    Opcode,
    OptionAck,
    Outcome,
    RefusalReason,
    Request,
    TftpTransfer,
    TransferLimits,
    decode_packet,
    encode_ack,
    encode_data,
    encode_error,
    encode_oack,
    encode_request,
    negotiate,
    read_options,
    refusal_for,
)
from ddi.errors import TftpFormatError


class BytesSource:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads = 0

    def read(self, offset: int, size: int) -> bytes:
        self.reads += 1
        return self.data[offset : offset + size]


def rrq(name: str = "ipxe.efi", *options: tuple[str, str], mode: str = "octet") -> Request:
    return Request(opcode=Opcode.RRQ, filename=name, mode=mode, options=tuple(options))


def transfer(
    data: bytes, request: Request, limits: TransferLimits | None = None
) -> tuple[TftpTransfer, BytesSource]:
    source = BytesSource(data)
    t = TftpTransfer(
        request,
        source,
        options=read_options(request),
        size=len(data),
        limits=limits or TransferLimits(),
        now=0.0,
    )
    return t, source


def run_to_end(t: TftpTransfer, now: float = 0.0, expected: int = 1) -> bytes:
    """An ideal client: ACK the last DATA of each flight; returns the file received."""
    received = bytearray()
    for _ in range(1_000_000):
        out = t.datagrams_to_send(now)
        if not out:
            break
        last = None
        for dgram in out:
            pkt = decode_packet(dgram)
            if isinstance(pkt, OptionAck):
                last = 0
                continue
            assert isinstance(pkt, Data)
            assert pkt.block == expected % 65536
            received += pkt.data
            expected += 1
            last = pkt.block
        assert last is not None
        t.receive(encode_ack(last), now)
    return bytes(received)


# --- codec -----------------------------------------------------------------------------------


def test_decode_rrq_from_ipxe_pcap() -> None:
    raw = b"\x00\x01boot.ipxe\x00octet\x00blksize\x001432\x00tsize\x000\x00"
    assert decode_packet(raw) == Request(
        opcode=Opcode.RRQ,
        filename="boot.ipxe",
        mode="octet",
        options=(("blksize", "1432"), ("tsize", "0")),
    )


def test_request_round_trip_and_case_folding() -> None:
    raw = b"\x00\x01a/b.efi\x00OCTET\x00BlkSize\x001468\x00blksize\x00999\x00\x00\x00"
    req = decode_packet(raw)
    assert isinstance(req, Request)
    assert req.mode == "octet"
    assert req.options == (("blksize", "1468"),)
    assert decode_packet(encode_request(req)) == req


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01",
        b"\x00\x01file\x00octet",  # no final NUL
        b"\x00\x01file\x00",  # no mode
        b"\x00\x01\x00octet\x00",  # empty name
        b"\x00\x01file\x00octet\x00blksize\x00",  # option without value
        b"\x00\x04\x00\x01\x00",  # ACK too long
        b"\x00\x09\x00\x01",  # unknown opcode
        b"\x00\x01f\xff\x00octet\x00",  # name not UTF-8
        b"\x00\x01f\x00oct\xe9t\x00",  # mode not ASCII
        b"\x00\x01f\x00octet\x00\x00v\x00",  # empty option name
    ],
)
def test_malformed_datagrams_raise_format_error(raw: bytes) -> None:
    with pytest.raises(TftpFormatError):
        decode_packet(raw)


def test_other_packets_round_trip() -> None:
    assert decode_packet(encode_data(70000, b"xy")) == Data(block=70000 % 65536, data=b"xy")
    assert decode_packet(encode_ack(3)) == Ack(block=3)
    assert decode_packet(encode_error(ErrorCode.FILE_NOT_FOUND, "nope")) == Error(
        code=ErrorCode.FILE_NOT_FOUND, message="nope"
    )
    assert decode_packet(encode_error(42, "odd")) == Error(code=42, message="odd")
    assert decode_packet(encode_oack([("tsize", "5")])) == OptionAck(options=(("tsize", "5"),))


@given(st.binary(max_size=600))
def test_decode_raises_only_format_error(data: bytes) -> None:
    with contextlib.suppress(TftpFormatError):
        decode_packet(data)


# --- refusals and negotiation ----------------------------------------------------------------


def test_write_request_is_refused_with_access_violation() -> None:
    refusal = refusal_for(Request(opcode=Opcode.WRQ, filename="x", mode="octet"))
    assert refusal is not None
    assert refusal.reason is RefusalReason.WRITE
    assert refusal.datagram() == encode_error(ErrorCode.ACCESS_VIOLATION, refusal.message)


def test_netascii_is_refused() -> None:
    refusal = refusal_for(rrq(mode="netascii"))
    assert refusal is not None
    assert refusal.reason is RefusalReason.MODE
    assert refusal.code is ErrorCode.ILLEGAL_OPERATION
    assert refusal_for(rrq()) is None


def test_negotiation_grants_clamps_and_ignores() -> None:
    limits = TransferLimits(max_blksize=1468, max_windowsize=16)
    req = rrq(
        "f",
        ("blksize", "9000"),
        ("windowsize", "64"),
        ("timeout", "3"),
        ("tsize", "0"),
        ("multicast", ""),
    )
    n = negotiate(read_options(req), size=1234, limits=limits)
    assert (n.blksize, n.windowsize, n.timeout) == (1468, 16, 3.0)
    assert n.oack == (
        ("blksize", "1468"),
        ("windowsize", "16"),
        ("timeout", "3"),
        ("tsize", "1234"),
    )


def test_window_is_capped_by_its_byte_budget() -> None:
    limits = TransferLimits(max_window_bytes=65536)
    req = rrq("f", ("windowsize", "16"), ("blksize", "8192"))
    n = negotiate(read_options(req), size=None, limits=limits)
    assert (n.blksize, n.windowsize) == (8192, 8)
    assert n.oack == (("windowsize", "8"), ("blksize", "8192"))
    req = rrq("f", ("blksize", "1468"), ("windowsize", "8"))
    n = negotiate(read_options(req), size=None, limits=limits)
    assert n.windowsize == 8


@pytest.mark.parametrize(
    "option",
    [
        ("blksize", "7"),
        ("timeout", "0"),
        ("timeout", "256"),
        ("windowsize", "0"),
        ("blksize", "big"),
        ("tsize", "-1"),
        ("blksize", "9" * 5000),
        ("blksize", "9" * 21),
        ("windowsize", "²"),
        ("timeout", "١٢"),
        ("blksize", "+512"),
        ("blksize", " 512"),
        ("tsize", "1_000"),
    ],
)
def test_unacceptable_options_are_left_out_of_oack(option: tuple[str, str]) -> None:
    """Anything but 1-20 ASCII digits is not a number; int() would have raised on the first
    three, or taken the next ones (int(" 512") == 512)."""
    n = negotiate(read_options(rrq("f", option)), size=10, limits=TransferLimits())
    assert n.oack == ()
    assert (n.blksize, n.windowsize) == (512, 1)


# --- conversations ---------------------------------------------------------------------------


def test_plain_rfc1350_transfer_lock_step() -> None:
    data = bytes(range(256)) * 5  # 1280 bytes: blocks of 512, 512, 256
    t, _ = transfer(data, rrq())
    assert t.datagrams_to_send(0.0) == [encode_data(1, data[:512])]
    assert t.get_timer() == 1.0
    t.receive(encode_ack(1), 0.1)
    assert t.datagrams_to_send(0.1) == [encode_data(2, data[512:1024])]
    t.receive(encode_ack(2), 0.2)
    assert t.datagrams_to_send(0.2) == [encode_data(3, data[1024:])]
    t.receive(encode_ack(3), 0.3)
    assert t.done
    assert t.outcome is Outcome.COMPLETED
    assert t.datagrams_to_send(0.3) == []
    assert t.get_timer() is None


def test_exact_multiple_ends_with_empty_block() -> None:
    data = b"a" * 1024
    t, _ = transfer(data, rrq())
    assert run_to_end(t) == data
    assert t.outcome is Outcome.COMPLETED
    assert t.statistics()["acked_blocks"] == 3


def test_empty_file_is_one_empty_block() -> None:
    t, _ = transfer(b"", rrq())
    assert t.datagrams_to_send(0.0) == [encode_data(1, b"")]
    t.receive(encode_ack(1), 0.0)
    assert t.outcome is Outcome.COMPLETED


def test_oack_then_ack0_then_data_with_blksize_and_tsize() -> None:
    data = b"z" * 3000
    t, _ = transfer(data, rrq("f", ("blksize", "1432"), ("tsize", "0")))
    assert t.datagrams_to_send(0.0) == [b"\x00\x06blksize\x001432\x00tsize\x003000\x00"]
    t.receive(encode_ack(1), 0.0)  # not the ACK of the OACK
    assert t.datagrams_to_send(0.0) == []
    t.receive(encode_ack(0), 0.1)
    assert t.datagrams_to_send(0.1) == [encode_data(1, data[:1432])]
    t.receive(encode_ack(1), 0.2)
    assert run_to_end(t, 0.2, expected=2) == data[1432:]


def test_options_are_checked_and_clamped_to_their_rfc_ranges() -> None:
    options = read_options(
        rrq("f", ("blksize", "99999"), ("windowsize", "70000"), ("timeout", "255"), ("tsize", "0"))
    )
    assert (options.blksize, options.windowsize, options.timeout, options.tsize) == (
        65464,
        65535,
        255,
        True,
    )
    assert options.order == ("blksize", "windowsize", "timeout", "tsize")


def test_error_after_the_oack_with_tsize_is_a_size_query() -> None:
    """EDK2 learns the size from the OACK and aborts with ERROR 8, by design."""
    t, _ = transfer(b"x" * 5000, rrq("f", ("tsize", "0"), ("blksize", "1468")))
    assert t.datagrams_to_send(0.0) == [encode_oack([("tsize", "5000"), ("blksize", "1468")])]
    t.receive(encode_error(ErrorCode.OPTION_REFUSED, "User aborted the transfer"), 0.1)
    assert t.outcome is Outcome.SIZE_QUERY
    assert t.datagrams_to_send(0.1) == []


def test_error_once_data_flows_is_a_client_error_even_with_tsize() -> None:
    t, _ = transfer(b"x" * 5000, rrq("f", ("tsize", "0")))
    t.datagrams_to_send(0.0)
    t.receive(encode_ack(0), 0.1)
    t.receive(encode_error(ErrorCode.DISK_FULL, "full"), 0.2)
    assert t.outcome is Outcome.CLIENT_ERROR


def test_client_refusing_oack_ends_transfer() -> None:
    t, _ = transfer(b"x", rrq("f", ("blksize", "1432")))
    t.datagrams_to_send(0.0)
    t.receive(encode_error(ErrorCode.OPTION_REFUSED, "no"), 0.1)
    assert t.outcome is Outcome.CLIENT_ERROR
    assert t.error_message == "no"
    assert t.datagrams_to_send(0.1) == []


def test_lost_oack_is_retransmitted() -> None:
    t, _ = transfer(b"x", rrq("f", ("tsize", "0")))
    first = t.datagrams_to_send(0.0)
    t.handle_timer(0.5)  # too early: nothing
    assert t.datagrams_to_send(0.5) == []
    t.handle_timer(1.0)
    assert t.datagrams_to_send(1.0) == first


def test_windowsize_sends_window_then_waits_for_last_ack() -> None:
    data = bytes(100) * 100  # 10000 bytes, blksize 1000 -> 11 blocks (last one empty)
    t, _ = transfer(data, rrq("f", ("blksize", "1000"), ("windowsize", "4")))
    t.datagrams_to_send(0.0)
    t.receive(encode_ack(0), 0.0)
    flight = t.datagrams_to_send(0.0)
    assert [decode_packet(d) for d in flight] == [
        Data(block=n, data=data[(n - 1) * 1000 : n * 1000]) for n in (1, 2, 3, 4)
    ]
    # RFC 7440 §4: an ACK of block 2 means 3 and 4 were lost: resend from 3.
    t.receive(encode_ack(2), 0.1)
    assert [d[2:4] for d in t.datagrams_to_send(0.1)] == [
        n.to_bytes(2, "big") for n in (3, 4, 5, 6)
    ]
    assert run_to_end_from(t, 6) == data[6000:]
    assert t.outcome is Outcome.COMPLETED


def run_to_end_from(t: TftpTransfer, last: int) -> bytes:
    t.receive(encode_ack(last), 0.2)
    return run_to_end(t, 0.2, expected=last + 1)


def test_lost_ack_is_repaired_by_retransmitting_the_window() -> None:
    data = b"q" * 2000
    t, _ = transfer(data, rrq())
    first = t.datagrams_to_send(0.0)
    # The client's ACK 1 is lost: after the timeout the same DATA 1 goes out again.
    t.handle_timer(1.0)
    assert t.datagrams_to_send(1.0) == first
    assert t.retransmissions == 1
    assert t.get_timer() == 2.0
    t.receive(encode_ack(1), 1.1)
    assert t.datagrams_to_send(1.1) == [encode_data(2, data[512:1024])]


def test_duplicate_ack_does_not_resend_sorcerers_apprentice() -> None:
    data = b"s" * 2000
    t, _ = transfer(data, rrq())
    t.datagrams_to_send(0.0)
    t.receive(encode_ack(1), 0.1)
    assert len(t.datagrams_to_send(0.1)) == 1  # DATA 2
    t.receive(encode_ack(1), 0.2)  # a late duplicate of ACK 1
    assert t.datagrams_to_send(0.2) == []
    assert t.duplicate_acks == 1
    t.receive(encode_ack(2), 0.3)
    assert t.datagrams_to_send(0.3) == [encode_data(3, data[1024:1536])]


def test_ack_beyond_what_was_sent_is_ignored() -> None:
    t, _ = transfer(b"s" * 2000, rrq())
    t.datagrams_to_send(0.0)
    t.receive(encode_ack(7), 0.1)
    assert t.datagrams_to_send(0.1) == []
    assert t.ignored == 1


def test_unexpected_and_malformed_packets_are_ignored() -> None:
    t, _ = transfer(b"s" * 2000, rrq())
    t.datagrams_to_send(0.0)
    t.receive(encode_data(1, b"x"), 0.1)
    t.receive(b"\x00", 0.1)
    assert t.ignored == 2
    assert not t.done


def test_gives_up_after_retries_with_error_packet() -> None:
    t, _ = transfer(b"s" * 2000, rrq(), TransferLimits(timeout=2.0, retries=2))
    t.datagrams_to_send(0.0)
    now = 0.0
    for _ in range(2):
        now = t.get_timer() or 0.0
        t.handle_timer(now)
        assert len(t.datagrams_to_send(now)) == 1
    now = t.get_timer() or 0.0
    t.handle_timer(now)
    out = t.datagrams_to_send(now)
    assert [decode_packet(d) for d in out] == [
        Error(code=ErrorCode.NOT_DEFINED, message="transfer timed out")
    ]
    assert t.outcome is Outcome.TIMEOUT
    assert t.get_timer() is None
    t.receive(encode_ack(1), now)  # too late
    assert t.datagrams_to_send(now) == []


def test_negotiated_timeout_sets_the_timer() -> None:
    t, _ = transfer(b"x", rrq("f", ("timeout", "5")))
    t.datagrams_to_send(10.0)
    assert t.get_timer() == 15.0


def test_block_numbers_wrap_past_65535() -> None:
    # 65540 blocks of 8 bytes: the wire numbers go ..., 65535, 0, 1, ... and the final short
    # block is number 65540 % 65536 = 4.
    data = bytes(range(256)) * (65536 * 8 // 256) + b"x" * 24 + b"end"
    assert len(data) // 8 + 1 == 65540
    t, source = transfer(data, rrq("f", ("blksize", "8"), ("windowsize", "16")))
    assert run_to_end(t) == data
    assert t.outcome is Outcome.COMPLETED
    assert source.reads == 65540


def test_duplicate_ack_across_the_wrap_is_still_a_duplicate() -> None:
    data = b"w" * (65537 * 8 + 3)
    limits = TransferLimits(max_windowsize=65535, max_window_bytes=65535 * 8)
    t, _ = transfer(data, rrq("f", ("blksize", "8"), ("windowsize", "65535")), limits)
    t.datagrams_to_send(0.0)
    t.receive(encode_ack(0), 0.0)
    assert len(t.datagrams_to_send(0.0)) == 65535
    t.receive(encode_ack(65535), 0.0)
    flight = t.datagrams_to_send(0.0)
    assert [d[2:4] for d in flight] == [b"\x00\x00", b"\x00\x01", b"\x00\x02"]
    t.receive(encode_ack(65535), 0.0)  # duplicate from before the wrap
    assert t.datagrams_to_send(0.0) == []
    t.receive(encode_ack(2), 0.0)
    assert t.outcome is Outcome.COMPLETED


@given(st.lists(st.binary(max_size=80), max_size=30))
def test_no_datagram_sequence_makes_a_transfer_raise(datagrams: list[bytes]) -> None:
    t, _ = transfer(b"p" * 3000, rrq("f", ("blksize", "512"), ("windowsize", "2")))
    now = 0.0
    for dgram in datagrams:
        t.receive(dgram, now)
        t.datagrams_to_send(now)
        now += 0.4
        t.handle_timer(now)
    assert t.outcome in (None, *Outcome)


def test_abort_ends_the_transfer_with_the_given_outcome() -> None:
    t, _ = transfer(b"x" * 600, rrq())
    t.datagrams_to_send(0.0)
    t.abort(Outcome.UNREACHABLE, "gone")
    assert (t.outcome, t.error_message, t.get_timer()) == (Outcome.UNREACHABLE, "gone", None)
    t.abort(Outcome.ABORTED, "again")
    assert t.outcome is Outcome.UNREACHABLE

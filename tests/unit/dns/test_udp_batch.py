"""The recvmmsg/sendmmsg batch: struct layouts and slot bookkeeping, with no traffic."""

from __future__ import annotations

import ctypes
import socket
import sys
from collections.abc import Iterator

import pytest

from ddi.dns import udp_batch
from tests.ci import unless

needs_batch = unless(udp_batch.AVAILABLE, udp_batch.UNAVAILABLE_REASON)


@pytest.fixture
def sock() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        yield s


def test_struct_layouts_follow_the_platform_word() -> None:
    word = ctypes.sizeof(ctypes.c_void_p)
    assert 2 * word == udp_batch.IOVEC_SIZE
    assert udp_batch.Msghdr.msg_name.offset == 0
    assert udp_batch.Msghdr.msg_iov.offset == 2 * word  # socklen_t padded to a word
    assert ctypes.sizeof(udp_batch.Msghdr) + word == udp_batch.MMSGHDR_SIZE
    if word == 8:
        assert ctypes.sizeof(udp_batch.Msghdr) == 56
        assert udp_batch.MMSGHDR_SIZE == 64
        assert udp_batch.Mmsghdr.msg_len.offset == 56


def test_available_on_linux_and_says_why_not_elsewhere() -> None:
    if sys.platform.startswith("linux"):
        assert udp_batch.AVAILABLE, udp_batch.UNAVAILABLE_REASON
    else:
        assert not udp_batch.AVAILABLE
        assert udp_batch.UNAVAILABLE_REASON


@needs_batch
def test_only_inet_datagram_families_are_taken() -> None:
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unix,
        pytest.raises(ValueError, match="address family"),
    ):
        udp_batch.BatchSocket(unix)


@needs_batch
def test_slots_must_hold_a_header(sock: socket.socket) -> None:
    with pytest.raises(ValueError, match="slot"):
        udp_batch.BatchSocket(sock, slots=4, slot_size=8)
    with pytest.raises(ValueError, match="slot"):
        udp_batch.BatchSocket(sock, slots=0)


@needs_batch
def test_nothing_waiting_receives_nothing(sock: socket.socket) -> None:
    sock.bind(("127.0.0.1", 0))
    batch = udp_batch.BatchSocket(sock, slots=4, slot_size=64)
    assert batch.receive() == 0
    assert batch.datagrams() == []
    assert batch.receive_calls == 1


@needs_batch
def test_a_reply_larger_than_its_slot_is_not_queued(sock: socket.socket) -> None:
    batch = udp_batch.BatchSocket(sock, slots=4, slot_size=64)
    assert not batch.queue_reply(0, bytes(65))
    assert not batch.queue_body(0, bytes(63))
    assert batch.queued == 0
    assert batch.queue_reply(0, bytes(64))
    assert batch.queue_body(1, bytes(62))
    assert batch.queued == 2


@needs_batch
def test_replies_fill_the_slot_they_answer(sock: socket.socket) -> None:
    batch = udp_batch.BatchSocket(sock, slots=4, slot_size=32)
    batch.view[64:66] = b"\xab\xcd"  # the ID of the query received in slot 2
    assert batch.queue_body(2, b"body")
    assert batch.queue_reply(3, b"\x01\x02whole")
    assert bytes(batch.buffer[64:70]) == b"\xab\xcdbody"
    assert bytes(batch.buffer[96:103]) == b"\x01\x02whole"
    assert batch.queued == 2


@needs_batch
def test_flush_with_nothing_queued_makes_no_call(sock: socket.socket) -> None:
    batch = udp_batch.BatchSocket(sock, slots=4, slot_size=64)
    assert batch.flush() == (0, 0)
    assert batch.send_calls == 0

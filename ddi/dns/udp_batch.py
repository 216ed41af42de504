"""Batched UDP receive and send with Linux ``recvmmsg(2)`` and ``sendmmsg(2)`` through ctypes.

One ``receive`` fills up to ``slots`` preallocated buffers with one system call; the replies
queued for them go out with one ``flush``. The DNS transport uses it so that a full batch of
answers costs two system calls instead of two per query.

Memory layout, all allocated once:

* ``slots`` receive buffers of ``slot_size`` bytes in one bytearray. A reply is written into
  the buffer of the datagram it answers: the query's ID is already in its first two bytes, so
  a cache hit only writes the cached body after it, and a compiled answer (ddi.dns.compiled)
  writes its header and answer around the question already there (``queue_written``).
* ``slots`` sockaddr buffers the kernel fills with the peers' addresses. The send headers
  point at them, so a reply goes back to its peer with no address parsing; ``peer(i)`` builds
  the Python address tuple only when the caller needs one (slow path, forwarding, logs).
* Two ``mmsghdr`` arrays (receive and send) with one ``iovec`` each per slot. The receive side
  is restored from a template after each batch, because the kernel writes ``msg_namelen``,
  ``msg_len`` and ``msg_flags`` back. The send side is prefilled so that reply ``k`` goes from
  buffer ``k`` to peer ``k``: while every datagram of a batch is answered in order only the
  ``iov_len`` word is written per reply; a gap (a query dropped or answered later) moves the
  following replies down and rewrites their name and buffer pointers.

Rules:
* Struct layouts come from ``ctypes.Structure`` (checked against the platform's word size at
  import); no hard-coded offsets.
* Never blocks: both calls pass ``MSG_DONTWAIT``.
* A datagram longer than its slot is flagged ``MSG_TRUNC`` by the kernel (recvmmsg(2) via
  recvmsg(2)); ``truncated(i)`` reports it and the caller decides.
* ``flush`` never raises: it returns how many replies went out and how many could not.

``AVAILABLE`` is False (and ``UNAVAILABLE_REASON`` says why) where libc has no ``recvmmsg``
or ``sendmmsg``; callers then use plain ``recvfrom``/``sendto``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import struct
import sys
from typing import Any

MSG_DONTWAIT = 0x40
MSG_TRUNC = 0x20
"""Linux <bits/socket.h> values (the same on every Linux architecture)."""

SOCKADDR_SIZE = 128
"""sizeof(struct sockaddr_storage)."""

_SOCKADDR_LEN = {socket.AF_INET: 16, socket.AF_INET6: 28}
"""sizeof(struct sockaddr_in), sizeof(struct sockaddr_in6): the same on every Linux ABI."""

_RETRY_ERRNOS = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ENOBUFS}


class Iovec(ctypes.Structure):
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class Msghdr(ctypes.Structure):
    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),  # socklen_t
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


class Mmsghdr(ctypes.Structure):
    _fields_ = (("msg_hdr", Msghdr), ("msg_len", ctypes.c_uint))


WORD = ctypes.sizeof(ctypes.c_void_p)
MMSGHDR_SIZE = ctypes.sizeof(Mmsghdr)
IOVEC_SIZE = ctypes.sizeof(Iovec)
_NAME_OFFSET = Mmsghdr.msg_hdr.offset + Msghdr.msg_name.offset
_FLAGS_OFFSET = Mmsghdr.msg_hdr.offset + Msghdr.msg_flags.offset
_LEN_OFFSET = Mmsghdr.msg_len.offset
# The word and 32-bit views below index these fields; every offset must fall on its unit.
# A "P" memoryview writes pointer-sized words: pointers, and size_t (the same size on Linux).
assert ctypes.sizeof(ctypes.c_size_t) == WORD
assert IOVEC_SIZE == 2 * WORD
assert MMSGHDR_SIZE % WORD == 0
assert _NAME_OFFSET % WORD == 0
assert _FLAGS_OFFSET % 4 == 0
assert _LEN_OFFSET % 4 == 0
assert ctypes.sizeof(ctypes.c_uint) == ctypes.sizeof(ctypes.c_int) == 4
if WORD == 8 and sys.platform == "linux":
    assert MMSGHDR_SIZE == 64, MMSGHDR_SIZE  # x86-64, aarch64: msghdr 56 + msg_len + padding


def _load() -> tuple[Any, Any, str]:
    if not sys.platform.startswith("linux"):
        return None, None, f"recvmmsg is Linux only (platform {sys.platform})"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        recvmmsg = libc.recvmmsg
        sendmmsg = libc.sendmmsg
    except (OSError, AttributeError) as exc:
        return None, None, f"libc has no recvmmsg/sendmmsg: {exc}"
    recvmmsg.argtypes = (
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    )
    recvmmsg.restype = ctypes.c_int
    sendmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
    sendmmsg.restype = ctypes.c_int
    return recvmmsg, sendmmsg, ""


_recvmmsg, _sendmmsg, UNAVAILABLE_REASON = _load()
AVAILABLE = _recvmmsg is not None


def _address(buffer: Any) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


class BatchSocket:
    """Batched I/O on a bound, non-blocking UDP socket (AF_INET or AF_INET6).

    The socket stays owned by the caller, who must not close it while this object is used.
    """

    def __init__(self, sock: socket.socket, slots: int = 64, slot_size: int = 4096) -> None:
        if not AVAILABLE:
            raise OSError(errno.ENOSYS, UNAVAILABLE_REASON)
        if sock.family not in _SOCKADDR_LEN:
            raise ValueError(f"unsupported address family {sock.family!r}")
        if slots < 1 or slot_size < 12:
            raise ValueError("need at least one slot of at least 12 bytes")
        self.sock = sock
        self.family = sock.family
        self.slots = slots
        self.slot_size = slot_size
        self._fd = sock.fileno()
        namelen = _SOCKADDR_LEN[sock.family]

        self.buffer = bytearray(slots * slot_size)
        self.view = memoryview(self.buffer)
        self._names = bytearray(slots * SOCKADDR_SIZE)
        self._names_view = memoryview(self._names)
        self._recv_iov = bytearray(slots * IOVEC_SIZE)
        self._send_iov = bytearray(slots * IOVEC_SIZE)
        self._recv_hdrs = bytearray(slots * MMSGHDR_SIZE)
        self._send_hdrs = bytearray(slots * MMSGHDR_SIZE)

        buffer_at = _address(self.buffer)
        names_at = _address(self._names)
        recv_iov_at = _address(self._recv_iov)
        send_iov_at = _address(self._send_iov)
        self._recv_at = _address(self._recv_hdrs)
        self._send_at = _address(self._send_hdrs)
        self._buffer_at = [buffer_at + i * slot_size for i in range(slots)]
        self._name_at = [names_at + i * SOCKADDR_SIZE for i in range(slots)]
        self.offsets = [i * slot_size for i in range(slots)]

        recv_iov = (Iovec * slots).from_buffer(self._recv_iov)
        send_iov = (Iovec * slots).from_buffer(self._send_iov)
        recv = (Mmsghdr * slots).from_buffer(self._recv_hdrs)
        send = (Mmsghdr * slots).from_buffer(self._send_hdrs)
        for i in range(slots):
            recv_iov[i].iov_base = send_iov[i].iov_base = self._buffer_at[i]
            recv_iov[i].iov_len = slot_size
            for hdrs, iov_at in ((recv, recv_iov_at), (send, send_iov_at)):
                hdr = hdrs[i].msg_hdr
                hdr.msg_name = self._name_at[i]
                hdr.msg_namelen = SOCKADDR_SIZE if hdrs is recv else namelen
                hdr.msg_iov = iov_at + i * IOVEC_SIZE
                hdr.msg_iovlen = 1
        del recv_iov, send_iov, recv, send  # release the exports before taking snapshots
        self._recv_template = bytes(self._recv_hdrs)
        self._send_template = bytes(self._send_hdrs)
        self._send_iov_template = bytes(self._send_iov)

        self._u32 = memoryview(self._recv_hdrs).cast("I")
        self.lengths = self._u32[_LEN_OFFSET // 4 :: MMSGHDR_SIZE // 4]
        """msg_len of each receive slot (valid for the first ``received`` after ``receive``)."""
        self._flags = self._u32[_FLAGS_OFFSET // 4 :: MMSGHDR_SIZE // 4]
        self._send_words = memoryview(self._send_hdrs).cast("P")
        self._send_iov_words = memoryview(self._send_iov).cast("P")
        self._name_word = _NAME_OFFSET // WORD
        self._hdr_words = MMSGHDR_SIZE // WORD

        # sin_addr at offset 4 of a sockaddr_in, sin6_addr at offset 8 of a sockaddr_in6.
        slot = "4xI120x" if sock.family == socket.AF_INET else "8x16s104x"
        self._host_readers = [
            struct.Struct("=" + slot * n).unpack_from for n in range(1, slots + 1)
        ]

        self.received = 0
        self.queued = 0
        self._compacted = False
        self.receive_calls = 0
        self.send_calls = 0

    # --- receive -------------------------------------------------------------------------------

    def receive(self) -> int:
        """Receive up to ``slots`` waiting datagrams into the slots; drops any replies still
        queued (call ``flush`` first).

        Returns:
            The number of datagrams received, 0 when none is waiting.

        Raises:
            OSError: the socket reported an error other than "nothing waiting" / "interrupted".
        """
        if self.received:
            # The kernel wrote msg_namelen, msg_len and msg_flags back: restore the used headers.
            used = self.received * MMSGHDR_SIZE
            self._recv_hdrs[:used] = self._recv_template[:used]
        self.received = 0
        self.queued = 0
        self.receive_calls += 1
        n: int = _recvmmsg(self._fd, self._recv_at, self.slots, MSG_DONTWAIT, None)
        if n < 0:
            err = ctypes.get_errno()
            if err in _RETRY_ERRNOS:
                return 0
            raise OSError(err, os.strerror(err))
        self.received = n
        return n

    def datagrams(self) -> list[bytes | None]:
        """Each received datagram whole, in slot order; None for one that fills its slot
        (possibly truncated: see ``truncated``)."""
        view = self.view
        size = self.slot_size
        return [
            view[o : o + n].tobytes() if n < size else None
            for o, n in zip(self.offsets, self.lengths[: self.received], strict=False)
        ]

    def hosts(self) -> tuple[Any, ...]:
        """Each received datagram's sender address, raw, in slot order: a hashable key read
        without formatting it (response-rate limiting looks senders up by it), all in one
        ``unpack_from``. For IPv4 the address's 32-bit word in host byte order (an ``int``),
        for IPv6 its 16 bytes."""
        n = self.received
        if not n:
            return ()
        unpack = self._host_readers[n - 1]
        return unpack(self._names)

    def datagram(self, i: int) -> bytes:
        """The datagram received in slot ``i`` (at most ``slot_size`` bytes)."""
        o = self.offsets[i]
        return self.view[o : o + self.lengths[i]].tobytes()

    def truncated(self, i: int) -> bool:
        """Whether the kernel cut the datagram in slot ``i`` to the slot size (MSG_TRUNC)."""
        return bool(self._flags[i] & MSG_TRUNC)

    def peer(self, i: int) -> tuple[Any, ...]:
        """The sender of slot ``i`` as ``recvfrom`` would give it: (host, port) for IPv4,
        (host, port, flowinfo, scope_id) for IPv6."""
        o = i * SOCKADDR_SIZE
        name = self._names_view
        port = int.from_bytes(name[o + 2 : o + 4], "big")
        if self.family == socket.AF_INET:
            return socket.inet_ntop(socket.AF_INET, name[o + 4 : o + 8]), port
        flowinfo = int.from_bytes(name[o + 4 : o + 8], "big")
        scope_id = int.from_bytes(name[o + 24 : o + 28], sys.byteorder)
        return socket.inet_ntop(socket.AF_INET6, name[o + 8 : o + 24]), port, flowinfo, scope_id

    # --- send ----------------------------------------------------------------------------------

    def queue_reply(self, i: int, reply: bytes) -> bool:
        """Queue ``reply`` to the sender of slot ``i`` for the next ``flush``.

        Returns:
            False when the reply does not fit the slot (send it another way).
        """
        n = len(reply)
        if n > self.slot_size:
            return False
        o = self.offsets[i]
        self.view[o : o + n] = reply
        self._queue(i, n)
        return True

    def queue_body(self, i: int, body: bytes) -> bool:
        """Queue the query's own 2-byte ID followed by ``body`` (a cached reply after its ID)
        to the sender of slot ``i``. Returns False when it does not fit the slot."""
        n = len(body) + 2
        if n > self.slot_size:
            return False
        o = self.offsets[i] + 2
        self.view[o : o + n - 2] = body
        k = self.queued
        if k != i:
            self._move(k, i)
        self._send_iov_words[2 * k + 1] = n
        self.queued = k + 1
        return True

    def queue_written(self, i: int, n: int) -> None:
        """Queue the first ``n`` bytes of slot ``i`` (a reply written over the query in place,
        its ID kept) to the sender of slot ``i``; ``n`` is at most ``slot_size``."""
        k = self.queued
        if k != i:
            self._move(k, i)
        self._send_iov_words[2 * k + 1] = n
        self.queued = k + 1

    def _queue(self, i: int, n: int) -> None:
        k = self.queued
        if k != i:
            self._move(k, i)
        self._send_iov_words[2 * k + 1] = n
        self.queued = k + 1

    def _move(self, k: int, i: int) -> None:
        """Reply ``k`` answers slot ``i``: point send header ``k`` at peer ``i`` and iovec
        ``k`` at buffer ``i`` (restored from the template by ``flush``)."""
        self._send_words[k * self._hdr_words + self._name_word] = self._name_at[i]
        self._send_iov_words[2 * k] = self._buffer_at[i]
        self._compacted = True

    def flush(self) -> tuple[int, int]:
        """Send the queued replies with ``sendmmsg``.

        Returns:
            (sent, failed): replies the kernel took, and replies given up.
        """
        total = self.queued
        self.queued = 0
        sent = failed = 0
        retried = False
        while sent + failed < total:
            start = sent + failed
            self.send_calls += 1
            n: int = _sendmmsg(
                self._fd, self._send_at + start * MMSGHDR_SIZE, total - start, MSG_DONTWAIT
            )
            if n > 0:
                # sendmmsg(2): an error after the first message ends the call early with the
                # count sent so far; "the caller can retry the transmission, starting at the
                # first failed message".
                sent += n
                continue
            err = ctypes.get_errno() if n < 0 else errno.EAGAIN
            if err in _RETRY_ERRNOS:
                if retried:
                    failed = total - sent  # the socket buffer stays full: give up the rest
                    break
                retried = True
                continue
            failed += 1  # this one message cannot go (e.g. an unreachable peer): skip it
        if self._compacted:
            self._send_hdrs[:] = self._send_template
            self._send_iov[:] = self._send_iov_template
            self._compacted = False
        return sent, failed

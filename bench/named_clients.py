"""Dynamic clients that send a hostname (option 12): a DORA for each, all at once, through one
UDP socket on port 68 bound to INTERFACE; a standalone script (run inside a lab namespace by
``bench.storm`` beside perfdhcp's avalanche), standard library only.

    python named_clients.py INTERFACE COUNT FIRST_MAC PREFIX DOMAIN OUT TIMEOUT

Client ``i`` has MAC ``FIRST_MAC + i`` and hostname ``PREFIX<i>``; every request sets the
broadcast flag (RFC 2131 §4.1: the server then broadcasts its replies, which this socket reads
whatever the client's MAC). DISCOVERs go out in a window of outstanding exchanges; a client
with no OFFER or ACK after 1 s starts over (RFC 2131 §4.1 retransmission, shortened). Writes
``"PREFIX<i>.DOMAIN yiaddr"`` per bound client to OUT and prints JSON: {"clients", "bound",
"seconds"}.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
import time

WINDOW = 256
RETRY = 1.0
_MAGIC = b"\x63\x82\x53\x63"
_HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")


def request(
    xid: int, mac: bytes, hostname: bytes, kind: int, offered: bytes | None, server: bytes
) -> bytes:
    header = _HEADER.pack(1, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(4), bytes(4), bytes(4),
                          mac + bytes(10), b"", b"")  # fmt: skip
    options = bytes((53, 1, kind, 12, len(hostname))) + hostname
    if offered is not None:
        options += bytes((50, 4)) + offered + bytes((54, 4)) + server
    return header + _MAGIC + options + bytes((55, 3, 1, 3, 6, 255))


def reply(data: bytes) -> tuple[int, int, bytes] | None:
    """(xid, message type, yiaddr) of a BOOTREPLY, or None."""
    if len(data) < 243 or data[0] != 2 or data[236:240] != _MAGIC:
        return None
    pos, kind = 240, 0
    while pos + 1 < len(data) and data[pos] != 255:
        if data[pos] == 0:
            pos += 1
            continue
        if data[pos] == 53:
            kind = data[pos + 2]
        pos += 2 + data[pos + 1]
    return struct.unpack_from("!I", data, 4)[0], kind, data[16:20]


def server_id(data: bytes) -> bytes | None:
    """Option 54 of a reply, or None."""
    pos = 240
    while pos + 1 < len(data) and data[pos] != 255:
        if data[pos] == 0:
            pos += 1
            continue
        if data[pos] == 54 and data[pos + 1] == 4:
            return data[pos + 2 : pos + 6]
        pos += 2 + data[pos + 1]
    return None


def main(argv: list[str]) -> int:
    interface, count, first, prefix, domain, out, timeout = argv
    n, base, wait = int(count), int(first.replace(":", ""), 16), float(timeout)
    macs = [(base + i).to_bytes(6, "big") for i in range(n)]
    names = [f"{prefix}{i}".encode() for i in range(n)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    sock.bind(("0.0.0.0", 68))
    sock.setblocking(False)
    to = ("255.255.255.255", 67)
    bound: dict[int, bytes] = {}
    sent: dict[int, float] = {}  # client -> when its current step went out
    offered: dict[int, bytes] = {}
    server = bytes(4)  # option 54 of the OFFERs (RFC 2131 §4.3.1)
    todo = list(range(n - 1, -1, -1))
    started = time.monotonic()
    while len(bound) < n and time.monotonic() - started < wait:
        now = time.monotonic()
        for i, at in list(sent.items()):
            if now - at > RETRY:  # no answer: start over
                del sent[i]
                offered.pop(i, None)
                todo.append(i)
        while todo and len(sent) < WINDOW:
            i = todo.pop()
            sock.sendto(request(i + 1, macs[i], names[i], 1, None, server), to)
            sent[i] = now
        readable, _, _ = select.select([sock], [], [], 0.05)
        if not readable:
            continue
        while True:
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                break
            parsed = reply(data)
            if parsed is None or not 1 <= parsed[0] <= n:
                continue
            i, kind, yiaddr = parsed[0] - 1, parsed[1], parsed[2]
            if i in bound or i not in sent:
                continue
            if kind == 2 and i not in offered:  # OFFER: REQUEST it (SELECTING)
                server = server_id(data) or server
                offered[i] = yiaddr
                sock.sendto(request(i + 1, macs[i], names[i], 3, yiaddr, server), to)
                sent[i] = time.monotonic()
            elif kind == 5 and i in offered:  # ACK
                bound[i] = yiaddr
                del sent[i]
            elif kind == 6:  # NAK: start over
                del sent[i]
                offered.pop(i, None)
                todo.append(i)
    seconds = time.monotonic() - started
    with open(out, "w") as f:
        for i, ip in sorted(bound.items()):
            f.write(f"{names[i].decode()}.{domain} {socket.inet_ntoa(ip)}\n")
    print(json.dumps({"clients": n, "bound": len(bound), "seconds": round(seconds, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Resolve a list of names against one DNS server as fast as it answers; a standalone script
(run inside a lab namespace by ``bench.storm``), standard library only.

    python resolve.py SERVER PORT FILE TIMEOUT      # FILE: "name expected-ipv4" per line

Sends every query at once (pacing by a window of outstanding queries), re-sends the unanswered
every 0.5 s, and stops when every name has answered with its expected address or the timeout
passes. Prints JSON: {"names", "resolved", "wrong", "seconds"}.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
import time

WINDOW = 256
RESEND = 0.5


def query(qid: int, name: str) -> bytes:
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    return header + qname + struct.pack("!HH", 1, 1)


def _skip_name(msg: bytes, pos: int) -> int:
    while True:
        length = msg[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length == 0:
            return pos + 1
        pos += 1 + length


def answer_a(msg: bytes) -> tuple[int, int, list[str]]:
    """(id, rcode, A addresses) of a reply."""
    qid, flags, qd, an, _, _ = struct.unpack_from("!HHHHHH", msg)
    pos = 12
    for _ in range(qd):
        pos = _skip_name(msg, pos) + 4
    addresses = []
    for _ in range(an):
        pos = _skip_name(msg, pos)
        rtype, _, _, rdlen = struct.unpack_from("!HHIH", msg, pos)
        pos += 10
        if rtype == 1 and rdlen == 4:
            addresses.append(socket.inet_ntoa(msg[pos : pos + 4]))
        pos += rdlen
    return qid, flags & 0xF, addresses


def main(argv: list[str]) -> int:
    server, port, path, timeout = argv[0], int(argv[1]), argv[2], float(argv[3])
    names: list[tuple[str, str]] = []
    with open(path) as f:
        for line in f:
            if line.strip():
                name, ip = line.split()
                names.append((name, ip))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.connect((server, port))
    sock.setblocking(False)
    pending = set(range(len(names)))
    sent_at: dict[int, float] = {}
    wrong: set[int] = set()
    started = time.monotonic()
    deadline = started + timeout
    while pending and time.monotonic() < deadline:
        now = time.monotonic()
        in_flight = sum(1 for i in pending if now - sent_at.get(i, -1e9) < RESEND)
        for i in sorted(pending):
            if in_flight >= WINDOW:
                break
            if now - sent_at.get(i, -1e9) >= RESEND:
                try:
                    sock.send(query(i, names[i][0]))
                except BlockingIOError:
                    break
                sent_at[i] = now
                in_flight += 1
        readable, _, _ = select.select([sock], [], [], 0.05)
        while readable:
            try:
                msg = sock.recv(4096)
            except BlockingIOError:
                break
            try:
                qid, rcode, addresses = answer_a(msg)
            except (struct.error, IndexError):
                continue
            if qid in pending and rcode == 0 and addresses:
                pending.discard(qid)
                if names[qid][1] not in addresses:
                    wrong.add(qid)
    seconds = time.monotonic() - started
    resolved = len(names) - len(pending) - len(wrong)
    print(json.dumps({"names": len(names), "resolved": resolved, "wrong": len(wrong),
                      "seconds": round(seconds, 3)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

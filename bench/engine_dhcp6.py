"""The DHCPv6 engine alone: microseconds per message through decode, ``Dhcp6Engine.handle`` and
encode (as the transport does them), no sockets and no store.

N clients (DUID-LLT, one IA_NA each, as ``perfdhcp -6`` sends) each SOLICIT, then REQUEST the
advertised address; every REPLY's leases are applied to the index as committed changes, as the
store's subscription does (a ``Lease6Image`` each, as the commit makes them). Then each RENEWs.
The pool is a /64's. The best of ``--rounds`` runs is reported per message type.

``python -m bench.engine_dhcp6 [--clients 20000] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network

from ddi.dhcp6.decision import Inbound6, Reply6
from ddi.dhcp6.engine import Dhcp6Engine, Dhcp6Settings
from ddi.dhcp6.options import MessageType, OptionCode
from ddi.dhcp6.packet import decode_message, encode_message
from ddi.ipam.models import Change, Kind, Op
from ddi.ipam.models6 import Lease6Image, Pool6, Subnet6
from ddi.ipam.views import IpamIndex

NOW = 1_800_000_000.0
SERVER_DUID = bytes.fromhex("00030001525400ffff01")
INBOUND = Inbound6(interface="eth0", src=IPv6Address("fe80::1"), src_port=546)
SUBNET = Subnet6(
    name="lan6",
    cidr=IPv6Network("2001:db8:1::/64"),
    pools=(Pool6(start=IPv6Address("2001:db8:1::1:0"), end=IPv6Address("2001:db8:1::ffff:ffff")),),
    interface="eth0",
    preferred_lifetime=43200,
    valid_lifetime=86400,
)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("!HH", code, len(value)) + value


def wire(n: int, kind: MessageType, ia_body: bytes = b"") -> bytes:
    """A message as perfdhcp -6 sends it: client id (DUID-LLT), elapsed time, IA_NA, ORO."""
    duid = struct.pack("!HHI", 1, 1, 0x1234) + b"\x02" + n.to_bytes(5, "big")
    options = _option(OptionCode.CLIENTID, duid) + _option(OptionCode.ELAPSED_TIME, b"\0\0")
    if kind is not MessageType.SOLICIT:
        options += _option(OptionCode.SERVERID, SERVER_DUID)
    options += _option(OptionCode.IA_NA, struct.pack("!III", 1, 0, 0) + ia_body)
    options += _option(OptionCode.ORO, struct.pack("!H", OptionCode.DNS_SERVERS))
    return bytes((kind,)) + (n & 0xFFFFFF).to_bytes(3, "big") + options


def run(clients: int) -> dict[str, float]:
    index = IpamIndex(subnets6=(SUBNET,), domain="site.example")
    engine = Dhcp6Engine(Dhcp6Settings(server_duid=SERVER_DUID), index)
    seq = 0

    def commit(decision: object) -> None:
        nonlocal seq
        if isinstance(decision, Reply6):
            changes = []
            for lease in decision.commit:
                seq += 1
                image = Lease6Image(lease)  # as the store's commit hands it to the index
                changes.append(Change(epoch=1, seq=seq, kind=Kind.LEASE6,
                                      object_id=image.object_id, op=Op.UPSERT,
                                      image=image))  # fmt: skip
            index.apply(changes)

    def timed(
        packets: list[bytes], after: Callable[[object], None] | None
    ) -> tuple[float, list[Reply6]]:
        total = 0.0
        handle = engine.handle
        replies = []
        for data in packets:
            began = time.perf_counter()
            decision = handle(decode_message(data), INBOUND, NOW)
            assert isinstance(decision, Reply6), decision
            encode_message(decision.message)
            total += time.perf_counter() - began
            replies.append(decision)
            if after is not None:
                after(decision)
        return 1e6 * total / max(1, len(packets)), replies

    result: dict[str, float] = {}
    result["solicit"], advertised = timed(
        [wire(n, MessageType.SOLICIT) for n in range(clients)], None
    )
    requests = []
    for n, reply in enumerate(advertised):
        ia = dict(reply.message.options)[OptionCode.IA_NA]
        requests.append(wire(n, MessageType.REQUEST, ia[12:]))
    result["request"], _ = timed(requests, commit)
    result["renew"], _ = timed([wire(n, MessageType.RENEW) for n in range(clients)], commit)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_dhcp6", description=__doc__)
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for key, value in run(args.clients).items():
            best[key] = min(value, best.get(key, value))
    print(f"DHCPv6 decode + handle + encode, {args.clients} clients, best of {args.rounds} (us):")
    for key, value in best.items():
        print(f"  {key:10} {value:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The DHCP engine alone: microseconds per ``DhcpEngine.handle`` (decode included, as the
transport does it), no sockets and no store.

N clients (distinct MACs) each DISCOVER, then REQUEST the offered address (SELECTING); every
ACK's lease is applied to the index as a committed change, as the store's subscription does.
Then each renews (RENEWING). The pool is a /16's (65,279 addresses). The best of ``--rounds``
runs is reported per message type, and a last figure: DISCOVERs from new clients once the pool
is full (the path the issue found walking the whole pool). Times are the thread's CPU time
(``time.thread_time``), so a shared machine's preemption does not count.

``python -m bench.engine_dhcp [--clients 20000] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

from ddi.config import DhcpConfig
from ddi.dhcp.decision import Inbound, Reply
from ddi.dhcp.engine import DhcpEngine
from ddi.dhcp.options import MessageType, OptionCode
from ddi.dhcp.packet import BOOTREQUEST, DhcpPacket, decode_packet, encode_packet
from ddi.ipam.models import Change, Kind, Op, Pool, Subnet
from ddi.ipam.views import IpamIndex

NOW = 1_800_000_000.0
SERVER = IPv4Address("198.18.0.1")
INBOUND = Inbound(interface="eth0", local_ip=SERVER)
PRL = bytes((1, 3, 6, 15, 28, 12, 42, 26))


def subnet(pool_end: str) -> Subnet:
    return Subnet(
        name="lan",
        cidr=IPv4Network("198.18.0.0/16"),
        gateway=SERVER,
        dns_servers=(SERVER,),
        domain="site.example",
        lease_time=3600,
        pools=(Pool(start=IPv4Address("198.18.1.0"), end=IPv4Address(pool_end)),),
        interface="eth0",
    )


def wire(n: int, kind: MessageType, **options: bytes) -> bytes:
    opts = [(int(OptionCode.MESSAGE_TYPE), bytes((kind,)))]
    opts += [(int(OptionCode[name.upper()]), value) for name, value in options.items()]
    opts.append((int(OptionCode.PARAMETER_REQUEST_LIST), PRL))
    packet = DhcpPacket(
        op=BOOTREQUEST,
        xid=n,
        chaddr=b"\x02" + n.to_bytes(5, "big") + bytes(10),
        options=tuple(opts),
    )
    return encode_packet(packet)


def run(clients: int, pool_end: str) -> dict[str, float]:
    index = IpamIndex(subnets=(subnet(pool_end),), domain="site.example")
    engine = DhcpEngine(DhcpConfig(), index)
    seq = 0

    def commit(decision: object) -> None:
        nonlocal seq
        if isinstance(decision, Reply) and decision.commit is not None:
            seq += 1
            lease = decision.commit
            index.apply([Change(epoch=1, seq=seq, kind=Kind.LEASE, object_id=str(lease.ip),
                                op=Op.UPSERT, image=lease.to_image())])  # fmt: skip

    def timed(packets: list[bytes], after: Callable[[object], None] | None) -> float:
        total = 0.0
        handle = engine.handle
        for data in packets:
            began = time.thread_time()
            decision = handle(decode_packet(data), INBOUND, NOW)
            total += time.thread_time() - began
            if after is not None:
                after(decision)
        return 1e6 * total / max(1, len(packets))

    offers: list[IPv4Address] = []
    discovers = [wire(n, MessageType.DISCOVER) for n in range(clients)]
    total = 0.0
    handle = engine.handle
    for data in discovers:
        began = time.thread_time()
        decision = handle(decode_packet(data), INBOUND, NOW)
        total += time.thread_time() - began
        assert isinstance(decision, Reply)
        offers.append(decision.packet.yiaddr)
    result = {"discover": 1e6 * total / clients}
    requests = [
        wire(n, MessageType.REQUEST, requested_address=ip.packed, server_identifier=SERVER.packed)
        for n, ip in enumerate(offers)
    ]
    result["request"] = timed(requests, commit)
    renewals = []
    for n, ip in enumerate(offers):
        plain = wire(n, MessageType.REQUEST)
        renewals.append(plain[:12] + ip.packed + plain[16:])  # ciaddr set: RENEWING
    result["renew"] = timed(renewals, commit)
    newcomers = [wire(10_000_000 + n, MessageType.DISCOVER) for n in range(200)]
    result["discover_full"] = timed(newcomers, None)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_dhcp", description=__doc__)
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    # The pool holds exactly the clients, so the last figure meets a full pool.
    pool_end = str(IPv4Address("198.18.1.0") + args.clients - 1)
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for key, value in run(args.clients, pool_end).items():
            best[key] = min(value, best.get(key, value))
    print(f"engine.handle, {args.clients} clients, best of {args.rounds} (us per packet):")
    for key, value in best.items():
        print(f"  {key:14} {value:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

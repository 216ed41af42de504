"""What options by definition and client classes cost the DHCP engine, side by side in one
process: the same clients DISCOVER, REQUEST (SELECTING) and renew under three configurations,
taken in turn each round, and the best of ``--rounds`` is reported per configuration with its
ratio to the plain one (ratios within one run are what to compare; the machine's load moves
the absolute figures).

* ``plain``: no definitions, no classes (the fast path of rule 7 applies).
* ``options``: four global and two subnet options by definition, asked for in option 55.
* ``classes``: the same, plus three classes (every client matches one by MAC prefix, which
  has its own pool and options): each request is classified, its pools are chosen per class
  and its option list is reused per class set.

``python -m bench.engine_dhcp_options [--clients 5000] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from ipaddress import IPv4Address

from bench.engine_dhcp import INBOUND, NOW, SERVER, subnet
from ddi.config import DhcpConfig
from ddi.dhcp.classes import ClassMatch, ClientClass
from ddi.dhcp.decision import Reply
from ddi.dhcp.engine import DhcpEngine
from ddi.dhcp.option_defs import OptionDefs, make_value
from ddi.dhcp.options import MessageType, OptionCode
from ddi.dhcp.packet import BOOTREQUEST, DhcpPacket, decode_packet, encode_packet
from ddi.ipam.models import Change, Kind, Op, Pool, Subnet
from ddi.ipam.views import IpamIndex

DEFS = OptionDefs()
GLOBAL = (
    make_value(DEFS, "domain-search", "site.example, lab.site.example"),
    make_value(DEFS, "tftp-server-address", "198.18.0.5"),
    make_value(DEFS, "ntp-servers", "198.18.0.1"),
    make_value(DEFS, "time-offset", 3600, always_send=True),
)
SUBNET_OPTIONS = (
    make_value(DEFS, "wpad", "http://198.18.0.1/wpad.dat"),
    make_value(DEFS, "tftp-server-name", "tftp.site.example"),
)
CLASSES = (
    ClientClass(name="phones", match=ClassMatch(vendor_class_prefix=b"Cisco Systems")),
    ClientClass(name="ipxe", match=ClassMatch(user_class=b"iPXE")),
    ClientClass(name="lab", match=ClassMatch(mac_prefix=b"\x02\x00"),
                options=(make_value(DEFS, "tftp-server-name", "lab.site.example"),)),
)  # fmt: skip
PRL = bytes((1, 3, 6, 15, 28, 12, 42, 26, 119, 150, 252, 66))


def wire(n: int, kind: MessageType, **options: bytes) -> bytes:
    opts = [(int(OptionCode.MESSAGE_TYPE), bytes((kind,)))]
    opts += [(int(OptionCode[name.upper()]), value) for name, value in options.items()]
    opts.append((int(OptionCode.PARAMETER_REQUEST_LIST), PRL))
    chaddr = b"\x02\x00" + n.to_bytes(4, "big") + bytes(10)
    return encode_packet(DhcpPacket(op=BOOTREQUEST, xid=n, chaddr=chaddr, options=tuple(opts)))


def setup(kind: str, clients: int) -> tuple[Subnet, DhcpConfig]:
    base = subnet(str(IPv4Address("198.18.1.0") + 2 * clients - 1))
    if kind == "plain":
        return base, DhcpConfig()
    with_options = replace(base, options=SUBNET_OPTIONS)
    if kind == "options":
        return with_options, DhcpConfig(options=GLOBAL)
    (pool,) = base.pools
    half = pool.start + clients
    pools = (Pool(start=pool.start, end=half - 1, client_class="lab"),
             Pool(start=half, end=pool.end))  # fmt: skip
    return replace(with_options, pools=pools), DhcpConfig(options=GLOBAL, classes=CLASSES)


def run(kind: str, clients: int) -> float:
    """Microseconds per packet over every client's DISCOVER, REQUEST and renewal."""
    sub, config = setup(kind, clients)
    index = IpamIndex(subnets=(sub,), domain="site.example")
    engine = DhcpEngine(config, index)
    seq, total, count = 0, 0.0, 0
    for n in range(clients):
        discover = wire(n, MessageType.DISCOVER)
        began = time.perf_counter()
        offer = engine.handle(decode_packet(discover), INBOUND, NOW)
        total += time.perf_counter() - began
        assert isinstance(offer, Reply)
        assert kind == "plain" or offer.packet.get(119) is not None
        ip = offer.packet.yiaddr
        request = wire(n, MessageType.REQUEST, requested_address=ip.packed,
                       server_identifier=SERVER.packed)  # fmt: skip
        plain = wire(n, MessageType.REQUEST)
        renewal = plain[:12] + ip.packed + plain[16:]
        for data in (request, renewal):
            began = time.perf_counter()
            decision = engine.handle(decode_packet(data), INBOUND, NOW)
            total += time.perf_counter() - began
            assert isinstance(decision, Reply)
            assert decision.commit is not None
            seq += 1
            lease = decision.commit
            index.apply([Change(epoch=1, seq=seq, kind=Kind.LEASE, object_id=str(lease.ip),
                                op=Op.UPSERT, image=lease.to_image())])  # fmt: skip
        count += 3
    return 1e6 * total / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine_dhcp_options", description=__doc__
    )
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    kinds = ("plain", "options", "classes")
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for kind in kinds:
            value = run(kind, args.clients)
            best[kind] = min(value, best.get(kind, value))
    print(f"engine.handle, {args.clients} clients x 3 packets, best of {args.rounds} (us/packet):")
    for kind in kinds:
        print(f"  {kind:8} {best[kind]:7.1f}  x{best[kind] / best['plain']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

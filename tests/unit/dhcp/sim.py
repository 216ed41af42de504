"""An in-memory DHCP client and an engine harness for engine tests (no sockets, fixed time).

Every packet goes through the codec both ways, so the engine is fed and answered in bytes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ddi.config import DhcpConfig
from ddi.dhcp.decision import Commit, Decision, Drop, Inbound, Reply
from ddi.dhcp.engine import DhcpEngine
from ddi.dhcp.netboot import BootProfile
from ddi.dhcp.options import MessageType, OptionCode
from ddi.dhcp.packet import BOOTREQUEST, ZERO_ADDRESS, DhcpPacket, decode_packet, encode_packet
from ddi.ipam.models import Change, Host, Kind, Lease, Op, Pool, Record, Subnet
from ddi.ipam.views import IpamIndex

NOW = 1_800_000_000.0
SERVER = IPv4Address("198.18.0.1")
LAN = Subnet(
    name="lan",
    cidr=IPv4Network("198.18.0.0/24"),
    gateway=IPv4Address("198.18.0.1"),
    dns_servers=(IPv4Address("198.18.0.1"),),
    domain="site.example",
    lease_time=3600,
    pools=(Pool(start=IPv4Address("198.18.0.100"), end=IPv4Address("198.18.0.109")),),
    interface="eth0",
)
FAR = Subnet(
    name="far",
    cidr=IPv4Network("198.18.5.0/24"),
    gateway=IPv4Address("198.18.5.1"),
    domain="site.example",
    lease_time=600,
    pools=(Pool(start=IPv4Address("198.18.5.50"), end=IPv4Address("198.18.5.59")),),
    relay_agents=(IPv4Address("198.18.9.1"),),
)
INBOUND = Inbound(interface="eth0", local_ip=SERVER)
_ids = itertools.count(1)


def host(
    *, ip: str, hostname: str, mac: str | None = None, client_id: str | None = None, **kw: Any
) -> Host:
    return Host(
        id=f"{next(_ids):032x}",
        ip=IPv4Address(ip),
        hostname=hostname,
        mac=mac,
        client_id=client_id,
        **kw,
    )


class Harness:
    """An engine over an IpamIndex; commits are applied to the index as the store would."""

    def __init__(
        self,
        *,
        subnets: tuple[Subnet, ...] = (LAN, FAR),
        hosts: tuple[Host, ...] = (),
        leases: tuple[Lease, ...] = (),
        records: tuple[Record, ...] = (),
        profiles: dict[str, BootProfile] | None = None,
        max_offers: int = 65536,
        **config: Any,
    ) -> None:
        self.index = IpamIndex(
            subnets=subnets, hosts=hosts, leases=leases, records=records, domain="site.example"
        )
        self.config = DhcpConfig(**config)
        self.engine = DhcpEngine(
            self.config,
            self.index,
            profiles=profiles,
            domain="site.example",
            max_offers=max_offers,
        )
        self.seq = 0
        self.committed: list[Lease] = []

    def handle(
        self, packet: DhcpPacket, *, now: float = NOW, inbound: Inbound = INBOUND
    ) -> Decision:
        wire = decode_packet(encode_packet(packet, max_size=1500))
        decision = self.engine.handle(wire, inbound, now)
        lease = None
        if isinstance(decision, Reply):
            lease = decision.commit
        elif isinstance(decision, Commit):
            lease = decision.lease
        if lease is not None:
            self.commit(lease)
        return decision

    def _apply(self, kind: Kind, object_id: str, op: Op, image: dict[str, Any]) -> None:
        self.seq += 1
        change = Change(epoch=1, seq=self.seq, kind=kind, object_id=object_id, op=op, image=image)
        self.index.apply([change])

    def commit(self, lease: Lease) -> None:
        self.committed.append(lease)
        self._apply(Kind.LEASE, str(lease.ip), Op.UPSERT, lease.to_image())

    def add_host(self, h: Host) -> None:
        self._apply(Kind.HOST, h.id, Op.UPSERT, h.to_image())

    def remove_host(self, h: Host) -> None:
        self._apply(Kind.HOST, h.id, Op.DELETE, h.to_image())


def reply_of(decision: Decision) -> DhcpPacket:
    """The reply's packet as the client receives it (encoded, then decoded)."""
    assert isinstance(decision, Reply), decision
    return decode_packet(encode_packet(decision.packet, max_size=decision.max_size))


@dataclass
class ClientSim:
    """A DHCP client that speaks to a Harness."""

    mac: str
    client_id: bytes | None = None
    hostname: bytes | None = None
    prl: tuple[int, ...] = (1, 3, 6, 15, 28, 12, 42, 26)
    giaddr: IPv4Address = ZERO_ADDRESS
    relay_info: bytes | None = None
    extra: tuple[tuple[int, bytes], ...] = ()
    xid: int = field(default_factory=lambda: next(_ids))
    ip: IPv4Address | None = None
    server: IPv4Address | None = None

    def message(
        self,
        message_type: MessageType,
        *,
        ciaddr: IPv4Address = ZERO_ADDRESS,
        requested: IPv4Address | None = None,
        server_id: IPv4Address | None = None,
        flags: int = 0,
        options: tuple[tuple[int, bytes], ...] = (),
    ) -> DhcpPacket:
        opts: list[tuple[int, bytes]] = [(OptionCode.MESSAGE_TYPE, bytes((message_type,)))]
        if requested is not None:
            opts.append((OptionCode.REQUESTED_ADDRESS, requested.packed))
        if server_id is not None:
            opts.append((OptionCode.SERVER_IDENTIFIER, server_id.packed))
        if self.client_id is not None:
            opts.append((OptionCode.CLIENT_IDENTIFIER, self.client_id))
        if self.hostname is not None:
            opts.append((OptionCode.HOST_NAME, self.hostname))
        if self.prl:
            opts.append((OptionCode.PARAMETER_REQUEST_LIST, bytes(self.prl)))
        opts += self.extra
        opts += options
        if self.relay_info is not None:
            opts.append((OptionCode.RELAY_AGENT_INFORMATION, self.relay_info))
        return DhcpPacket(
            op=BOOTREQUEST,
            xid=self.xid,
            flags=flags,
            ciaddr=ciaddr,
            giaddr=self.giaddr,
            hops=1 if self.giaddr != ZERO_ADDRESS else 0,
            chaddr=bytes.fromhex(self.mac.replace(":", "")) + bytes(10),
            options=tuple(opts),
        )

    def discover(self, **kw: Any) -> DhcpPacket:
        return self.message(MessageType.DISCOVER, **kw)

    def select(self, offer: DhcpPacket) -> DhcpPacket:
        return self.message(
            MessageType.REQUEST, requested=offer.yiaddr, server_id=offer.server_identifier()
        )

    def dora(self, harness: Harness, *, now: float = NOW, inbound: Inbound = INBOUND) -> Reply:
        offer_decision = harness.handle(self.discover(), now=now, inbound=inbound)
        offer = reply_of(offer_decision)
        assert offer.message_type is MessageType.OFFER, offer
        ack_decision = harness.handle(self.select(offer), now=now, inbound=inbound)
        ack = reply_of(ack_decision)
        assert ack.message_type is MessageType.ACK, ack
        assert isinstance(ack_decision, Reply)
        self.ip = ack.yiaddr
        self.server = ack.server_identifier()
        return ack_decision


def dropped(decision: Decision) -> object:
    assert isinstance(decision, Drop), decision
    return decision.reason

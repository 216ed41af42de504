"""Per-host DHCP options (issue 3): a reservation's own values replace its subnet's in the
replies it gets; a pool client on the same subnet keeps the subnet's."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from ddi.dhcp.decision import Reply
from ddi.dhcp.options import (
    MessageType,
    OptionCode,
    decode_classless_routes,
    decode_u16,
    decode_u32,
)
from ddi.ipam.models import HostDhcpOptions, Route
from tests.unit.dhcp.sim import INBOUND, LAN, ClientSim, Harness, host, reply_of

A = IPv4Address
RESERVED_MAC = "52:54:00:00:00:01"
POOL_MAC = "52:54:00:00:00:02"
PRL = (1, 3, 6, 15, 26, 42, 121)
LAN_WITH_ROUTES = replace(
    LAN,
    mtu=1500,
    routes=(Route(destination=IPv4Network("10.0.0.0/8"), gateway=A("198.18.0.3")),),
    ntp_servers=(A("198.18.0.1"),),
)
OVERRIDES = HostDhcpOptions(
    lease_time=600,
    gateway=A("198.18.0.254"),
    dns_servers=(A("198.18.0.53"), A("198.18.0.54")),
    domain="lab.site.example",
    mtu=9000,
    routes=(Route(destination=IPv4Network("172.16.0.0/12"), gateway=A("198.18.0.4")),),
    ntp_servers=(A("198.18.0.123"),),
)


def harness(options: HostDhcpOptions | None = OVERRIDES) -> Harness:
    web1 = host(mac=RESERVED_MAC, ip="198.18.0.10", hostname="web1", dhcp=options)
    return Harness(subnets=(LAN_WITH_ROUTES,), hosts=(web1,))


def test_reserved_host_gets_its_own_options() -> None:
    h = harness()
    ack = ClientSim(mac=RESERVED_MAC, prl=PRL).dora(h)
    packet = reply_of(ack)
    assert packet.yiaddr == A("198.18.0.10")
    assert decode_u32(packet.get(OptionCode.LEASE_TIME) or b"") == 600
    # RFC 2132 §9.11/§9.12: T1 and T2 follow the host's lease time.
    assert decode_u32(packet.get(OptionCode.RENEWAL_TIME) or b"") == 300
    assert decode_u32(packet.get(OptionCode.REBINDING_TIME) or b"") == 525
    assert packet.get(OptionCode.ROUTER) == A("198.18.0.254").packed
    assert (
        packet.get(OptionCode.DOMAIN_NAME_SERVER)
        == A("198.18.0.53").packed + A("198.18.0.54").packed
    )
    assert packet.get(OptionCode.DOMAIN_NAME) == b"lab.site.example"
    assert decode_u16(packet.get(OptionCode.INTERFACE_MTU) or b"") == 9000
    assert packet.get(OptionCode.NTP_SERVERS) == A("198.18.0.123").packed
    assert packet.get(OptionCode.SUBNET_MASK) == A("255.255.255.0").packed
    assert packet.get(OptionCode.BROADCAST_ADDRESS) == A("198.18.0.255").packed
    # RFC 3442 §3: the default route in 121 goes through the host's router.
    assert decode_classless_routes(packet.get(OptionCode.CLASSLESS_STATIC_ROUTE) or b"") == (
        (IPv4Network("172.16.0.0/12"), A("198.18.0.4")),
        (IPv4Network("0.0.0.0/0"), A("198.18.0.254")),
    )
    assert ack.commit is not None
    assert ack.commit.end - ack.commit.start == 600
    assert ack.commit.subnet == "lan"


def test_pool_client_keeps_the_subnets_options() -> None:
    h = harness()
    ClientSim(mac=RESERVED_MAC, prl=PRL).dora(h)
    ack = ClientSim(mac=POOL_MAC, prl=PRL).dora(h)
    packet = reply_of(ack)
    assert packet.yiaddr in LAN.pools[0]
    assert decode_u32(packet.get(OptionCode.LEASE_TIME) or b"") == 3600
    assert decode_u32(packet.get(OptionCode.RENEWAL_TIME) or b"") == 1800
    assert packet.get(OptionCode.ROUTER) == A("198.18.0.1").packed
    assert packet.get(OptionCode.DOMAIN_NAME_SERVER) == A("198.18.0.1").packed
    assert packet.get(OptionCode.DOMAIN_NAME) == b"site.example"
    assert decode_u16(packet.get(OptionCode.INTERFACE_MTU) or b"") == 1500
    assert decode_classless_routes(packet.get(OptionCode.CLASSLESS_STATIC_ROUTE) or b"") == (
        (IPv4Network("10.0.0.0/8"), A("198.18.0.3")),
        (IPv4Network("0.0.0.0/0"), A("198.18.0.1")),
    )


def test_a_partial_override_inherits_the_rest() -> None:
    h = harness(HostDhcpOptions(gateway=A("198.18.0.254")))
    packet = reply_of(ClientSim(mac=RESERVED_MAC, prl=PRL).dora(h))
    assert decode_u32(packet.get(OptionCode.LEASE_TIME) or b"") == 3600
    assert packet.get(OptionCode.ROUTER) == A("198.18.0.254").packed
    assert packet.get(OptionCode.DOMAIN_NAME) == b"site.example"
    # The subnet's routes, with the default route through the host's router.
    assert decode_classless_routes(packet.get(OptionCode.CLASSLESS_STATIC_ROUTE) or b"") == (
        (IPv4Network("10.0.0.0/8"), A("198.18.0.3")),
        (IPv4Network("0.0.0.0/0"), A("198.18.0.254")),
    )


def test_reserved_host_without_overrides_gets_the_subnets_options() -> None:
    h = harness(None)
    packet = reply_of(ClientSim(mac=RESERVED_MAC, prl=PRL).dora(h))
    assert decode_u32(packet.get(OptionCode.LEASE_TIME) or b"") == 3600
    assert packet.get(OptionCode.ROUTER) == A("198.18.0.1").packed


def test_inform_from_a_reserved_host_gets_its_options_without_a_lease_time() -> None:
    h = harness()
    sim = ClientSim(mac=RESERVED_MAC, prl=PRL)
    inform = sim.message(MessageType.INFORM, ciaddr=A("198.18.0.10"))
    decision = h.handle(inform, inbound=INBOUND)
    assert isinstance(decision, Reply)
    packet = reply_of(decision)
    # RFC 2131 §4.3.5: no lease time in an ACK to an INFORM.
    assert packet.get(OptionCode.LEASE_TIME) is None
    assert packet.get(OptionCode.ROUTER) == A("198.18.0.254").packed
    assert decode_u16(packet.get(OptionCode.INTERFACE_MTU) or b"") == 9000

"""Engine properties: arbitrary conversations of several clients never crash the engine, never
give one address to two clients at once, and only acknowledge addresses a client may hold."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from ddi.dhcp.decision import Commit, Reply
from ddi.dhcp.options import MessageType
from ddi.dhcp.packet import ZERO_ADDRESS
from ddi.ipam.models import LeaseState, Pool
from tests.unit.dhcp.sim import LAN, NOW, SERVER, ClientSim, Harness, host

A = IPv4Address
SMALL = replace(LAN, pools=(Pool(start=A("198.18.0.100"), end=A("198.18.0.103")),))
ADDRESSES = [
    A("198.18.0.100"),
    A("198.18.0.103"),
    A("198.18.0.10"),
    A("198.18.0.50"),
    A("10.0.0.1"),
]
MACS = [f"52:54:00:00:00:0{i}" for i in range(5)]
ACTIONS = ["discover", "select", "init-reboot", "renew", "release", "decline", "inform"]

steps = st.lists(
    st.tuples(
        st.integers(0, len(MACS) - 1),
        st.sampled_from(ACTIONS),
        st.integers(0, len(ADDRESSES) - 1),
        st.integers(0, 400),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps, st.booleans())
def test_conversations_keep_addresses_unique_and_valid(
    script: list[tuple[int, str, int, int]], authoritative: bool
) -> None:
    reserved = host(mac=MACS[0], ip="198.18.0.10", hostname="r0")
    h = Harness(subnets=(SMALL,), hosts=(reserved,), authoritative=authoritative, offer_ttl=60)
    clients = [ClientSim(mac=mac) for mac in MACS]
    offers: dict[int, IPv4Address] = {}
    now = NOW
    for who, action, address_index, step in script:
        now += step
        client = clients[who]
        address = ADDRESSES[address_index]
        match action:
            case "discover":
                packet = client.discover()
            case "select":
                packet = client.message(
                    MessageType.REQUEST, requested=offers.get(who, address), server_id=SERVER
                )
            case "init-reboot":
                packet = client.message(MessageType.REQUEST, requested=address)
            case "renew":
                packet = client.message(MessageType.REQUEST, ciaddr=client.ip or address)
            case "release":
                packet = client.message(MessageType.RELEASE, ciaddr=client.ip or address)
            case "decline":
                packet = client.message(MessageType.DECLINE, requested=address)
            case _:
                packet = client.message(MessageType.INFORM, ciaddr=address)
        before = {x.ip: x for x in h.index.leases() if x.active(now)}
        decision = h.handle(packet, now=now)
        if isinstance(decision, Reply):
            reply = decision.packet
            kind = reply.message_type
            if kind is MessageType.OFFER:
                offers[who] = reply.yiaddr
            if kind is MessageType.NAK:
                assert reply.yiaddr == ZERO_ADDRESS
                assert decision.commit is None
            if decision.commit is not None:
                lease = decision.commit
                assert lease.ip in SMALL.cidr
                if who == 0:
                    assert lease.ip == reserved.ip
                else:
                    assert lease.ip in SMALL.pools[0]
                client.ip = lease.ip
        elif isinstance(decision, Commit) and decision.lease.state is LeaseState.RELEASED:
            client.ip = None
        # Invariant: a commit never takes an address another client actively holds.
        committed = decision.commit if isinstance(decision, Reply) else None
        if isinstance(decision, Commit):
            committed = decision.lease
        if committed is not None:
            held = before.get(committed.ip)
            assert held is None or held.mac == committed.mac, (held, committed)

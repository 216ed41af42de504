"""Engine tests: RFC 2131 §4.3 paths as conversations with an in-memory client."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from ddi.dhcp.decision import (
    Commit,
    Destination,
    DropReason,
    Inbound,
    Reply,
    Rule,
    reply_destination,
)
from ddi.dhcp.netboot import BootProfile
from ddi.dhcp.options import (
    ClientFqdn,
    MessageType,
    OptionCode,
    decode_classless_routes,
    decode_client_fqdn,
    decode_u16,
    decode_u32,
)
from ddi.dhcp.packet import BOOTREPLY, BROADCAST_FLAG, ZERO_ADDRESS, DhcpPacket, decode_packet
from ddi.ipam.models import Lease, LeaseState, Pool, Record, Route
from tests.unit.dhcp.sim import (
    FAR,
    INBOUND,
    LAN,
    NOW,
    SERVER,
    ClientSim,
    Harness,
    dropped,
    host,
    reply_of,
)
from tests.vectors import VECTORS

A = IPv4Address


def lease(
    ip: str,
    mac: str,
    *,
    state: LeaseState = LeaseState.BOUND,
    end: float = NOW + 600,
    subnet: str = "lan",
) -> Lease:
    return Lease(ip=A(ip), mac=mac, state=state, start=NOW - 600, end=end, subnet=subnet)


# --- reservations ---------------------------------------------------------------------------------


def test_reserved_host_gets_its_address() -> None:
    h = Harness(hosts=(host(mac="52:54:00:00:00:01", ip="198.18.0.10", hostname="web1"),))
    ack = ClientSim(mac="52:54:00:00:00:01").dora(h)
    assert ack.packet.yiaddr == A("198.18.0.10")
    assert ack.rule is Rule.ACK_SELECTING
    assert ack.commit is not None
    assert ack.commit.hostname == "web1"
    assert reply_of(ack).get(OptionCode.HOST_NAME) == b"web1"
    assert h.index.lease_by_ip(A("198.18.0.10")) == ack.commit


def test_reservation_offer_names_its_rule() -> None:
    h = Harness(hosts=(host(mac="52:54:00:00:00:01", ip="198.18.0.10", hostname="web1"),))
    decision = h.handle(ClientSim(mac="52:54:00:00:00:01").discover())
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.OFFER_RESERVATION
    assert decision.commit is None


def test_client_id_reservation_beats_mac_reservation() -> None:
    h = Harness(
        hosts=(
            host(mac="52:54:00:00:00:01", ip="198.18.0.11", hostname="bymac"),
            host(client_id="01:02:03", ip="198.18.0.12", hostname="byid"),
        )
    )
    ack = ClientSim(mac="52:54:00:00:00:01", client_id=b"\x01\x02\x03").dora(h)
    assert ack.packet.yiaddr == A("198.18.0.12")


def test_circuit_id_reservation_for_relayed_client() -> None:
    h = Harness(hosts=(host(circuit_id="70:6f:72:74:31", ip="198.18.5.20", hostname="port1"),))
    relay_info = bytes([1, 5]) + b"port1" + bytes([2, 3]) + b"rid"
    client = ClientSim(mac="52:54:00:00:00:07", giaddr=A("198.18.5.1"), relay_info=relay_info)
    ack = client.dora(h)
    assert ack.packet.yiaddr == A("198.18.5.20")
    assert ack.commit is not None
    assert ack.commit.circuit_id == "70:6f:72:74:31"


def test_circuit_id_is_ignored_from_a_direct_client_without_relay_info() -> None:
    h = Harness(hosts=(host(circuit_id="70:6f:72:74:31", ip="198.18.0.20", hostname="port1"),))
    ack = ClientSim(mac="52:54:00:00:00:07").dora(h)
    assert ack.packet.yiaddr == A("198.18.0.100")


def test_reservation_in_another_subnet_does_not_apply() -> None:
    h = Harness(hosts=(host(mac="52:54:00:00:00:01", ip="198.18.5.10", hostname="far1"),))
    ack = ClientSim(mac="52:54:00:00:00:01").dora(h)
    assert ack.packet.yiaddr == A("198.18.0.100")


def test_reservation_added_while_running_is_served_and_removed_is_not() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01")
    assert client.dora(h).packet.yiaddr == A("198.18.0.100")
    reserved = host(mac="52:54:00:00:00:01", ip="198.18.0.30", hostname="moved")
    h.add_host(reserved)
    # RENEWING the pool address now meets a reservation elsewhere: NAK, then DISCOVER again.
    renew = h.handle(client.message(MessageType.REQUEST, ciaddr=A("198.18.0.100")))
    assert isinstance(renew, Reply)
    assert renew.rule is Rule.NAK_RESERVED_ELSEWHERE
    assert client.dora(h).packet.yiaddr == A("198.18.0.30")
    h.remove_host(reserved)
    offer = reply_of(h.handle(client.discover()))
    assert offer.yiaddr != A("198.18.0.30")
    assert offer.yiaddr in LAN.pools[0]


# --- dynamic allocation ---------------------------------------------------------------------------


def test_dynamic_client_gets_first_pool_address_and_options_in_prl_order() -> None:
    h = Harness()
    decision = h.handle(ClientSim(mac="52:54:00:00:00:01", prl=(6, 3, 1, 15)).discover())
    offer = reply_of(decision)
    assert offer.op == BOOTREPLY
    assert offer.message_type is MessageType.OFFER
    assert offer.yiaddr == A("198.18.0.100")
    assert offer.ciaddr == ZERO_ADDRESS
    codes = [c for c, _ in offer.options]
    assert codes[:5] == [53, 54, 51, 58, 59]
    assert codes[5:9] == [6, 3, 1, 15]
    assert 28 in codes
    assert offer.server_identifier() == SERVER
    assert decode_u32(offer.get(OptionCode.LEASE_TIME) or b"") == 3600
    assert decode_u32(offer.get(OptionCode.RENEWAL_TIME) or b"") == 1800
    assert decode_u32(offer.get(OptionCode.REBINDING_TIME) or b"") == 3150
    assert offer.get(OptionCode.SUBNET_MASK) == A("255.255.255.0").packed
    assert offer.get(OptionCode.ROUTER) == A("198.18.0.1").packed
    assert offer.get(OptionCode.DOMAIN_NAME) == b"site.example"
    assert offer.get(OptionCode.BROADCAST_ADDRESS) == A("198.18.0.255").packed
    assert offer.get(OptionCode.HOST_NAME) is None


def test_offer_is_not_committed() -> None:
    h = Harness()
    decision = h.handle(ClientSim(mac="52:54:00:00:00:01").discover())
    assert isinstance(decision, Reply)
    assert decision.commit is None
    assert h.committed == []
    assert h.engine.statistics() == {"offers_outstanding": 1}


def test_retransmitted_discover_gets_the_same_offer_and_others_get_another() -> None:
    h = Harness()
    a = ClientSim(mac="52:54:00:00:00:01")
    first = reply_of(h.handle(a.discover()))
    again = h.handle(a.discover())
    assert isinstance(again, Reply)
    assert again.rule is Rule.OFFER_OUTSTANDING
    assert again.packet.yiaddr == first.yiaddr
    other = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:02").discover()))
    assert other.yiaddr == A("198.18.0.101")


def test_previous_lease_is_offered_again() -> None:
    old = lease("198.18.0.105", "52:54:00:00:00:01", state=LeaseState.EXPIRED, end=NOW - 10)
    h = Harness(leases=(old,))
    decision = h.handle(ClientSim(mac="52:54:00:00:00:01").discover())
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.OFFER_PREVIOUS
    assert decision.packet.yiaddr == A("198.18.0.105")


def test_requested_address_is_offered_when_free() -> None:
    h = Harness(leases=(lease("198.18.0.104", "52:54:00:00:00:09"),))
    client = ClientSim(mac="52:54:00:00:00:01")
    decision = h.handle(client.discover(requested=A("198.18.0.107")))
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.OFFER_REQUESTED
    assert decision.packet.yiaddr == A("198.18.0.107")
    taken = h.handle(ClientSim(mac="52:54:00:00:00:02").discover(requested=A("198.18.0.104")))
    assert isinstance(taken, Reply)
    assert taken.rule is Rule.OFFER_POOL
    assert taken.packet.yiaddr == A("198.18.0.100")


def test_pool_scan_skips_reserved_leased_quarantined_and_offered() -> None:
    h = Harness(
        hosts=(host(mac="52:54:00:00:00:aa", ip="198.18.0.100", hostname="r1"),),
        leases=(
            lease("198.18.0.101", "52:54:00:00:00:bb"),
            lease("198.18.0.102", "52:54:00:00:00:cc", state=LeaseState.DECLINED, end=NOW + 60),
            lease("198.18.0.103", "52:54:00:00:00:dd", state=LeaseState.DECLINED, end=NOW - 1),
        ),
    )
    first = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:01").discover()))
    assert first.yiaddr == A("198.18.0.103")  # its quarantine is over
    second = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:02").discover()))
    assert second.yiaddr == A("198.18.0.104")


def test_pool_exhaustion_is_a_counted_drop() -> None:
    h = Harness()
    for i in range(10):
        ClientSim(mac=f"52:54:00:00:01:{i:02x}").dora(h)
    assert dropped(h.handle(ClientSim(mac="52:54:00:00:02:00").discover())) is (
        DropReason.POOL_EXHAUSTED
    )


def test_pool_scan_wraps_from_its_cursor() -> None:
    h = Harness()
    clients = [ClientSim(mac=f"52:54:00:00:01:{i:02x}") for i in range(10)]
    for c in clients:
        c.dora(h)
    h.handle(clients[0].message(MessageType.RELEASE, ciaddr=A("198.18.0.100")))
    offer = reply_of(h.handle(ClientSim(mac="52:54:00:00:02:00").discover()))
    assert offer.yiaddr == A("198.18.0.100")


def _small_lan(size: int, **kw: object) -> Harness:
    end = A("198.18.0.100") + size - 1
    lan = replace(LAN, pools=(Pool(start=A("198.18.0.100"), end=end),))
    return Harness(subnets=(lan,), **kw)  # type: ignore[arg-type]


def test_expired_offer_frees_its_address() -> None:
    h = _small_lan(1)
    h.handle(ClientSim(mac="52:54:00:00:00:01").discover())
    later = NOW + h.config.offer_ttl + 1
    offer = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:02").discover(), now=later))
    assert offer.yiaddr == A("198.18.0.100")


def test_offers_are_bounded() -> None:
    h = _small_lan(2, max_offers=1)
    h.handle(ClientSim(mac="52:54:00:00:00:01").discover())  # offered .100
    h.handle(ClientSim(mac="52:54:00:00:00:02").discover())  # offered .101; .100 forgotten
    assert h.engine.statistics() == {"offers_outstanding": 1}
    offer = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:09").discover()))
    assert offer.yiaddr == A("198.18.0.100")


def test_gateway_inside_a_pool_is_never_offered() -> None:
    lan = replace(LAN, pools=(Pool(start=A("198.18.0.1"), end=A("198.18.0.2")),))
    h = Harness(subnets=(lan,))
    assert reply_of(h.handle(ClientSim(mac="52:54:00:00:00:01").discover())).yiaddr == A(
        "198.18.0.2"
    )


# --- REQUEST: SELECTING ---------------------------------------------------------------------------


def test_dora_commits_a_bound_lease() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01", client_id=b"\x01\x52\x54\x00\x00\x00\x01")
    ack = client.dora(h)
    # RFC 2131 §4.1: no broadcast bit, no ciaddr: unicast to yiaddr at the client's MAC.
    assert ack.to == Destination(
        ip=A("198.18.0.100"), port=68, interface="eth0", hwaddr=bytes.fromhex("525400000001")
    )
    assert ack.commit == Lease(
        ip=A("198.18.0.100"),
        mac="52:54:00:00:00:01",
        client_id="01:52:54:00:00:00:01",
        state=LeaseState.BOUND,
        start=NOW,
        end=NOW + 3600,
        subnet="lan",
    )
    # Held until the lease is visible in the view; the lease holds the address from then on.
    assert h.engine.statistics() == {"offers_outstanding": 0}


def test_a_visible_lease_ends_its_ack_hold_and_still_keeps_the_address_from_others() -> None:
    h = _small_lan(2)
    a = ClientSim(mac="52:54:00:00:00:01")
    offer = reply_of(h.engine.handle(a.discover(), INBOUND, NOW))
    ack = h.engine.handle(a.select(offer), INBOUND, NOW)
    assert isinstance(ack, Reply)
    assert ack.commit is not None
    assert h.engine.statistics() == {"offers_outstanding": 1}  # held while it commits
    h.commit(ack.commit)
    assert h.engine.statistics() == {"offers_outstanding": 0}
    # The lease keeps it: the next client gets the other address, then the pool is empty.
    b = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:02").discover()))
    assert b.yiaddr != offer.yiaddr
    assert dropped(h.handle(ClientSim(mac="52:54:00:00:00:03").discover())) is (
        DropReason.POOL_EXHAUSTED
    )
    # The client itself renews its lease without a hold.
    renew = h.handle(a.message(MessageType.REQUEST, ciaddr=offer.yiaddr), now=NOW + 100)
    assert isinstance(renew, Reply)
    assert renew.rule is Rule.ACK_RENEWING


def test_a_lease_landing_for_a_client_leaves_its_new_offer_alone() -> None:
    h = _small_lan(4)
    a = ClientSim(mac="52:54:00:00:00:01")
    first = reply_of(h.engine.handle(a.discover(), INBOUND, NOW))
    ack = h.engine.handle(a.select(first), INBOUND, NOW)
    assert isinstance(ack, Reply)
    assert ack.commit is not None
    # The client starts over (a DISCOVER) before its lease is visible: an OFFER holds again.
    again = reply_of(h.engine.handle(a.discover(), INBOUND, NOW + 1))
    h.commit(ack.commit)
    # The OFFER (with its per-link bound) is not the ACK's hold: it stays until its REQUEST.
    assert h.engine.statistics() == {"offers_outstanding": 1}
    assert h.engine.holds("52:54:00:00:00:01")
    assert again.yiaddr == first.yiaddr


def test_acked_address_stays_held_until_the_lease_is_visible() -> None:
    h = _small_lan(2)
    a = ClientSim(mac="52:54:00:00:00:01")
    offer = reply_of(h.engine.handle(a.discover(), INBOUND, NOW))
    ack = h.engine.handle(a.select(offer), INBOUND, NOW)  # not committed to the view
    assert isinstance(ack, Reply)
    other = reply_of(h.engine.handle(ClientSim(mac="52:54:00:00:00:02").discover(), INBOUND, NOW))
    assert other.yiaddr != offer.yiaddr


def test_relay_source_port_sub_option_answers_the_relay_port() -> None:
    h = Harness()
    relay_info = bytes([19, 0])
    client = ClientSim(mac="52:54:00:00:00:01", giaddr=A("198.18.5.1"), relay_info=relay_info)
    inbound = Inbound(interface="eth0", local_ip=SERVER, src_ip=A("198.18.5.1"), src_port=40000)
    decision = h.handle(client.discover(), inbound=inbound)
    assert isinstance(decision, Reply)
    assert decision.to == Destination(ip=A("198.18.5.1"), port=40000, interface=None)


def test_selecting_another_server_drops_and_frees_our_offer() -> None:
    h = _small_lan(1)
    a = ClientSim(mac="52:54:00:00:00:01")
    offer = reply_of(h.handle(a.discover()))
    other = a.message(MessageType.REQUEST, requested=offer.yiaddr, server_id=A("198.18.0.254"))
    assert dropped(h.handle(other)) is DropReason.OTHER_SERVER
    b = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:02").discover()))
    assert b.yiaddr == offer.yiaddr


def test_selecting_an_address_leased_to_another_is_naked() -> None:
    h = Harness(leases=(lease("198.18.0.103", "52:54:00:00:00:99"),))
    request = ClientSim(mac="52:54:00:00:00:01").message(
        MessageType.REQUEST, requested=A("198.18.0.103"), server_id=SERVER
    )
    decision = h.handle(request)
    nak = reply_of(decision)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.NAK_TAKEN
    assert nak.message_type is MessageType.NAK
    assert nak.yiaddr == ZERO_ADDRESS
    assert nak.get(OptionCode.MESSAGE) == b"nak-taken"
    assert decision.to.broadcast
    assert decision.commit is None


def test_selecting_an_address_offered_to_another_is_naked() -> None:
    h = Harness()
    offer = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:01").discover()))
    b = ClientSim(mac="52:54:00:00:00:02")
    decision = h.handle(b.select(offer))
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.NAK_TAKEN


def test_selecting_after_the_offer_expired_is_acked_when_still_free() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01")
    offer = reply_of(h.handle(client.discover()))
    decision = h.handle(client.select(offer), now=NOW + 120)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.ACK_SELECTING


def test_selecting_without_requested_address_is_dropped() -> None:
    h = Harness()
    request = ClientSim(mac="52:54:00:00:00:01").message(MessageType.REQUEST, server_id=SERVER)
    assert dropped(h.handle(request)) is DropReason.BAD_REQUEST


def test_request_in_no_state_is_dropped() -> None:
    h = Harness()
    request = ClientSim(mac="52:54:00:00:00:01").message(MessageType.REQUEST)
    assert dropped(h.handle(request)) is DropReason.BAD_REQUEST


def test_selecting_an_address_outside_the_pool_is_naked() -> None:
    h = Harness()
    request = ClientSim(mac="52:54:00:00:00:01").message(
        MessageType.REQUEST, requested=A("198.18.0.50"), server_id=SERVER
    )
    decision = h.handle(request)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.NAK_NOT_IN_POOL


def test_selecting_another_hosts_reservation_is_naked() -> None:
    lan = replace(LAN, pools=(Pool(start=A("198.18.0.10"), end=A("198.18.0.19")),))
    h = Harness(
        subnets=(lan,), hosts=(host(mac="52:54:00:00:00:aa", ip="198.18.0.10", hostname="r"),)
    )
    request = ClientSim(mac="52:54:00:00:00:01").message(
        MessageType.REQUEST, requested=A("198.18.0.10"), server_id=SERVER
    )
    decision = h.handle(request)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.NAK_RESERVED


# --- REQUEST: INIT-REBOOT -------------------------------------------------------------------------


def test_init_reboot_wrong_subnet_is_naked() -> None:
    h = Harness()
    request = ClientSim(mac="52:54:00:00:00:01").message(
        MessageType.REQUEST, requested=A("10.9.9.9")
    )
    decision = h.handle(request)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.NAK_WRONG_SUBNET
    assert reply_of(decision).message_type is MessageType.NAK


def test_init_reboot_with_its_lease_is_acked() -> None:
    h = Harness(leases=(lease("198.18.0.104", "52:54:00:00:00:01", end=NOW - 5),))
    request = ClientSim(mac="52:54:00:00:00:01").message(
        MessageType.REQUEST, requested=A("198.18.0.104")
    )
    decision = h.handle(request)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.ACK_INIT_REBOOT
    assert decision.commit is not None
    assert decision.commit.end == NOW + 3600


def test_init_reboot_unknown_client_is_naked_when_authoritative() -> None:
    h = Harness(authoritative=True)
    request = ClientSim(mac="52:54:00:00:00:01").message(
        MessageType.REQUEST, requested=A("198.18.0.104")
    )
    decision = h.handle(request)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.NAK_UNKNOWN_LEASE


def test_init_reboot_unknown_client_is_ignored_when_not_authoritative() -> None:
    # RFC 2131 §4.3.2: "If the DHCP server has no record of this client, then it MUST remain
    # silent".
    h = Harness(authoritative=False)
    request = ClientSim(mac="52:54:00:00:00:01").message(
        MessageType.REQUEST, requested=A("198.18.0.104")
    )
    assert dropped(h.handle(request)) is DropReason.NO_RECORD


def test_init_reboot_address_taken_is_naked() -> None:
    h = Harness(leases=(lease("198.18.0.104", "52:54:00:00:00:99"),))
    request = ClientSim(mac="52:54:00:00:00:01").message(
        MessageType.REQUEST, requested=A("198.18.0.104")
    )
    decision = h.handle(request)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.NAK_TAKEN


def test_init_reboot_of_reserved_host_is_acked() -> None:
    h = Harness(hosts=(host(mac="52:54:00:00:00:01", ip="198.18.0.10", hostname="web1"),))
    request = ClientSim(mac="52:54:00:00:00:01").message(
        MessageType.REQUEST, requested=A("198.18.0.10")
    )
    decision = h.handle(request)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.ACK_INIT_REBOOT


# --- REQUEST: RENEWING / REBINDING ----------------------------------------------------------------


def test_renewing_is_acked_by_unicast_to_ciaddr_and_extends_the_lease() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01")
    client.dora(h)
    assert client.ip is not None
    later = NOW + 1800
    decision = h.handle(client.message(MessageType.REQUEST, ciaddr=client.ip), now=later)
    ack = reply_of(decision)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.ACK_RENEWING
    assert decision.to == Destination(ip=client.ip, port=68, interface="eth0")
    assert ack.ciaddr == client.ip
    assert ack.yiaddr == client.ip
    assert decision.commit is not None
    assert decision.commit.end == later + 3600


def test_rebinding_broadcast_is_acked_to_ciaddr() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01")
    client.dora(h)
    assert client.ip is not None
    request = client.message(MessageType.REQUEST, ciaddr=client.ip, flags=BROADCAST_FLAG)
    decision = h.handle(request, now=NOW + 3200)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.ACK_RENEWING
    assert decision.to.ip == client.ip


def test_renewing_an_address_leased_to_another_is_naked() -> None:
    h = Harness(leases=(lease("198.18.0.104", "52:54:00:00:00:99"),))
    request = ClientSim(mac="52:54:00:00:00:01").message(
        MessageType.REQUEST, ciaddr=A("198.18.0.104")
    )
    decision = h.handle(request)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.NAK_TAKEN
    assert decision.to.broadcast  # RFC 2131 §4.1: NAKs are broadcast when giaddr is zero


def test_renewing_after_release_by_the_same_client_is_acked() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01")
    client.dora(h)
    assert client.ip is not None
    h.handle(client.message(MessageType.RELEASE, ciaddr=client.ip))
    decision = h.handle(client.message(MessageType.REQUEST, ciaddr=client.ip))
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.ACK_RENEWING


# --- DECLINE, RELEASE, INFORM ---------------------------------------------------------------------


def test_decline_quarantines_the_address_durably() -> None:
    h = _small_lan(2, decline_quarantine=300)
    client = ClientSim(mac="52:54:00:00:00:01")
    ack = client.dora(h)
    declined = h.handle(
        client.message(MessageType.DECLINE, requested=ack.packet.yiaddr, server_id=SERVER)
    )
    assert isinstance(declined, Commit)
    assert declined.rule is Rule.DECLINED
    assert declined.lease.state is LeaseState.DECLINED
    assert declined.lease.end == NOW + 300
    assert h.index.lease_by_ip(ack.packet.yiaddr) == declined.lease
    assert h.engine.statistics() == {"offers_outstanding": 0}  # the quarantine lease holds it
    # Nobody, not even the decliner, is offered it during the quarantine.
    again = reply_of(h.handle(client.discover(), now=NOW + 10))
    assert again.yiaddr != ack.packet.yiaddr
    after = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:05").discover(), now=NOW + 301))
    assert after.yiaddr == ack.packet.yiaddr


def test_decline_of_an_offered_address_quarantines_it() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01")
    offer = reply_of(h.handle(client.discover()))
    decision = h.handle(client.message(MessageType.DECLINE, requested=offer.yiaddr))
    assert isinstance(decision, Commit)
    assert decision.lease.subnet == "lan"


def test_decline_by_a_client_that_does_not_hold_the_address_is_dropped() -> None:
    h = Harness(leases=(lease("198.18.0.104", "52:54:00:00:00:99"),))
    decline = ClientSim(mac="52:54:00:00:00:01").message(
        MessageType.DECLINE, requested=A("198.18.0.104")
    )
    assert dropped(h.handle(decline)) is DropReason.NOT_LEASED


def test_decline_for_another_server_or_without_address_is_dropped() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01")
    assert dropped(h.handle(client.message(MessageType.DECLINE))) is DropReason.BAD_REQUEST
    other = client.message(MessageType.DECLINE, requested=A("198.18.0.100"), server_id=A("1.1.1.1"))
    assert dropped(h.handle(other)) is DropReason.OTHER_SERVER


def test_decline_of_reserved_address_names_the_subnet() -> None:
    h = Harness(hosts=(host(mac="52:54:00:00:00:01", ip="198.18.0.10", hostname="web1"),))
    decision = h.handle(
        ClientSim(mac="52:54:00:00:00:01").message(MessageType.DECLINE, requested=A("198.18.0.10"))
    )
    assert isinstance(decision, Commit)
    assert decision.lease.subnet == "lan"


def test_release_marks_the_lease_released_and_the_client_gets_it_back() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01")
    ack = client.dora(h)
    release = client.message(MessageType.RELEASE, ciaddr=ack.packet.yiaddr, server_id=SERVER)
    decision = h.handle(release, now=NOW + 5)
    assert isinstance(decision, Commit)
    assert decision.rule is Rule.RELEASED
    assert decision.lease.state is LeaseState.RELEASED
    assert decision.lease.end == NOW + 5
    offer = h.handle(client.discover(), now=NOW + 6)
    assert isinstance(offer, Reply)
    assert offer.rule is Rule.OFFER_PREVIOUS
    assert offer.packet.yiaddr == ack.packet.yiaddr


def test_release_by_another_client_or_server_is_dropped() -> None:
    h = Harness()
    ack = ClientSim(mac="52:54:00:00:00:01").dora(h)
    thief = ClientSim(mac="52:54:00:00:00:02")
    release = thief.message(MessageType.RELEASE, ciaddr=ack.packet.yiaddr)
    assert dropped(h.handle(release)) is DropReason.NOT_LEASED
    elsewhere = thief.message(MessageType.RELEASE, ciaddr=ack.packet.yiaddr, server_id=A("1.1.1.1"))
    assert dropped(h.handle(elsewhere)) is DropReason.OTHER_SERVER


def test_inform_gets_parameters_without_a_lease() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01")
    decision = h.handle(client.message(MessageType.INFORM, ciaddr=A("198.18.0.50")))
    ack = reply_of(decision)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.ACK_INFORM
    assert decision.commit is None
    assert decision.to.ip == A("198.18.0.50")
    assert ack.message_type is MessageType.ACK
    assert ack.yiaddr == ZERO_ADDRESS
    assert ack.ciaddr == A("198.18.0.50")
    assert ack.get(OptionCode.LEASE_TIME) is None
    assert ack.get(OptionCode.ROUTER) == A("198.18.0.1").packed


# --- relays ---------------------------------------------------------------------------------------


def test_relayed_client_gets_an_address_from_the_relay_subnet_and_82_is_echoed() -> None:
    h = Harness()
    relay_info = bytes([1, 4]) + b"eth7" + bytes([2, 2]) + b"r1"
    client = ClientSim(mac="52:54:00:00:00:01", giaddr=A("198.18.5.1"), relay_info=relay_info)
    offer_decision = h.handle(client.discover())
    assert isinstance(offer_decision, Reply)
    assert offer_decision.to == Destination(ip=A("198.18.5.1"), port=67, interface=None)
    offer = reply_of(offer_decision)
    assert offer.yiaddr == A("198.18.5.50")
    assert offer.giaddr == A("198.18.5.1")
    assert offer.get(OptionCode.RELAY_AGENT_INFORMATION) == relay_info
    assert decode_u32(offer.get(OptionCode.LEASE_TIME) or b"") == 600
    ack = client.dora(h)
    assert ack.commit is not None
    assert ack.commit.subnet == "far"
    assert ack.commit.circuit_id == "65:74:68:37"


def test_relay_listed_in_relay_agents_selects_its_subnet() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01", giaddr=A("198.18.9.1"))
    assert reply_of(h.handle(client.discover())).yiaddr == A("198.18.5.50")


def test_link_selection_sub_option_overrides_giaddr() -> None:
    h = Harness()
    relay_info = bytes([5, 4]) + A("198.18.5.0").packed
    client = ClientSim(mac="52:54:00:00:00:01", giaddr=A("198.18.0.254"), relay_info=relay_info)
    assert reply_of(h.handle(client.discover())).yiaddr == A("198.18.5.50")


def test_unknown_relay_is_dropped() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01", giaddr=A("203.0.113.1"))
    assert dropped(h.handle(client.discover())) is DropReason.NO_SUBNET


def test_nak_to_a_relay_sets_broadcast_and_echoes_82() -> None:
    h = Harness()
    relay_info = bytes([1, 1]) + b"x"
    client = ClientSim(mac="52:54:00:00:00:01", giaddr=A("198.18.5.1"), relay_info=relay_info)
    decision = h.handle(client.message(MessageType.REQUEST, requested=A("198.18.0.9")))
    nak = reply_of(decision)
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.NAK_WRONG_SUBNET
    assert decision.to == Destination(ip=A("198.18.5.1"), port=67, interface=None)
    assert nak.flags & BROADCAST_FLAG
    assert nak.get(OptionCode.RELAY_AGENT_INFORMATION) == relay_info


def test_malformed_relay_information_is_a_bad_option_drop() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01", giaddr=A("198.18.5.1"), relay_info=bytes([1, 9]))
    assert dropped(h.handle(client.discover())) is DropReason.BAD_OPTION


def test_packet_from_an_interface_without_subnet_is_dropped() -> None:
    h = Harness()
    inbound = Inbound(interface="eth9", local_ip=SERVER)
    decision = h.handle(ClientSim(mac="52:54:00:00:00:01").discover(), inbound=inbound)
    assert dropped(decision) is DropReason.NO_SUBNET


def test_shared_interface_picks_the_subnet_holding_the_address() -> None:
    far_here = replace(FAR, interface="eth0", relay_agents=())
    h = Harness(subnets=(LAN, far_here))
    client = ClientSim(mac="52:54:00:00:00:01")
    h.commit(lease("198.18.5.55", "52:54:00:00:00:01", subnet="far"))
    decision = h.handle(client.message(MessageType.REQUEST, ciaddr=A("198.18.5.55")))
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.ACK_RENEWING


# --- known hosts only -----------------------------------------------------------------------------


def test_known_hosts_only_ignores_unknown_and_serves_known() -> None:
    lan = replace(LAN, known_hosts_only=True)
    h = Harness(
        subnets=(lan,), hosts=(host(mac="52:54:00:00:00:01", ip="198.18.0.10", hostname="k"),)
    )
    stranger = ClientSim(mac="52:54:00:00:00:02")
    assert dropped(h.handle(stranger.discover())) is DropReason.UNKNOWN_CLIENT
    decision = h.handle(stranger.message(MessageType.REQUEST, ciaddr=A("198.18.0.100")))
    assert isinstance(decision, Reply)
    assert decision.rule is Rule.NAK_UNKNOWN_CLIENT
    assert ClientSim(mac="52:54:00:00:00:01").dora(h).packet.yiaddr == A("198.18.0.10")


# --- hostnames ------------------------------------------------------------------------------------


def test_dynamic_hostname_is_sanitised() -> None:
    h = Harness()
    ack = ClientSim(mac="52:54:00:00:00:01", hostname=b"My Laptop!.lan").dora(h)
    assert ack.commit is not None
    assert ack.commit.hostname == "my-laptop"


def test_dynamic_hostname_owned_by_a_reservation_or_record_is_refused() -> None:
    record = Record(id="r1", name="printer.site.example", rtype="A", value="198.18.0.77")
    h = Harness(
        hosts=(host(mac="52:54:00:00:00:aa", ip="198.18.0.10", hostname="web1"),),
        records=(record,),
    )
    ack = ClientSim(mac="52:54:00:00:00:01", hostname=b"WEB1").dora(h)
    assert ack.commit is not None
    assert ack.commit.hostname is None
    ack = ClientSim(mac="52:54:00:00:00:02", hostname=b"printer").dora(h)
    assert ack.commit is not None
    assert ack.commit.hostname is None


def test_client_fqdn_name_is_used_and_answered() -> None:
    h = Harness()
    fqdn = bytes([ClientFqdn.FLAG_E, 0, 0]) + b"\x04box1\x04site\x07example\x00"
    client = ClientSim(mac="52:54:00:00:00:01", extra=((OptionCode.CLIENT_FQDN, fqdn),))
    ack = client.dora(h)
    assert ack.commit is not None
    assert ack.commit.hostname == "box1"
    answer = decode_client_fqdn(reply_of(ack).get(OptionCode.CLIENT_FQDN) or b"")
    assert answer.flags == ClientFqdn.FLAG_S | ClientFqdn.FLAG_E | ClientFqdn.FLAG_O
    assert answer.name == "box1.site.example"


def test_renewal_without_hostname_keeps_the_leases_name() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01", hostname=b"keeper")
    client.dora(h)
    assert client.ip is not None
    client.hostname = None
    decision = h.handle(client.message(MessageType.REQUEST, ciaddr=client.ip))
    assert isinstance(decision, Reply)
    assert decision.commit is not None
    assert decision.commit.hostname == "keeper"


# --- options --------------------------------------------------------------------------------------


def test_subnet_routes_mtu_and_ntp_are_sent() -> None:

    lan = replace(
        LAN,
        mtu=9000,
        ntp_servers=(A("198.18.0.2"),),
        routes=(Route(destination=IPv4Network("10.0.0.0/8"), gateway=A("198.18.0.3")),),
    )
    h = Harness(subnets=(lan,))
    offer = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:01", prl=(121, 26, 42)).discover()))
    assert decode_u16(offer.get(OptionCode.INTERFACE_MTU) or b"") == 9000
    assert offer.get(OptionCode.NTP_SERVERS) == A("198.18.0.2").packed
    routes = decode_classless_routes(offer.get(OptionCode.CLASSLESS_STATIC_ROUTE) or b"")
    assert routes == (
        (IPv4Network("10.0.0.0/8"), A("198.18.0.3")),
        (IPv4Network("0.0.0.0/0"), A("198.18.0.1")),
    )
    assert [c for c, _ in offer.options][5:8] == [121, 26, 42]


def test_reply_size_follows_option_57() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01", extra=((OptionCode.MAX_MESSAGE_SIZE, b"\x05\xc0"),))
    decision = h.handle(client.discover())
    assert isinstance(decision, Reply)
    assert decision.max_size == 1472
    small = ClientSim(mac="52:54:00:00:00:02", extra=((OptionCode.MAX_MESSAGE_SIZE, b"\x01\x00"),))
    decision = h.handle(small.discover())
    assert isinstance(decision, Reply)
    assert decision.max_size == 576
    bad = ClientSim(mac="52:54:00:00:00:03", extra=((OptionCode.MAX_MESSAGE_SIZE, b"\x01"),))
    decision = h.handle(bad.discover())
    assert isinstance(decision, Reply)
    assert decision.max_size == 576


# --- netboot --------------------------------------------------------------------------------------


def test_pxe_client_gets_its_boot_file_from_the_subnet_profile() -> None:
    pcap = VECTORS / "pxe-ipxe-bios-dora-tftp.pcap"
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    discover = decode_packet(bytes(rdpcap(str(pcap))[0][UDP].payload))
    lan = replace(LAN, boot="pxe")
    profile = BootProfile(name="pxe", files={0: "undionly.kpxe"}, ipxe_script=None)
    h = Harness(subnets=(lan,), profiles={"pxe": profile})
    decision = h.handle(discover)
    offer = reply_of(decision)
    assert isinstance(decision, Reply)
    assert decision.boot is not None
    assert offer.file == b"undionly.kpxe"
    assert offer.siaddr == SERVER
    assert offer.get(OptionCode.BOOTFILE_NAME) == b"undionly.kpxe"
    assert offer.max_message_size() is None
    assert decision.max_size == 1472


def test_client_without_boot_signs_gets_no_boot_options() -> None:
    lan = replace(LAN, boot="pxe")
    profile = BootProfile(name="pxe", files={0: "undionly.kpxe"})
    h = Harness(subnets=(lan,), profiles={"pxe": profile})
    offer = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:01").discover()))
    assert offer.file == b""
    assert offer.get(OptionCode.BOOTFILE_NAME) is None


# --- what is not a request ------------------------------------------------------------------------


def test_non_requests_are_dropped() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01")
    reply = DhcpPacket(op=BOOTREPLY, xid=1, options=((53, b"\x02"),))
    assert dropped(h.handle(reply)) is DropReason.NOT_BOOTREQUEST
    bootp = DhcpPacket(op=1, xid=1, chaddr=bytes(16))
    assert dropped(h.handle(bootp)) is DropReason.NO_MESSAGE_TYPE
    assert dropped(h.handle(client.message(MessageType.OFFER))) is DropReason.UNEXPECTED_MESSAGE
    assert dropped(h.handle(client.message(MessageType.ACK))) is DropReason.UNEXPECTED_MESSAGE
    unknown = DhcpPacket(op=1, xid=1, chaddr=bytes(16), options=((53, b"\x63"),))
    assert dropped(h.handle(unknown)) is DropReason.UNEXPECTED_MESSAGE


def test_client_without_identity_is_dropped() -> None:
    h = Harness()
    packet = DhcpPacket(op=1, htype=6, hlen=6, xid=1, options=((53, b"\x01"),))
    assert dropped(h.handle(packet)) is DropReason.NO_CLIENT_IDENTITY


def test_malformed_option_is_a_counted_drop() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01", extra=((OptionCode.REQUESTED_ADDRESS, b"\x01"),))
    assert dropped(h.handle(client.discover())) is DropReason.BAD_OPTION


def test_no_server_address_is_a_drop() -> None:
    h = Harness()
    inbound = Inbound(interface="eth0", local_ip=None)
    decision = h.handle(ClientSim(mac="52:54:00:00:00:01").discover(), inbound=inbound)
    assert dropped(decision) is DropReason.NO_SERVER_ADDRESS


def test_configured_server_id_wins() -> None:
    h = Harness(server_id=A("198.18.0.53"))
    offer = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:01").discover()))
    assert offer.server_identifier() == A("198.18.0.53")


# --- reply addressing (RFC 2131 §4.1) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("giaddr", "ciaddr", "flags", "message_type", "expected"),
    [
        ("198.18.5.1", "0.0.0.0", 0, MessageType.OFFER, ("198.18.5.1", 67, None)),
        ("198.18.5.1", "198.18.5.9", 0, MessageType.ACK, ("198.18.5.1", 67, None)),
        ("198.18.5.1", "0.0.0.0", 0, MessageType.NAK, ("198.18.5.1", 67, None)),
        ("0.0.0.0", "198.18.0.9", 0, MessageType.ACK, ("198.18.0.9", 68, "eth0")),
        ("0.0.0.0", "198.18.0.9", 0, MessageType.NAK, ("255.255.255.255", 68, "eth0")),
        ("0.0.0.0", "0.0.0.0", BROADCAST_FLAG, MessageType.OFFER, ("255.255.255.255", 68, "eth0")),
        ("0.0.0.0", "0.0.0.0", 0, MessageType.ACK, ("255.255.255.255", 68, "eth0")),
    ],
)
def test_reply_destination(
    giaddr: str, ciaddr: str, flags: int, message_type: MessageType, expected: tuple[str, int, str]
) -> None:
    request = DhcpPacket(op=1, xid=1, giaddr=A(giaddr), ciaddr=A(ciaddr), flags=flags)
    to = reply_destination(request, message_type, "eth0", server_port=67, client_port=68)
    assert (str(to.ip), to.port, to.interface) == expected


def test_client_without_address_is_answered_at_its_hardware_address() -> None:
    request = DhcpPacket(op=1, xid=1, chaddr=bytes.fromhex("525400000001") + bytes(10))
    to = reply_destination(
        request, MessageType.OFFER, "eth0", server_port=67, client_port=68, yiaddr=A("198.18.0.7")
    )
    assert to == Destination(
        ip=A("198.18.0.7"), port=68, interface="eth0", hwaddr=bytes.fromhex("525400000001")
    )
    assert not to.broadcast
    flagged = replace(request, flags=BROADCAST_FLAG)
    to = reply_destination(
        flagged, MessageType.OFFER, "eth0", server_port=67, client_port=68, yiaddr=A("198.18.0.7")
    )
    assert to.broadcast
    assert to.hwaddr is None


def test_inbound_defaults() -> None:
    assert INBOUND.src_port == 68


def test_a_changed_subnet_changes_the_options_at_once() -> None:
    from ddi.ipam.models import Kind, Op

    h = Harness()
    first = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:01").discover()))
    assert first.get(OptionCode.ROUTER) == A("198.18.0.1").packed
    changed = replace(LAN, gateway=A("198.18.0.254"))
    h._apply(Kind.SUBNET, "lan", Op.UPSERT, changed.to_image())
    second = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:02").discover()))
    assert second.get(OptionCode.ROUTER) == A("198.18.0.254").packed


# --- corners --------------------------------------------------------------------------------------


def test_reconfigure_keeps_offers_and_takes_the_new_settings() -> None:
    from ddi.config import DhcpConfig

    h = Harness()
    h.handle(ClientSim(mac="52:54:00:00:00:01").discover())
    h.engine.reconfigure(DhcpConfig(server_id=A("198.18.0.53")))
    assert h.engine.statistics() == {"offers_outstanding": 1}
    offer = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:02").discover()))
    assert offer.server_identifier() == A("198.18.0.53")


def test_requests_and_informs_without_a_subnet_are_dropped() -> None:
    h = Harness()
    inbound = Inbound(interface="eth9", local_ip=SERVER)
    client = ClientSim(mac="52:54:00:00:00:01")
    for packet in (
        client.message(MessageType.REQUEST, requested=A("198.18.0.100"), server_id=SERVER),
        client.message(MessageType.INFORM, ciaddr=A("198.18.0.50")),
    ):
        assert dropped(h.handle(packet, inbound=inbound)) is DropReason.NO_SUBNET
    reserved = Harness(hosts=(host(mac="52:54:00:00:00:01", ip="198.18.0.10", hostname="w"),))
    decline = client.message(MessageType.DECLINE, requested=A("198.18.0.10"))
    assert dropped(reserved.handle(decline, inbound=inbound)) is DropReason.NO_SUBNET


def test_shared_interface_without_a_hint_takes_the_first_subnet() -> None:
    far_here = replace(FAR, interface="eth0", relay_agents=())
    h = Harness(subnets=(LAN, far_here))
    client = ClientSim(mac="52:54:00:00:00:01")
    decision = h.handle(client.message(MessageType.INFORM, ciaddr=A("10.1.1.1")))
    assert isinstance(decision, Reply)
    assert reply_of(decision).get(OptionCode.ROUTER) == A("198.18.0.1").packed


def test_pxe_client_without_a_profile_gets_no_boot_options() -> None:
    pxe = ((OptionCode.VENDOR_CLASS_IDENTIFIER, b"PXEClient:Arch:00000:UNDI:002001"),)
    h = Harness()
    decision = h.handle(ClientSim(mac="52:54:00:00:00:01", extra=pxe).discover())
    assert isinstance(decision, Reply)
    assert decision.boot is not None
    assert not decision.boot.offers_boot
    assert decision.packet.file == b""


def test_client_fqdn_that_asks_to_update_itself_and_an_owned_name() -> None:
    h = Harness(hosts=(host(mac="52:54:00:00:00:aa", ip="198.18.0.10", hostname="taken"),))
    fqdn = bytes([ClientFqdn.FLAG_S, 0, 0]) + b"taken"
    ack = ClientSim(mac="52:54:00:00:00:01", extra=((OptionCode.CLIENT_FQDN, fqdn),)).dora(h)
    assert ack.commit is not None
    assert ack.commit.hostname is None
    answer = decode_client_fqdn(reply_of(ack).get(OptionCode.CLIENT_FQDN) or b"")
    assert answer.flags == ClientFqdn.FLAG_S
    assert answer.name == ""


def test_bare_subnet_sends_only_mask_and_point_to_point_has_no_broadcast() -> None:
    bare = replace(
        LAN,
        cidr=IPv4Network("198.18.0.0/31"),
        gateway=None,
        dns_servers=(),
        domain=None,
        pools=(Pool(start=A("198.18.0.0"), end=A("198.18.0.1")),),
    )
    h = Harness(subnets=(bare,))
    offer = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:01", prl=()).discover()))
    assert [c for c, _ in offer.options][5:] == [OptionCode.SUBNET_MASK]


def test_explicit_default_route_is_not_doubled() -> None:
    lan = replace(
        LAN,
        routes=(Route(destination=IPv4Network("0.0.0.0/0"), gateway=A("198.18.0.9")),),
    )
    h = Harness(subnets=(lan,))
    offer = reply_of(h.handle(ClientSim(mac="52:54:00:00:00:01").discover()))
    routes = decode_classless_routes(offer.get(OptionCode.CLASSLESS_STATIC_ROUTE) or b"")
    assert routes == ((IPv4Network("0.0.0.0/0"), A("198.18.0.9")),)


def test_options_outside_the_known_order_still_go_out_last() -> None:
    from ddi.dhcp.reply_options import ordered_options as _ordered

    params = {OptionCode.SUBNET_MASK: b"m", 250: b"x", OptionCode.ROUTER: b"r"}
    assert _ordered(params, (3,)) == [(3, b"r"), (1, b"m"), (250, b"x")]

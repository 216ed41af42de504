"""Protocol details a DHCP conformance suite checks: what every reply echoes (RFC 6842, RFC
3046), how long a DECLINE holds its address, where a reply to an unaddressable chaddr goes, and
silence towards INIT-REBOOT clients without a record (RFC 2131 §4.3.2)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from ddi.config import DhcpConfig
from ddi.dhcp.decision import BROADCAST_ADDRESS, Commit, DropReason, Reply, Rule
from ddi.dhcp.options import MessageType, OptionCode
from ddi.ipam.models import Pool, Subnet
from tests.unit.dhcp.sim import NOW, ClientSim, Harness, dropped, reply_of

A = IPv4Address
ONE = Subnet(
    name="one",
    cidr=IPv4Network("198.18.0.0/24"),
    gateway=A("198.18.0.1"),
    lease_time=3600,
    pools=(Pool(start=A("198.18.0.100"), end=A("198.18.0.100")),),
    interface="eth0",
)


# --- RFC 6842 §3: option 61 is returned unaltered in OFFER, ACK and NAK ---------------------------


def test_client_identifier_is_echoed_in_offer_ack_and_nak() -> None:
    h = Harness()
    client = ClientSim(mac="52:54:00:00:00:01", client_id=b"\x01\x52\x54\x00\x00\x00\x01")
    offer = reply_of(h.handle(client.discover()))
    assert offer.get(OptionCode.CLIENT_IDENTIFIER) == client.client_id
    ack = reply_of(client.dora(h))
    assert ack.get(OptionCode.CLIENT_IDENTIFIER) == client.client_id
    nak = reply_of(h.handle(client.message(MessageType.REQUEST, requested=A("10.9.9.9"))))
    assert nak.message_type is MessageType.NAK
    assert nak.get(OptionCode.CLIENT_IDENTIFIER) == client.client_id
    inform = h.handle(client.message(MessageType.INFORM, ciaddr=A("198.18.0.50")))
    assert reply_of(inform).get(OptionCode.CLIENT_IDENTIFIER) == client.client_id


def test_reused_reply_options_carry_each_clients_own_identifier() -> None:
    # Engine rule 7 shares one option list between clients of one shape; option 61 is not
    # part of it.
    h = Harness()
    first = ClientSim(mac="52:54:00:00:00:01", client_id=b"\xff\x00\x00\x00\x01")
    second = ClientSim(mac="52:54:00:00:00:02", client_id=b"\xff\x00\x00\x00\x02")
    plain = ClientSim(mac="52:54:00:00:00:03")
    assert reply_of(h.handle(first.discover())).get(61) == first.client_id
    assert reply_of(h.handle(second.discover())).get(61) == second.client_id
    assert reply_of(h.handle(plain.discover())).get(61) is None


def test_relay_information_is_the_last_option_after_the_client_identifier() -> None:
    h = Harness()
    relay_info = bytes([1, 4]) + b"eth7"
    client = ClientSim(
        mac="52:54:00:00:00:01",
        client_id=b"\x01\x52\x54\x00\x00\x00\x01",
        giaddr=A("198.18.5.1"),
        relay_info=relay_info,
    )
    offer = h.handle(client.discover())
    assert isinstance(offer, Reply)
    assert offer.packet.options[-2:] == (
        (OptionCode.CLIENT_IDENTIFIER, client.client_id),
        (OptionCode.RELAY_AGENT_INFORMATION, relay_info),
    )


# --- RFC 2131 §3.1.5: a DECLINE holds its address no longer than the quarantine ----------------


def test_a_quarantine_shorter_than_the_offer_hold_frees_the_address_when_it_ends() -> None:
    h = Harness(subnets=(ONE,), decline_quarantine=5, offer_ttl=30)
    first = ClientSim(mac="52:54:00:00:00:01")
    ack = first.dora(h)
    assert ack.packet.yiaddr == A("198.18.0.100")
    # Past the ACK's own hold (offer_ttl), so only the DECLINE's can keep the address.
    later = NOW + 31
    decline = first.message(
        MessageType.DECLINE, requested=A("198.18.0.100"), server_id=first.server
    )
    decided = h.handle(decline, now=later)
    assert isinstance(decided, Commit)
    assert decided.lease.end == later + 5
    second = ClientSim(mac="52:54:00:00:00:02")
    assert dropped(h.handle(second.discover(), now=later + 4)) is DropReason.POOL_EXHAUSTED
    offer = h.handle(second.discover(), now=later + 6)
    assert reply_of(offer).yiaddr == A("198.18.0.100")


def test_a_zero_quarantine_holds_nothing() -> None:
    h = Harness(subnets=(ONE,), decline_quarantine=0)
    first = ClientSim(mac="52:54:00:00:00:01")
    first.dora(h)
    later = NOW + 31
    h.handle(
        first.message(MessageType.DECLINE, requested=A("198.18.0.100"), server_id=first.server),
        now=later,
    )
    second = ClientSim(mac="52:54:00:00:00:02")
    assert reply_of(h.handle(second.discover(), now=later)).yiaddr == A("198.18.0.100")


# --- RFC 2131 §4.1: a chaddr that names no station gets a broadcast ------------------------------


@pytest.mark.parametrize(
    "mac",
    ["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "33:33:00:00:00:01"],
)
def test_offer_to_an_unaddressable_chaddr_is_broadcast(mac: str) -> None:
    h = Harness()
    offer = h.handle(ClientSim(mac=mac).discover())
    assert isinstance(offer, Reply)
    assert offer.rule is Rule.OFFER_POOL
    assert offer.to.ip == BROADCAST_ADDRESS
    assert offer.to.hwaddr is None


def test_offer_to_an_ordinary_chaddr_is_still_a_link_layer_unicast() -> None:
    h = Harness()
    offer = h.handle(ClientSim(mac="52:54:00:00:00:01").discover())
    assert isinstance(offer, Reply)
    assert offer.to.hwaddr == bytes.fromhex("525400000001")
    assert offer.to.ip == offer.packet.yiaddr


# --- RFC 2131 §4.3.2: INIT-REBOOT without a record: "MUST remain silent" --------------------------


def test_init_reboot_from_a_client_without_a_record_is_silent_by_default() -> None:
    assert DhcpConfig().authoritative is False
    h = Harness()
    request = ClientSim(mac="52:54:00:00:00:01").message(
        MessageType.REQUEST, requested=A("198.18.0.104")
    )
    assert dropped(h.handle(request)) is DropReason.NO_RECORD

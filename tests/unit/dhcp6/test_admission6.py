"""``glance``: the client's message type and DUID off the datagram, through relays."""

from __future__ import annotations

from ipaddress import IPv6Address

from ddi.dhcp6.admission6 import MAX_HOPS, glance
from ddi.dhcp6.options import MessageType, OptionCode
from ddi.dhcp6.packet import Message, Relay, encode_message

DUID = bytes.fromhex("00030001525400000001")


def client(*, with_duid: bool = True) -> Message:
    options = [(OptionCode.ELAPSED_TIME, b"\0\0")]
    if with_duid:
        options.append((OptionCode.CLIENTID, DUID))
    return Message(msg_type=MessageType.SOLICIT, transaction_id=7, options=tuple(options))


def relayed(inner: Message | Relay, hops: int) -> Message | Relay:
    out: Message | Relay = inner
    for n in range(hops):
        out = Relay(
            msg_type=MessageType.RELAY_FORW,
            hop_count=n,
            link_address=IPv6Address("2001:db8:99::1"),
            peer_address=IPv6Address("fe80::1"),
            options=(
                (OptionCode.INTERFACE_ID, b"eth0"),
                (OptionCode.RELAY_MSG, encode_message(out)),
            ),
        )
    return out


def test_a_direct_message_gives_its_type_and_duid() -> None:
    assert glance(encode_message(client())) == (MessageType.SOLICIT, DUID)


def test_a_relayed_message_gives_the_clients_not_the_relays() -> None:
    assert glance(encode_message(relayed(client(), 3))) == (MessageType.SOLICIT, DUID)


def test_no_client_identifier_gives_none() -> None:
    assert glance(encode_message(client(with_duid=False))) == (MessageType.SOLICIT, None)


def test_truncated_or_empty_datagrams_give_nothing() -> None:
    data = encode_message(client())
    assert glance(b"") == (-1, None)
    assert glance(data[:3]) == (-1, None)
    assert glance(data[:-2]) == (MessageType.SOLICIT, None)  # the DUID runs past the end
    relay = encode_message(relayed(client(), 1))
    assert glance(relay[:20]) == (-1, None)


def test_a_chain_deeper_than_the_hop_limit_is_not_walked() -> None:
    assert glance(encode_message(relayed(client(), MAX_HOPS + 1))) == (MessageType.RELAY_FORW, None)

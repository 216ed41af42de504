"""slot_builder makes exactly the value the dataclass's own constructor makes."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddi.dhcp.decision import Destination, Reply, Rule
from ddi.dhcp.packet import DhcpPacket
from ddi.ipam.models import Lease, LeaseState
from ddi.values import slot_builder

addresses = st.integers(0, 2**32 - 1).map(IPv4Address)
texts = st.none() | st.text(max_size=8)


@given(
    ip=addresses,
    mac=texts,
    client_id=texts,
    hostname=texts,
    state=st.sampled_from(LeaseState),
    start=st.floats(allow_nan=False),
    end=st.floats(allow_nan=False),
    subnet=st.text(max_size=8),
    circuit_id=texts,
)
def test_a_lease_equals_the_one_init_makes(**fields: Any) -> None:
    built = slot_builder(Lease)(**fields)
    assert built == Lease(**fields)
    assert hash(built) == hash(Lease(**fields))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.mac = "x"  # type: ignore[misc]


@given(
    xid=st.integers(0, 2**32 - 1),
    addresses=st.lists(addresses, min_size=4, max_size=4),
    chaddr=st.binary(min_size=16, max_size=16),
    options=st.lists(st.tuples(st.integers(1, 254), st.binary(max_size=4)), max_size=4),
)
def test_a_packet_a_destination_and_a_reply_equal_what_init_makes(
    xid: int, addresses: list[IPv4Address], chaddr: bytes, options: list[tuple[int, bytes]]
) -> None:
    ciaddr, yiaddr, siaddr, giaddr = addresses
    fields: dict[str, Any] = {
        "op": 2, "htype": 1, "hlen": 6, "hops": 0, "xid": xid, "secs": 0, "flags": 0,
        "ciaddr": ciaddr, "yiaddr": yiaddr, "siaddr": siaddr, "giaddr": giaddr,
        "chaddr": chaddr, "sname": b"", "file": b"", "options": tuple(options),
    }  # fmt: skip
    packet = slot_builder(DhcpPacket)(*fields.values())
    assert packet == DhcpPacket(**fields)
    to = slot_builder(Destination)(yiaddr, 68, "eth0", chaddr[:6])
    assert to == Destination(ip=yiaddr, port=68, interface="eth0", hwaddr=chaddr[:6])
    reply = slot_builder(Reply)(packet, to, Rule.OFFER_POOL, None, 576, None)
    assert reply == Reply(packet=packet, to=to, rule=Rule.OFFER_POOL)


def test_every_field_is_required_and_only_slotted_dataclasses_are_accepted() -> None:
    with pytest.raises(TypeError):
        slot_builder(Destination)(IPv4Address(0), 68, "eth0")

    @dataclasses.dataclass
    class Plain:
        a: int

    with pytest.raises(TypeError, match="not a slotted dataclass"):
        slot_builder(Plain)

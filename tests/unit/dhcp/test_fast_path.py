"""The hot path's reuse of built values: a subnet's reply options (engine rule 7) and their
TLV bytes (codec). Reuse must never change a reply."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest

from ddi.dhcp import engine as engine_module
from ddi.dhcp import packet as packet_module
from ddi.dhcp.decision import Reply
from ddi.dhcp.options import OptionCode
from ddi.dhcp.packet import decode_packet, encode_packet
from ddi.ipam.models import Change, Kind, Op
from tests.unit.dhcp.sim import LAN, ClientSim, Harness, reply_of


def offer_options(h: Harness, client: ClientSim) -> tuple[tuple[int, bytes], ...]:
    decision = h.handle(client.discover())
    assert isinstance(decision, Reply)
    return decision.packet.options


def test_clients_of_one_shape_share_one_option_list() -> None:
    h = Harness()
    first = offer_options(h, ClientSim(mac="52:54:00:00:00:01"))
    second = offer_options(h, ClientSim(mac="52:54:00:00:00:02"))
    assert second is first
    other_order = offer_options(h, ClientSim(mac="52:54:00:00:00:03", prl=(6, 3, 1)))
    assert other_order is not first
    assert [code for code, _ in other_order][2 + 3 : 2 + 6] == [6, 3, 1]


def test_a_changed_subnet_rebuilds_its_options() -> None:
    h = Harness()
    before = offer_options(h, ClientSim(mac="52:54:00:00:00:01"))
    changed = replace(LAN, dns_servers=(IPv4Address("198.18.0.53"),))
    h.index.apply(
        [Change(epoch=1, seq=1000, kind=Kind.SUBNET, object_id="lan", op=Op.UPSERT,
                image=changed.to_image())]
    )  # fmt: skip
    after = offer_options(h, ClientSim(mac="52:54:00:00:00:02"))
    assert dict(after)[OptionCode.DOMAIN_NAME_SERVER] == IPv4Address("198.18.0.53").packed
    assert dict(before)[OptionCode.DOMAIN_NAME_SERVER] != dict(after)[OptionCode.DOMAIN_NAME_SERVER]


def test_reused_and_fresh_replies_are_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    cached, fresh = Harness(), Harness()
    monkeypatch.setattr(engine_module, "MAX_PLAIN_OPTIONS", 1)
    for n in range(1, 6):
        # Alternating shapes make the size-1 cache start over on every reply.
        prl = (1, 3, 6) if n % 2 else (3, 1)
        a = reply_of(
            cached.handle(ClientSim(mac=f"52:54:00:00:00:0{n}", prl=prl, xid=n).discover())
        )
        b = reply_of(fresh.handle(ClientSim(mac=f"52:54:00:00:00:0{n}", prl=prl, xid=n).discover()))
        assert encode_packet(a) == encode_packet(b)
    assert len(cached.engine._plain_options) == 1


def test_encoded_option_cache_starts_over_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packet_module, "MAX_ENCODED_OPTIONS", 1)
    packets = [ClientSim(mac="52:54:00:00:00:01", prl=prl).discover() for prl in ((1,), (3,), (1,))]
    for p in packets:
        assert decode_packet(encode_packet(p)) == decode_packet(encode_packet(p))
        assert decode_packet(encode_packet(p)).options == p.options
    assert len(packet_module._ENCODED_OPTIONS) == 1


def test_each_clients_echoed_options_do_not_flush_the_encoding_cache() -> None:
    # Option 61 differs per client (engine rule 4): only the shared part is cached.
    h = Harness()
    replies = []
    for n in range(10):  # the pool's size
        client = ClientSim(mac=f"52:54:00:00:01:{n:02x}", client_id=bytes((1, n, 2, 3)))
        decision = h.handle(client.discover())
        assert isinstance(decision, Reply)
        replies.append(decision)
    packet_module._ENCODED_OPTIONS.clear()
    wires = [decode_packet(encode_packet(r.packet, max_size=r.max_size)) for r in replies]
    assert len(packet_module._ENCODED_OPTIONS) == 1
    assert [w.get(OptionCode.CLIENT_IDENTIFIER) for w in wires] == [
        bytes((1, n, 2, 3)) for n in range(10)
    ]

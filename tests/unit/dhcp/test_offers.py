"""The offer table alone: bounds in all and per link, expiry through the heap, and what the
free-address ledger is told."""

from __future__ import annotations

from ipaddress import IPv4Address

from ddi.dhcp.decision import Rule
from ddi.dhcp.offers import OfferTable

OFFER = Rule.OFFER_POOL


class _Ledger:
    """Records what the table tells the free-address ledger."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, IPv4Address, str | None]] = []

    def offered(self, ip: IPv4Address, subnet: str, *, pooled: bool = False) -> None:
        self.calls.append(("offered", ip, subnet))

    def touch(self, ip: IPv4Address, hint: str | None = None) -> None:
        self.calls.append(("touch", ip, hint))


def _ip(n: int) -> IPv4Address:
    return IPv4Address("198.18.1.0") + n


def _table(max_offers: int = 100) -> tuple[OfferTable, _Ledger]:
    ledger = _Ledger()
    return OfferTable(ledger, {}, max_offers=max_offers), ledger


def test_a_hold_is_found_by_key_address_and_mac_and_dropped_from_all_three() -> None:
    table, ledger = _table()
    table.hold("hw:a", "a", _ip(1), "lan", 10.0, OFFER)
    offer = table.get("hw:a")
    assert offer is not None
    assert offer.ip == _ip(1)
    assert table.by_ip == {_ip(1): "hw:a"}
    assert table.holds_mac("a")
    table.drop("hw:a")
    assert (len(table), table.by_ip, table.holds_mac("a")) == (0, {}, False)
    assert ledger.calls == [("offered", _ip(1), "lan"), ("touch", _ip(1), "lan")]


def test_the_same_address_held_again_is_not_recounted() -> None:
    table, ledger = _table()
    table.hold("hw:a", "a", _ip(1), "lan", 10.0, OFFER)
    table.hold("hw:a", "a", _ip(1), "lan", 20.0, Rule.ACK_SELECTING)  # the ACK after the OFFER
    assert ("touch", _ip(1), "lan") not in ledger.calls
    table.hold("hw:a", "a", _ip(2), "lan", 30.0, OFFER)  # another address: the first frees
    assert ("touch", _ip(1), "lan") in ledger.calls
    assert table.by_ip == {_ip(2): "hw:a"}


def test_the_oldest_goes_past_the_bound_in_all_and_per_link() -> None:
    table, _ = _table(max_offers=3)
    for n in range(4):
        table.hold(f"hw:{n}", None, _ip(n), "lan", 10.0, OFFER)
    assert list(table.by_key) == ["hw:1", "hw:2", "hw:3"]
    table, _ = _table()
    for n in range(3):
        table.hold(f"hw:{n}", None, _ip(n), "lan", 10.0, OFFER, link="relay1", per_link=2)
    table.hold("hw:x", None, _ip(9), "lan", 10.0, OFFER, link="relay2", per_link=2)
    assert sorted(table.by_key) == ["hw:1", "hw:2", "hw:x"]  # relay1's oldest went


def test_holds_expire_in_time_order_and_a_replaced_hold_does_not_expire_its_successor() -> None:
    table, _ = _table()
    table.hold("hw:a", "a", _ip(1), "lan", 5.0, OFFER)
    table.hold("hw:b", "b", _ip(2), "lan", 50.0, OFFER)
    table.hold("hw:a", "a", _ip(3), "lan", 100.0, OFFER)  # replaces a's hold ending at 5
    table.expire(60.0)
    assert list(table.by_key) == ["hw:a"]  # b ended; a's stale entry at 5 dropped nothing
    assert table.by_ip == {_ip(3): "hw:a"}
    table.expire(100.0)
    assert len(table) == 0


def test_release_ends_an_ack_hold_for_its_address_only_and_tells_the_ledger_nothing() -> None:
    table, ledger = _table()
    table.hold("hw:a", "a", _ip(1), "lan", 10.0, Rule.ACK_SELECTING)
    table.hold("hw:b", "b", _ip(2), "lan", 10.0, OFFER, link="eth0", per_link=10)
    table.hold("hw:c", "c", _ip(3), "lan", 10.0, Rule.ACK_SELECTING)
    calls = list(ledger.calls)
    table.release("hw:b", _ip(2))  # an OFFER waits for its REQUEST
    table.release("hw:c", _ip(9))  # a lease for another address than the one held
    table.release("hw:z", _ip(1))  # nothing held for that client
    assert sorted(table.by_key) == ["hw:a", "hw:b", "hw:c"]
    table.release("hw:a", _ip(1))
    assert sorted(table.by_key) == ["hw:b", "hw:c"]
    assert _ip(1) not in table.by_ip
    assert not table.holds_mac("a")
    assert ledger.calls == calls  # the lease now keeps the address taken

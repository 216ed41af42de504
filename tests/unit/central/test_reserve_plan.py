"""``central.nautobot.reserve``: marked IPAM addresses → what the down log must get."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from central.nautobot.reserve import Held, Marked, Plan, host_id, hostname_of, plan, reservation
from ddi.errors import Invalid
from ddi.ipam.models import Owner

A = "5bcdd7c6-7b5a-4e8e-8fcb-c93d71d8870a"
B = "9a39b2b5-4ac2-4fb6-aa56-f7f8d2e12ed3"


def marked(ipam_id: str = A, **over: str) -> Marked:
    fields = {"site": "s1", "address": "198.18.0.20/24", "dns_name": "pxe1.s1.example",
              "mac": "52-54-00-AA-BB-CC"} | over  # fmt: skip
    return Marked(ipam_id=ipam_id, **fields)


def test_a_marked_address_becomes_a_central_reservation_with_a_stable_id() -> None:
    host = reservation(marked())
    assert host.id == host_id(A) == reservation(marked()).id
    assert len(host.id) == 32
    assert int(host.id, 16) >= 0
    assert host.id != host_id(B)
    assert (host.ip, host.hostname, host.mac, host.owner) == (
        IPv4Address("198.18.0.20"), "pxe1", "52:54:00:aa:bb:cc", Owner.CENTRAL,
    )  # fmt: skip


def test_a_name_comes_from_the_dns_name_or_the_address() -> None:
    ip = IPv4Address("198.18.0.20")
    assert hostname_of("PXE1.s1.example.", ip) == "pxe1"
    assert hostname_of("", ip) == "ip-198-18-0-20"
    with pytest.raises(Invalid, match="hostname"):
        hostname_of("bad_name.example", ip)


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"mac": ""}, "mac"),
        ({"mac": "ff:ff:ff:ff:ff:ff"}, "mac"),
        ({"address": "2001:db8::5/64"}, "ip"),
        ({"address": "nonsense"}, "ip"),
        ({"dns_name": "-x.example"}, "hostname"),
    ],
)
def test_unusable_addresses_are_reported_not_queued(over: dict[str, str], field: str) -> None:
    out = plan([marked(**over)], {})
    assert out.queue == []
    assert out.withdraw == []
    assert [u.field for u in out.unusable] == [field]
    assert out.unusable[0].key.startswith(f"invalid:{field}:")


def test_unchanged_reservations_plan_nothing_and_changes_are_queued() -> None:
    host = reservation(marked())
    held = {A: Held(ipam_id=A, site="s1", host=host)}
    assert plan([marked()], held) == Plan()
    moved = plan([marked(address="198.18.0.21/24")], held)
    assert moved.withdraw == []
    assert [str(q.host.ip) for q in moved.queue] == ["198.18.0.21"]
    assert moved.queue[0].host.id == host.id


def test_a_reservation_refused_in_another_form_is_tried_again() -> None:
    other = reservation(marked(mac="52:54:00:00:00:09"))
    held = {A: Held(ipam_id=A, site="s1", host=None, noted=frozenset({"conflict:x"}),
                    refused=other, refused_at="1:7")}  # fmt: skip
    assert [q.ipam_id for q in plan([marked()], held, cursors={"s1": "1:7"}).queue] == [A]


def test_unmarked_or_deleted_addresses_are_withdrawn_and_a_site_move_is_both() -> None:
    host = reservation(marked())
    held = {A: Held(ipam_id=A, site="s1", host=host), B: Held(ipam_id=B, site="s1", host=None)}
    gone = plan([], held)
    assert [(w.ipam_id, w.site, w.host) for w in gone.withdraw] == [(A, "s1", host)]
    assert gone.queue == []
    moved = plan([marked(site="s2")], held)
    assert [(w.site, w.host.id) for w in moved.withdraw] == [("s1", host.id)]
    assert [(q.site, q.host.id) for q in moved.queue] == [("s2", host.id)]
    broken = plan([marked(mac="")], held)
    assert [w.host for w in broken.withdraw] == [host]
    assert [u.field for u in broken.unusable] == ["mac"]


def test_an_address_listed_twice_is_taken_once() -> None:
    out = plan([marked(), marked()], {})
    assert len(out.queue) == 1


def test_an_address_the_site_reserves_for_the_same_mac_itself_needs_nothing() -> None:
    host = reservation(marked())
    held = {A: Held(ipam_id=A, site="s1", host=host)}
    own = {("s1", "198.18.0.20"): ("e" * 32, "52:54:00:aa:bb:cc")}
    out = plan([marked()], held, own)
    assert [(s.ipam_id, s.host_id) for s in out.served] == [(A, "e" * 32)]
    assert out.queue == []
    assert [w.host for w in out.withdraw] == [host]
    other_mac = {("s1", "198.18.0.20"): ("e" * 32, "52:54:00:00:00:01")}
    assert [q.ipam_id for q in plan([marked()], {}, other_mac).queue] == [A]
    assert plan([marked()], {}, {("s2", "198.18.0.20"): ("e" * 32, "52:54:00:aa:bb:cc")}).queue


def test_a_refused_request_waits_for_the_site_or_the_request_to_change() -> None:
    host = reservation(marked())
    held = {A: Held(ipam_id=A, site="s1", host=None, refused=host, refused_at="1:7")}
    assert plan([marked()], held, cursors={"s1": "1:7"}) == Plan()
    assert [q.ipam_id for q in plan([marked()], held, cursors={"s1": "1:8"}).queue] == [A]
    changed = plan([marked(mac="52:54:00:aa:bb:cd")], held, cursors={"s1": "1:7"})
    assert [q.host.mac for q in changed.queue] == ["52:54:00:aa:bb:cd"]

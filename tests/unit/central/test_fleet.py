"""The fleet console's words: link states, ages, search terms and conflicts explained."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from central.console import fleet, safe_next
from ddi.errors import Invalid


def test_link_state_from_the_last_word_and_the_threshold() -> None:
    assert fleet.link_state(None, now=100.0, stale_after=10) == "never"
    assert fleet.link_state(90.0, now=100.0, stale_after=10) == "up"
    assert fleet.link_state(89.9, now=100.0, stale_after=10) == "stale"


def test_backlog_age_is_known_only_while_up() -> None:
    assert fleet.backlog_age("up", (100.0, 142.5)) == 42.5
    assert fleet.backlog_age("up", (150.0, 142.5)) == 0.0  # a clock ahead of central's
    assert fleet.backlog_age("up", None) == 0.0
    assert fleet.backlog_age("stale", (100.0, 142.5)) is None
    assert fleet.backlog_age("never", None) is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 s"), (59.9, "59 s"), (60, "1 min"), (3599, "59 min"), (7200, "2 h"), (90000, "1 d")],
)
def test_durations_in_the_largest_whole_unit(seconds: float, words: str) -> None:
    assert fleet.duration(seconds) == words
    assert fleet.ago(seconds) == f"{words} ago"
    assert fleet.ago(None) == "never"


def test_iso_time_for_html() -> None:
    assert fleet.iso(1_796_000_000.0) == "2026-11-30T00:53:20Z"


def test_search_terms_are_classified_and_normalised() -> None:
    mac = fleet.classify(" 5254.00AA.BB01 ")
    assert (mac.what, mac.lookups) == ("mac", (("mac", "52:54:00:aa:bb:01"),))
    ip = fleet.classify("198.18.2.50")
    assert (ip.what, ip.lookups) == ("ipv4", (("ip", "198.18.2.50"),))
    ip6 = fleet.classify("2001:DB8:0::5")
    assert ip6.lookups == (("ip6", "2001:db8::5"), ("prefix", "2001:db8::5/128"))
    assert ip6.address == IPv6Address("2001:db8::5")
    name = fleet.classify("Web1.S1.Example.")
    assert name.lookups == (
        ("hostname", "web1.s1.example"),
        ("name", "web1.s1.example"),
        ("hostname", "web1"),
    )
    assert fleet.classify("web1").lookups == (("hostname", "web1"), ("name", "web1"))
    for bad in ("", "   ", "x" * 254):
        with pytest.raises(Invalid):
            fleet.classify(bad)


def test_address_in_subnet() -> None:
    assert fleet.contains("198.18.2.0/24", fleet.classify("198.18.2.50").address)  # type: ignore[arg-type]
    assert not fleet.contains("198.18.3.0/24", fleet.classify("198.18.2.50").address)  # type: ignore[arg-type]
    assert not fleet.contains("nonsense", fleet.classify("198.18.2.50").address)  # type: ignore[arg-type]


def test_conflicts_explained_with_both_fixes() -> None:
    held = fleet.explain({
        "site": "s1", "id": "7", "object_id": "c1", "field": "mac", "value": "52:54:00:00:00:01",
        "edge_image": {"hostname": "pc1", "mac": "52:54:00:00:00:01"},
        "central_image": {"id": "c1", "hostname": "rack1", "ip": "198.18.1.10"},
    })  # fmt: skip
    assert held.summary == (
        "Central's reservation (host rack1 198.18.1.10) wants mac 52:54:00:00:00:01, which the"
        " site already gives to host pc1 52:54:00:00:00:01; the site keeps serving its own."
    )
    assert held.central_fix == "ddi-central reserve remove --site s1 c1"
    assert held.edge_fix.startswith("ddi sync resolve 7 --keep central|edge")
    same_id = fleet.explain({"site": "s1", "id": "8", "object_id": "h9", "field": "id",
                             "value": "h9", "central_image": {"id": "h9"},
                             "edge_image": {}})  # fmt: skip
    assert "the id of a host the site made itself" in same_id.summary
    refused = fleet.explain({"site": "s2", "id": "9", "object_id": "c2", "field": "ip",
                             "value": "outside", "central_image": None,
                             "edge_image": None})  # fmt: skip
    assert "cannot apply" in refused.summary
    assert "--site s2 c2" in refused.central_fix
    record = fleet.explain({"site": "s1", "id": "3", "field": "hostname", "value": "rack1",
                            "edge_image": {"name": "rack1.s1.example", "rtype": "A"},
                            "central_image": {"id": "c3", "hostname": "rack1"}})  # fmt: skip
    assert "already gives to record rack1.s1.example;" in record.summary


@pytest.mark.parametrize(
    ("raw", "target"),
    [("/sites/s1?kind=host", "/sites/s1?kind=host"), ("//evil.example/", "/"),
     ("https://evil.example/", "/"), (None, "/"), ("", "/"), ("/" + "a" * 3000, "/")],
)  # fmt: skip
def test_login_goes_back_to_this_server_only(raw: str | None, target: str) -> None:
    assert safe_next(raw) == target

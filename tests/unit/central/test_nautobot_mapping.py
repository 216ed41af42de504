"""The pure mapping from the pull feed's objects to IPAM objects (central.nautobot.mapping)."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.config import load_central_config
from central.nautobot import config, mapping
from central.nautobot.mapping import AddressState, Claim, PrefixState, Status
from ddi.errors import ConfigError

HOST = {"id": "a" * 32, "ip": "198.18.0.10", "hostname": "client1", "mac": "52:54:00:00:00:10"}
LEASE = {
    "ip": "198.18.0.10",
    "mac": "52:54:00:00:00:10",
    "hostname": "from-dhcp",
    "state": "bound",
    "start": 1.0,
    "end": 2.0,
    "subnet": "lan",
}


def test_subnets_claim_their_prefix() -> None:
    (v4,) = mapping.claims("subnet", "lan", {"name": "lan", "cidr": "198.18.0.0/24"})
    (v6,) = mapping.claims("subnet6", "lan6", {"name": "lan6", "cidr": "2001:db8:1::/64"})
    assert (v4.key, v4.description) == ("prefix:198.18.0.0/24", "lan")
    assert v6.key == "prefix:2001:db8:1::/64"


def test_dual_stack_host_claims_both_addresses() -> None:
    image = HOST | {"ip6": "2001:db8:1::10"}
    keys = {c.key for c in mapping.claims("host", HOST["id"], image)}
    assert keys == {"ip:198.18.0.10", "ip:2001:db8:1::10"}


@pytest.mark.parametrize("state", ["released", "expired", "declined"])
def test_leases_not_bound_claim_nothing(state: str) -> None:
    assert mapping.claims("lease", "198.18.0.10", LEASE | {"state": state}) == ()


def test_lease6_na_claims_its_address_pd_nothing() -> None:
    na = {"kind": "na", "prefix": "2001:db8:1::99/128", "state": "bound", "hostname": "h"}
    pd = na | {"kind": "pd", "prefix": "2001:db8:2::/56"}
    assert [c.key for c in mapping.claims("lease6", "x", na)] == ["ip:2001:db8:1::99"]
    assert mapping.claims("lease6", "y", pd) == ()


def test_records_and_deleted_objects_claim_nothing() -> None:
    assert mapping.claims("record", "r", {"name": "x", "type": "A"}) == ()
    assert mapping.claims("host", "h", None) == ()


@pytest.mark.parametrize(
    ("kind", "image"),
    [
        ("host", {"ip": "not-an-address", "hostname": "x"}),
        ("subnet", {"name": "x", "cidr": "198.18.0.1/24"}),  # host bits set
        ("lease", {"ip": "198.18.0.1"}),  # no state
    ],
)
def test_unreadable_images_are_unmapped(kind: str, image: dict[str, object]) -> None:
    with pytest.raises(mapping.Unmapped):
        mapping.claims(kind, "o", image)


def test_reservation_wins_over_its_lease_and_borrows_nothing_it_has() -> None:
    host = mapping.claims("host", HOST["id"], HOST)
    lease = mapping.claims("lease", "198.18.0.10", LEASE)
    state = mapping.merge("ip:198.18.0.10", [*lease, *host])
    assert state == AddressState(
        address="198.18.0.10/32",
        dns_name="client1",
        mac="52:54:00:00:00:10",
        status=Status.RESERVED,
        sources=(f"host:{HOST['id']}", "lease:198.18.0.10"),
    )


def test_lease_alone_is_dhcp_and_nothing_left_is_none() -> None:
    lease = mapping.claims("lease", "198.18.0.10", LEASE)
    state = mapping.merge("ip:198.18.0.10", lease)
    assert isinstance(state, AddressState)
    assert (state.status, state.dns_name) == (Status.DHCP, "from-dhcp")
    assert mapping.merge("ip:198.18.0.10", []) is None


def _change(kind: str, object_id: str, site: str = "s1") -> dict[str, object]:
    return {"site": site, "kind": kind, "object_id": object_id, "op": "upsert", "image": {}}


def test_plan_moves_a_host_and_keeps_the_lease_on_its_old_address() -> None:
    old = mapping.claims("host", HOST["id"], HOST)
    lease = mapping.claims("lease", "198.18.0.10", LEASE)
    moved = HOST | {"ip": "198.18.0.20"}
    objects = mapping.objects_touched([_change("host", HOST["id"])])
    page = mapping.read_page(objects, {("s1", "host", HOST["id"]): moved})
    before = {("s1", "host", HOST["id"]): old}
    keys = mapping.affected_keys(page, before)
    assert keys == {("s1", "ip:198.18.0.10"), ("s1", "ip:198.18.0.20")}
    on_keys = {("s1", "ip:198.18.0.10"): [*old, *lease], ("s1", "ip:198.18.0.20"): []}
    desired = mapping.plan(page, on_keys)
    left = desired[("s1", "ip:198.18.0.10")]
    new = desired[("s1", "ip:198.18.0.20")]
    assert isinstance(left, AddressState)
    assert (left.status, left.sources) == (Status.DHCP, ("lease:198.18.0.10",))
    assert isinstance(new, AddressState)
    assert new.status is Status.RESERVED


def test_plan_deletes_what_nothing_claims_any_more() -> None:
    subnet = mapping.claims("subnet", "lan", {"name": "lan", "cidr": "198.18.0.0/24"})
    objects = {("s1", "subnet", "lan")}
    page = mapping.read_page(objects, {})  # gone from central
    keys = mapping.affected_keys(page, {("s1", "subnet", "lan"): subnet})
    desired = mapping.plan(page, {k: list(subnet) for k in keys})
    assert desired == {("s1", "prefix:198.18.0.0/24"): None}


def test_replay_of_the_current_state_plans_the_same_objects() -> None:
    subnet = mapping.claims("subnet", "lan", {"name": "lan", "cidr": "198.18.0.0/24"})
    objects = {("s1", "subnet", "lan")}
    image = {"name": "lan", "cidr": "198.18.0.0/24"}
    page = mapping.read_page(objects, {("s1", "subnet", "lan"): image})
    desired = mapping.plan(page, {("s1", "prefix:198.18.0.0/24"): list(subnet)})
    assert desired == {
        ("s1", "prefix:198.18.0.0/24"): PrefixState(prefix="198.18.0.0/24", description="lan")
    }


def test_unmapped_entries_are_counted_and_claim_nothing() -> None:
    objects = {("s1", "host", "h")}
    page = mapping.read_page(objects, {("s1", "host", "h"): {"ip": "300.1.1.1", "hostname": "x"}})
    assert page.unmapped == 1
    assert page.after == {("s1", "host", "h"): ()}


def test_keys_in_entries_names_every_image_of_the_page() -> None:
    oid = str(HOST["id"])
    changes = [
        {"site": "s1", "kind": "host", "object_id": oid, "op": "upsert", "image": HOST},
        {"site": "s1", "kind": "host", "object_id": oid, "op": "upsert",
         "image": HOST | {"ip": "198.18.0.11", "ip6": "2001:db8:1::11"}},
        {"site": "s2", "kind": "host", "object_id": oid, "op": "delete", "image": HOST},
        {"site": "s1", "kind": "lease", "object_id": "198.18.0.12", "op": "upsert",
         "image": LEASE | {"ip": "198.18.0.12", "state": "expired"}},
        {"site": "s1", "kind": "host", "object_id": "b" * 32, "op": "upsert",
         "image": HOST | {"ip": "not an address"}},
        {"site": "s1", "kind": "record", "object_id": "r", "op": "delete", "image": {}},
    ]  # fmt: skip
    assert mapping.keys_in_entries(changes) == {
        ("s1", "ip:198.18.0.10"),
        ("s1", "ip:198.18.0.11"),
        ("s1", "ip:2001:db8:1::11"),
        ("s2", "ip:198.18.0.10"),
    }


def test_claims_survive_their_image_round_trip() -> None:
    (claim,) = mapping.claims("host", HOST["id"], HOST)
    assert Claim.from_image(claim.to_image()) == claim


# --- [nautobot] ---


def _token(tmp_path: Path) -> Path:
    path = tmp_path / "nautobot.token"
    path.write_text("0123456789abcdef\n")
    return path


def test_config_defaults_and_site_map(tmp_path: Path) -> None:
    _token(tmp_path)
    parsed = config.parse(
        {
            "url": "https://nautobot.example.net/",
            "token_file": "nautobot.token",
            "ca_file": "ca.pem",
            "sites": {"s1": {"location": "Paris"}},
        },
        tmp_path,
    )
    assert parsed.url == "https://nautobot.example.net"
    assert parsed.token == "0123456789abcdef"
    assert parsed.verify == str(tmp_path / "ca.pem")
    assert parsed.placement("s1") == config.Placement(location="Paris", namespace="s1")
    assert parsed.placement("s2") == config.Placement(location="s2", namespace="s2")
    assert parsed.reconcile_interval == 3600
    assert "0123456789abcdef" not in repr(parsed)
    off = config.parse({"url": "https://x", "token_file": "nautobot.token",
                        "reconcile_interval": 0}, tmp_path)  # fmt: skip
    assert off.reconcile_interval == 0


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"url": "ftp://x", "token_file": "nautobot.token"}, "nautobot.url"),
        ({"url": "https://x"}, "nautobot.token_file"),
        ({"url": "https://x", "token_file": "missing"}, "nautobot.token_file"),
        ({"url": "https://x", "token_file": "nautobot.token", "batch_size": 0},
         "nautobot.batch_size"),
        ({"url": "https://x", "token_file": "nautobot.token", "interval": float("nan")},
         "nautobot.interval"),
        ({"url": "https://x", "token_file": "nautobot.token", "reconcile_interval": 5},
         "nautobot.reconcile_interval"),
        ({"url": "https://x", "token_file": "nautobot.token", "reconcile_interval": "1h"},
         "nautobot.reconcile_interval"),
        ({"url": "https://x", "token_file": "nautobot.token", "verify": False,
          "ca_file": "ca.pem"}, "nautobot.ca_file"),
        ({"url": "https://x", "token_file": "nautobot.token", "sites": {"bad site": {}}},
         "nautobot.sites.bad site"),
        ({"url": "https://x", "token_file": "nautobot.token", "colour": 1}, "nautobot.colour"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(tmp_path: Path, table: dict[str, object], key: str) -> None:
    _token(tmp_path)
    with pytest.raises(ConfigError) as caught:
        config.parse(table, tmp_path)
    assert caught.value.key == key


def test_example_nautobot_table_parses_once_uncommented(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "central.toml"
    lines = example.read_text().splitlines()
    start = lines.index("# [nautobot]")
    text = "\n".join(lines[:start] + [line.removeprefix("# ") for line in lines[start:]])
    config_file = tmp_path / "central.toml"
    config_file.write_text(text + "\n")
    (tmp_path / "nautobot.token").write_text("t0ken\n")
    loaded = load_central_config(config_file)
    assert loaded.nautobot is not None
    assert loaded.nautobot.token == "t0ken"
    assert loaded.nautobot.verify == str(tmp_path / "nautobot-ca.pem")
    assert loaded.nautobot.placement("site1") == config.Placement(
        location="Paris", namespace="Paris"
    )
    assert load_central_config(example).nautobot is None

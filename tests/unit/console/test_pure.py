"""The console's pure parts: time filters and IPv6 pool usage."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest

from ddi.console.timefilter import parse_time
from ddi.console.usage6 import subnet6_usage
from ddi.errors import Invalid
from ddi.ipam.models import Host
from ddi.ipam.models6 import Lease6, Lease6Kind, PdPool, Pool6, Subnet6

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", None), ("2d", NOW - 2 * 86400), ("90m", NOW - 5400), ("1w", NOW - 604800),
     ("2027-01-15", 1_799_971_200.0), ("2027-01-15 10:30", 1_799_971_200.0 + 37800),
     ("2027-01-15T10:30+01:00", 1_799_971_200.0 + 34200)],
)  # fmt: skip
def test_times_as_the_cli_takes_them_read_as_utc(text: str, expected: float | None) -> None:
    assert parse_time("since", text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "1y", "9999999d", "2027-01-15" + "0" * 40])
def test_a_bad_time_names_its_field(text: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_time("until", text, NOW)
    assert caught.value.field == "until"


def _lease(kind: Lease6Kind, prefix: str, end: float = NOW + 60) -> Lease6:
    return Lease6(kind=kind, prefix=IPv6Network(prefix), duid="00:01", iaid=1, start=NOW - 60,
                  end=end, preferred_end=end, subnet="lan6")  # fmt: skip


def test_ipv6_pool_usage_counts_active_leases_and_reservations_once() -> None:
    subnet = Subnet6(
        name="lan6", cidr=IPv6Network("2001:db8:1::/64"),
        pools=(Pool6(start=IPv6Address("2001:db8:1::100"), end=IPv6Address("2001:db8:1::103")),),
        pd_pools=(PdPool(prefix=IPv6Network("2001:db8:100::/48"), delegated_length=56),),
    )  # fmt: skip
    leases = [
        _lease(Lease6Kind.NA, "2001:db8:1::100/128"),
        _lease(Lease6Kind.NA, "2001:db8:1::101/128", end=NOW - 1),  # expired
        _lease(Lease6Kind.PD, "2001:db8:100:100::/56"),
    ]
    hosts = [
        Host(id="h1", hostname="a", ip6=IPv6Address("2001:db8:1::100")),  # also leased
        Host(id="h2", hostname="b", ip6=IPv6Address("2001:db8:1::102")),
    ]
    na, pd = subnet6_usage(subnet, hosts, leases, NOW)
    assert (na.kind, na.size, na.used, na.reserved) == ("na", 4, 1, 1)
    assert na.utilisation == 0.5
    assert (pd.kind, pd.size, pd.used, pd.start, pd.end) == (
        "pd",
        256,
        1,
        "2001:db8:100::/48",
        "/56",
    )

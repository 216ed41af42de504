"""Zone-file record names, a CNAME at the apex, and the name server's name (pure rules)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from ddi.errors import Conflict, Invalid
from ddi.ipam.models import Host, Record
from ddi.ipam.validate import zone_name
from ddi.ipam.write_checks import check_name_server, check_record_placement

DOMAIN = "site1.example"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@", DOMAIN),
        ("www", f"www.{DOMAIN}"),
        ("_ldap._tcp", f"_ldap._tcp.{DOMAIN}"),  # relative, as in a zone file
        ("mail.other.example.", "mail.other.example."),  # a trailing dot: absolute
        (f"www.{DOMAIN}", f"www.{DOMAIN}"),  # already under the domain: as written
        (f"WWW.{DOMAIN.upper()}", f"WWW.{DOMAIN.upper()}"),
        ("a.b", f"a.b.{DOMAIN}"),
    ],
)
def test_record_names_follow_zone_file_rules(raw: str, expected: str) -> None:
    assert zone_name(raw, DOMAIN) == expected


def record(name: str, rtype: str, value: str = "198.18.0.9") -> Record:
    return Record(id="r", name=name, rtype=rtype, value=value)


def test_a_cname_at_the_apex_is_refused_other_types_are_not() -> None:
    with pytest.raises(Invalid) as caught:
        check_record_placement(record(DOMAIN, "CNAME", f"web.{DOMAIN}"), DOMAIN)
    assert "RFC 1034" in caught.value.reason
    check_record_placement(record(DOMAIN, "MX", f"10 mail.{DOMAIN}"), DOMAIN)
    check_record_placement(record(f"www.{DOMAIN}", "CNAME", f"web.{DOMAIN}"), DOMAIN)


def test_the_name_server_name_refuses_hosts_and_address_records() -> None:
    ns = f"ns.{DOMAIN}"
    host = Host(id="h", ip=IPv4Address("198.18.0.9"), hostname="ns", mac="52:54:00:00:00:09")
    with pytest.raises(Conflict) as caught:
        check_name_server(host, [ns], ns)
    assert caught.value.field == "hostname"
    assert ns in caught.value.holder
    for rtype in ("A", "AAAA", "CNAME"):
        with pytest.raises(Conflict):
            check_name_server(record(ns, rtype), [ns], ns)
    check_name_server(record(ns, "TXT", "hello"), [ns], ns)  # beside the A: fine
    check_name_server(host, [ns], None)  # no DNS: nothing reserved
    check_name_server(host, [f"web.{DOMAIN}"], ns)

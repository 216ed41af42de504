"""The import parsers on files in each server's own syntax: what they carry, what they skip
and what they refuse, each named by file and line."""

from __future__ import annotations

import calendar

import pytest

from ddi.migrate import dnsmasq, isc, kea, table, zonefile
from ddi.migrate.detect import parser_for
from ddi.migrate.items import HostItem, LeaseItem, RecordItem
from ddi.migrate.limits import MAX_LINE

DNSMASQ_CONF = """\
# dnsmasq.conf of a small office
interface=eth1
dhcp-range=198.18.0.100,198.18.0.199,12h
domain=site.example
dhcp-host=52:54:00:aa:bb:01,198.18.0.10,web1
dhcp-host=52:54:00:AA:BB:02,printer,198.18.0.11,2h
dhcp-host=id:01:52:54:00:aa:bb:03,198.18.0.12,cam1,infinite
dhcp-host=52:54:00:aa:bb:04,set:lab,198.18.0.13
dhcp-host=52:54:00:aa:bb:05,ignore
dhcp-host=52:54:00:*:*:06,198.18.0.14,wild
dhcp-host=52:54:00:aa:bb:07,[2001:db8::7],v6only
dhcp-host=52:54:00:aa:bb:08,198.18.0.15,bad!name
host-record=nas,nas.site.example,198.18.0.20,2001:db8::20
cname=www.site.example,web1.site.example
mx-host=site.example,mail.site.example,10
srv-host=_ldap._tcp.site.example,ldap.site.example,389,0,5
txt-record=site.example,"v=spf1 mx -all"
dhcp-hostsfile=/etc/dnsmasq.hosts
addn-hosts=/etc/hosts.extra
conf-dir=/etc/dnsmasq.d,*.conf
"""


def test_dnsmasq_conf_hosts_records_and_includes() -> None:
    parsed = dnsmasq.parse_conf(DNSMASQ_CONF, "dnsmasq.conf")
    assert parsed.hosts == [
        HostItem(source="dnsmasq.conf:5", ip="198.18.0.10", hostname="web1",
                 mac="52:54:00:aa:bb:01"),
        HostItem(source="dnsmasq.conf:6", ip="198.18.0.11", hostname="printer",
                 mac="52:54:00:AA:BB:02", lease_time=7200),
        HostItem(source="dnsmasq.conf:7", ip="198.18.0.12", hostname="cam1",
                 client_id="01:52:54:00:aa:bb:03"),
        # no name: one made from the address
        HostItem(source="dnsmasq.conf:8", ip="198.18.0.13", hostname="ip-198-18-0-13",
                 mac="52:54:00:aa:bb:04"),
    ]  # fmt: skip
    refused = {p.source: p.why for p in parsed.refused}
    assert "wildcard MAC" in refused["dnsmasq.conf:10"]
    assert "'bad!name'" in refused["dnsmasq.conf:12"]
    skipped: dict[str, str] = {}
    for problem in parsed.skipped:
        skipped[problem.source] = skipped.get(problem.source, "") + problem.why + "; "
    assert "infinite" in skipped["dnsmasq.conf:7"]
    assert "tag" in skipped["dnsmasq.conf:8"]
    assert "ignore" in skipped["dnsmasq.conf:9"]
    assert "IPv6" in skipped["dnsmasq.conf:11"]
    records = {(r.name, r.rtype, r.value) for r in parsed.records}
    assert records == {
        ("nas", "A", "198.18.0.20"),
        ("nas", "AAAA", "2001:db8::20"),
        ("nas.site.example.", "A", "198.18.0.20"),
        ("nas.site.example.", "AAAA", "2001:db8::20"),
        ("www.site.example.", "CNAME", "web1.site.example."),
        ("site.example.", "MX", "10 mail.site.example."),
        ("_ldap._tcp.site.example.", "SRV", "0 5 389 ldap.site.example."),
        ("site.example.", "TXT", "v=spf1 mx -all"),
    }
    assert [(i.path, i.form, i.suffixes) for i in parsed.includes] == [
        ("/etc/dnsmasq.hosts", "hostsfile", ()),
        ("/etc/hosts.extra", "hosts", ()),
        ("/etc/dnsmasq.d", "dir", (".conf",)),
    ]


def test_dnsmasq_lease_file() -> None:
    text = (
        "1800003600 52:54:00:aa:bb:01 198.18.0.101 laptop 01:52:54:00:aa:bb:01\n"
        "1800007200 52:54:00:aa:bb:02 198.18.0.102 * *\n"
        "0 52:54:00:aa:bb:03 198.18.0.103 forever *\n"
        "garbage line\n"
        "duid 00:01:00:01:2c:aa:bb:cc:52:54:00:aa:bb:01\n"
        "1800003600 1234 2001:db8::5 host6 00:01\n"
    )
    parsed = dnsmasq.parse_leases(text, "dnsmasq.leases")
    assert parsed.leases == [
        LeaseItem(source="dnsmasq.leases:1", ip="198.18.0.101", mac="52:54:00:aa:bb:01",
                  start=0.0, end=1800003600.0, hostname="laptop",
                  client_id="01:52:54:00:aa:bb:01"),
        LeaseItem(source="dnsmasq.leases:2", ip="198.18.0.102", mac="52:54:00:aa:bb:02",
                  start=0.0, end=1800007200.0),
    ]  # fmt: skip
    assert [p.source for p in parsed.refused] == ["dnsmasq.leases:4"]
    assert [p.source for p in parsed.skipped] == ["dnsmasq.leases:3", "dnsmasq.leases:6"]


def test_hosts_file_and_hostsfile() -> None:
    hosts = dnsmasq.parse_hosts(
        "127.0.0.1 localhost\n198.18.0.30 files files.site.example # nas\n2001:db8::30 files\n"
        "nonsense here\n",
        "hosts",
    )
    assert [(r.name, r.rtype, r.value) for r in hosts.records] == [
        ("files", "A", "198.18.0.30"),
        ("files.site.example.", "A", "198.18.0.30"),
        ("files", "AAAA", "2001:db8::30"),
    ]
    assert [p.source for p in hosts.refused] == ["hosts:4"]
    assert [p.source for p in hosts.skipped] == ["hosts:1"]
    hostsfile = dnsmasq.parse_hostsfile("52:54:00:aa:bb:09,198.18.0.40,sensor\n", "dh")
    assert hostsfile.hosts == [
        HostItem(source="dh:1", ip="198.18.0.40", hostname="sensor", mac="52:54:00:aa:bb:09")
    ]


def test_a_line_too_long_is_refused_by_number() -> None:
    parsed = dnsmasq.parse_conf("dhcp-host=" + "a" * MAX_LINE + "\n", "big.conf")
    assert [(p.source, "longer than" in p.why) for p in parsed.refused] == [("big.conf:1", True)]
    assert not parsed.hosts


KEA_CONF = """\
// kea-dhcp4.conf
{
  "Dhcp4": {
    # global reservations
    "reservations": [
      { "hw-address": "52:54:00:aa:bb:21", "ip-address": "198.18.0.21", "hostname": "g1" },
      { "client-id": "01:52:54:00:aa:bb:22", "ip-address": "198.18.0.22" }
    ],
    /* a subnet
       with its own */
    "subnet4": [
      {
        "id": 1, "subnet": "198.18.0.0/24",
        "reservations": [
          { "hw-address": "52:54:00:aa:bb:23", "ip-address": "198.18.0.23",
            "hostname": "s1.site.example" },
          { "duid": "00:01:02", "ip-address": "198.18.0.24" },
          { "hw-address": "52:54:00:aa:bb:25", "hostname": "noaddr" }
        ]
      }
    ],
    "shared-networks": [
      { "name": "floor2", "subnet4": [ { "id": 2, "subnet": "198.18.1.0/24",
        "reservations": [ { "hw-address": "52:54:00:aa:bb:26", "ip-address": "198.18.1.26",
                            "hostname": "url://not-a-comment" } ] } ] }
    ]
  }
}
"""


def test_kea_conf_global_subnet_and_shared_network_reservations() -> None:
    parsed = kea.parse_conf(KEA_CONF, "kea.conf")
    assert [(h.source, h.ip, h.hostname, h.mac, h.client_id) for h in parsed.hosts] == [
        ("kea.conf: reservations[0]", "198.18.0.21", "g1", "52:54:00:aa:bb:21", None),
        ("kea.conf: reservations[1]", "198.18.0.22", "ip-198-18-0-22", None,
         "01:52:54:00:aa:bb:22"),
        ("kea.conf: subnet4[0].reservations[0]", "198.18.0.23", "s1", "52:54:00:aa:bb:23", None),
        ("kea.conf: shared-networks[0].subnet4[0].reservations[0]", "198.18.1.26",
         "url://not-a-comment", "52:54:00:aa:bb:26", None),
    ]  # fmt: skip
    assert [p.source for p in parsed.refused] == ["kea.conf: subnet4[0].reservations[1]"]
    assert [p.source for p in parsed.skipped] == ["kea.conf: subnet4[0].reservations[2]"]


def test_kea_conf_json_error_names_the_line() -> None:
    parsed = kea.parse_conf('{\n  "Dhcp4": {\n    "reservations": [,]\n  }\n}\n', "k.conf")
    assert parsed.refused[0].source == "k.conf:3"


KEA_LEASES = """\
address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context,pool_id
198.18.0.101,52:54:00:aa:bb:31,01:52:54:00:aa:bb:31,3600,1800003600,1,0,0,laptop.site.example,0,,0
198.18.0.102,52:54:00:aa:bb:32,,3600,1800003600,1,0,0,,0,,0
198.18.0.102,52:54:00:aa:bb:32,,0,1800003600,1,0,0,,0,,0
198.18.0.103,52:54:00:aa:bb:33,,3600,1800003600,1,0,0,,1,,0
198.18.0.101,52:54:00:aa:bb:31,01:52:54:00:aa:bb:31,3600,1800007200,1,0,0,laptop,0,,0
not-an-ip,52:54:00:aa:bb:34,,3600,1800003600,1,0,0,,0,,0
"""


def test_kea_lease_csv_is_a_log_the_last_line_wins() -> None:
    parsed = kea.parse_leases(KEA_LEASES, "kea-leases4.csv")
    assert parsed.leases == [
        LeaseItem(source="kea-leases4.csv:6", ip="198.18.0.101", mac="52:54:00:aa:bb:31",
                  client_id="01:52:54:00:aa:bb:31", start=1800003600.0, end=1800007200.0,
                  hostname="laptop"),
    ]  # fmt: skip
    assert [p.source for p in parsed.refused] == ["kea-leases4.csv:7"]
    assert "declined" in parsed.skipped[0].why


ISC_CONF = """\
# dhcpd.conf
option domain-name "site.example";
subnet 198.18.0.0 netmask 255.255.255.0 {
  range 198.18.0.100 198.18.0.199;
  group {
    host web1 { hardware ethernet 52:54:00:aa:bb:41; fixed-address 198.18.0.41; }
    host "printer.site.example" {
      hardware ethernet 52:54:00:aa:bb:42;
      fixed-address 198.18.0.42, 198.18.0.43;
      option host-name "prn";
    }
  }
}
host cam { option dhcp-client-identifier "\\001RT\\000\\252\\273C"; fixed-address 198.18.0.44; }
host dyn { hardware ethernet 52:54:00:aa:bb:45; }
host bad { hardware ethernet 52:54:00:aa:bb:46; fixed-address cam.site.example; }
"""


def test_isc_host_blocks_at_any_depth() -> None:
    parsed = isc.parse_conf(ISC_CONF, "dhcpd.conf")
    assert [(h.source, h.ip, h.hostname, h.mac, h.client_id) for h in parsed.hosts] == [
        ("dhcpd.conf:6", "198.18.0.41", "web1", "52:54:00:aa:bb:41", None),
        ("dhcpd.conf:7", "198.18.0.42", "prn", "52:54:00:aa:bb:42", None),
        ("dhcpd.conf:14", "198.18.0.44", "cam", None, "01:52:54:00:aa:bb:43"),
    ]
    assert [p.source for p in parsed.refused] == ["dhcpd.conf:16"]
    assert {p.source for p in parsed.skipped} == {"dhcpd.conf:7", "dhcpd.conf:15"}


def test_isc_syntax_error_names_the_line() -> None:
    parsed = isc.parse_conf("host a {\n  hardware ethernet 52:54:00:aa:bb:01\n}\n", "d.conf")
    assert parsed.refused[0].source == "d.conf:3"
    assert "missing ';'" in parsed.refused[0].why
    unclosed = isc.parse_conf("host a {\n  fixed-address 198.18.0.1;\n", "e.conf")
    assert unclosed.refused[0].source == "e.conf:1"


ISC_LEASES = """\
# The format of this file is documented in the dhcpd.leases(5) manual page.
authoring-byte-order little-endian;
lease 198.18.0.150 {
  starts 4 2026/12/03 10:00:00;
  ends 4 2026/12/03 11:00:00;
  binding state active;
  hardware ethernet 52:54:00:aa:bb:51;
  uid "\\001RT\\000\\252\\273Q";
  client-hostname "laptop";
}
lease 198.18.0.151 {
  starts epoch 1800000000; # Fri ...
  ends epoch 1800003600;
  binding state active;
  hardware ethernet 52:54:00:aa:bb:52;
}
lease 198.18.0.151 {
  starts epoch 1800000000;
  ends epoch 1800000100;
  binding state free;
  hardware ethernet 52:54:00:aa:bb:52;
}
lease 198.18.0.152 {
  starts 4 2026/12/03 10:00:00;
  ends never;
  binding state active;
  hardware ethernet 52:54:00:aa:bb:53;
}
"""


def test_isc_leases_the_last_block_wins() -> None:
    parsed = isc.parse_leases(ISC_LEASES, "dhcpd.leases")
    start = float(calendar.timegm((2026, 12, 3, 10, 0, 0, 0, 0, 0)))
    assert parsed.leases == [
        LeaseItem(source="dhcpd.leases:3", ip="198.18.0.150", mac="52:54:00:aa:bb:51",
                  client_id="01:52:54:00:aa:bb:51", hostname="laptop", start=start,
                  end=start + 3600),
    ]  # fmt: skip
    assert [p.source for p in parsed.skipped] == ["dhcpd.leases:23"]


ZONE = """\
$ORIGIN site.example.
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 86400 300
@ NS ns1
ns1 A 198.18.0.1
www 600 A 198.18.0.20
www AAAA 2001:db8::20
alias CNAME www
@ MX 10 mail
_ldap._tcp SRV 0 5 389 ldap
@ TXT "v=spf1 " "mx -all"
sub NS ns.sub
20 PTR www
loc LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
"""


def test_zone_file_records() -> None:
    parsed = zonefile.parse_zone(ZONE, "db.site")
    got = {(r.name, r.rtype, r.value, r.ttl) for r in parsed.records}
    assert got == {
        ("ns1.site.example.", "A", "198.18.0.1", 300),
        ("www.site.example.", "A", "198.18.0.20", 600),
        ("www.site.example.", "AAAA", "2001:db8::20", 300),
        ("alias.site.example.", "CNAME", "www.site.example.", 300),
        ("site.example.", "MX", "10 mail.site.example.", 300),
        ("_ldap._tcp.site.example.", "SRV", "0 5 389 ldap.site.example.", 300),
        ("site.example.", "TXT", "v=spf1 mx -all", 300),
        ("sub.site.example.", "NS", "ns.sub.site.example.", 300),
    }
    assert {p.why for p in parsed.refused} == {"type LOC is not served"}
    assert len(parsed.skipped) == 3  # SOA, apex NS, PTR


def test_zone_file_errors() -> None:
    parsed = zonefile.parse_zone("$ORIGIN a.example.\nx IN FOO 1\n", "db.a")
    assert parsed.refused[0].source == "db.a:2"
    assert "FOO" in parsed.refused[0].why
    no_origin = zonefile.parse_zone("x IN A 198.18.0.1\n", "db.b")
    assert "--origin" in no_origin.refused[0].why
    given = zonefile.parse_zone("$TTL 60\nx IN A 198.18.0.1\n", "db.b", origin="b.example")
    assert [r.name for r in given.records] == ["x.b.example."]
    include = zonefile.parse_zone("$ORIGIN a.example.\n$INCLUDE /etc/passwd\n", "db.c")
    assert include.refused
    assert not include.records


def test_csv() -> None:
    parsed = table.parse_csv(
        "ip,hostname,mac,client_id,lease_time\n"
        "198.18.0.60,c1,52:54:00:aa:bb:60,,600\n"
        '198.18.0.61,c2,,"01:52:54:00:aa:bb:61",\n'
        "198.18.0.62,c3\n"
        "198.18.0.63,c4,52:54:00:aa:bb:63,,soon\n",
        "hosts.csv",
    )
    assert parsed.hosts == [
        HostItem(source="hosts.csv:2", ip="198.18.0.60", hostname="c1",
                 mac="52:54:00:aa:bb:60", lease_time=600),
        HostItem(source="hosts.csv:3", ip="198.18.0.61", hostname="c2",
                 client_id="01:52:54:00:aa:bb:61"),
    ]  # fmt: skip
    assert [p.source for p in parsed.refused] == ["hosts.csv:4", "hosts.csv:5"]
    bad = table.parse_csv("ip,name\n", "x.csv")
    assert "unknown column 'name'" in bad.refused[0].why


@pytest.mark.parametrize(
    ("form", "text", "what"),
    [
        ("dnsmasq", DNSMASQ_CONF, "configuration"),
        ("dnsmasq", "1800003600 52:54:00:aa:bb:01 198.18.0.101 laptop *\n", "lease file"),
        ("dnsmasq", "# hosts\n198.18.0.30 files\n", "hosts file"),
        ("dnsmasq", "52:54:00:aa:bb:09,198.18.0.40,sensor\n", "dhcp-hostsfile"),
        ("kea", KEA_CONF, "configuration"),
        ("kea", KEA_LEASES, "memfile lease CSV"),
        ("isc-dhcpd", ISC_CONF, "configuration"),
        ("isc-dhcpd", ISC_LEASES, "lease database"),
    ],
)
def test_which_file_of_a_server(form: str, text: str, what: str) -> None:
    assert parser_for(form, text)[0] == what


def test_record_item_wire_form_round_trips() -> None:
    record = RecordItem(source="f:1", name="www", rtype="A", value="198.18.0.1", ttl=60)
    assert RecordItem(**record.to_wire()) == record


def test_inputs_the_fuzzer_found_are_refused_not_raised() -> None:
    # a block without a head, an SOA below the apex, an unclosed quote in a lease line
    assert isc.parse_conf("host web\n .41; { hardware 198.58.0.41; }\n", "d").hosts == []
    soa = zonefile.parse_zone("$TTL 60\n8 SOA ns h 1 2 3 4 5\n", "db", origin="site.example")
    assert "non-origin SOA" in soa.refused[0].why
    header = KEA_LEASES.splitlines()[0]
    quoted = kea.parse_leases(f'{header}\n198.18.0.1,"52:54\n', "k.csv")
    assert [p.source for p in quoted.refused] == ["k.csv:2"]

"""Import files: one file's text through the parser of one form (``ddi.migrate``: dnsmasq's
configuration, dhcp-hostsfile, hosts file and lease file; Kea's configuration and lease CSV;
ISC dhcpd's configuration and lease database; a BIND zone file; CSV), then what it gave through
the import plan over an empty store (``ddi.ipam.import_plan``), as ``ddi import`` and
``POST /v1/import`` would.

The first byte picks the form; the rest is the file (decoded as UTF-8 with replacement: the
reader refuses other bytes before any parser sees them). A parser never raises: every problem
is a refusal naming file and line; the plan never raises either.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

from ddi.ipam.import_plan import plan_import
from ddi.ipam.models import Pool, Subnet
from ddi.migrate import dnsmasq, isc, kea, table, zonefile
from ddi.migrate.items import Parsed
from fuzz.core import Target

PARSERS: tuple[Callable[[str, str], Parsed], ...] = (
    dnsmasq.parse_conf,
    dnsmasq.parse_hostsfile,
    dnsmasq.parse_hosts,
    dnsmasq.parse_leases,
    kea.parse_conf,
    kea.parse_leases,
    isc.parse_conf,
    isc.parse_leases,
    lambda text, name: zonefile.parse_zone(text, name, origin="site.example"),
    table.parse_csv,
)
SUBNETS = (
    Subnet(name="lan", cidr=IPv4Network("198.18.0.0/24"), gateway=IPv4Address("198.18.0.1"),
           pools=(Pool(start=IPv4Address("198.18.0.100"), end=IPv4Address("198.18.0.199")),)),
)  # fmt: skip
_ids = itertools.count()


def check_input(data: bytes) -> str:
    if not data:
        return "empty"
    parse = PARSERS[data[0] % len(PARSERS)]
    parsed = parse(data[1:].decode("utf-8", "replace"), "fuzz")
    plan = plan_import(
        hosts=parsed.hosts,
        leases=parsed.leases,
        records=parsed.records,
        stored_hosts=(),
        stored_leases=(),
        stored_records=(),
        subnets=SUBNETS,
        domain="site.example",
        now=1_800_000_000.0,
        actor="fuzz",
        new_id=lambda: f"{next(_ids):032x}",
    )
    if parsed.refused or plan.refused:
        return "refused"
    return "planned" if plan.added else "nothing"


SEEDS = (
    b"\x00dhcp-host=52:54:00:aa:bb:01,198.18.0.10,web1\ncname=www.site.example,web1\n"
    b"host-record=nas,198.18.0.20\nconf-dir=/etc/dnsmasq.d,*.conf\n",
    b"\x0152:54:00:aa:bb:09,id:01:02:03,198.18.0.40,sensor,2h\n",
    b"\x02198.18.0.30 files files.site.example\n2001:db8::1 v6\n",
    b"\x031800003600 52:54:00:aa:bb:01 198.18.0.101 laptop 01:52:54:00:aa:bb:01\n",
    b'\x04{"Dhcp4": {"subnet4": [{"id": 1, "subnet": "198.18.0.0/24", "reservations": '
    b'[{"hw-address": "52:54:00:aa:bb:21", "ip-address": "198.18.0.21"}]}]}} // c\n',
    b"\x05address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,"
    b"state,user_context,pool_id\n198.18.0.101,52:54:00:aa:bb:31,,3600,1800003600,1,0,0,a,0,,0\n",
    b"\x06host web1 { hardware ethernet 52:54:00:aa:bb:41; fixed-address 198.18.0.41; }\n",
    b"\x07lease 198.18.0.150 {\n starts epoch 1799999000;\n ends epoch 1800003600;\n"
    b' binding state active;\n hardware ethernet 52:54:00:aa:bb:51;\n uid "\\001RT";\n}\n',
    b"\x08$TTL 60\n@ SOA ns h 1 2 3 4 5\nwww A 198.18.0.20\n@ MX 10 mail\n_x._tcp SRV 0 0 1 a\n",
    b"\x09ip,hostname,mac\n198.18.0.60,c1,52:54:00:aa:bb:60\n",
)
DICTIONARY = (
    b"dhcp-host=", b"id:", b"set:", b",", b"\n", b"{", b"}", b";", b'"', b"\\", b"lease ",
    b"host ", b"$ORIGIN ", b"$INCLUDE ", b"198.18.0.", b"52:54:00:",
)  # fmt: skip


def target() -> Target:
    return Target(
        name="imports",
        doc="one import file (first byte: which form) through its parser and the import plan",
        check=check_input,
        seeds=lambda: SEEDS,
        max_len=8192,
        dictionary=DICTIONARY,
    )

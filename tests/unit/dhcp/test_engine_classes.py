"""Options by definition, client classes and shared networks through the engine, bytes in and
bytes out: precedence host > class > subnet > global, option 55 or always_send, class pools,
a class's boot profile, and the next subnet of a shared network when one is full."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from ddi.config import Config, parse_config
from ddi.dhcp.decision import DropReason
from ddi.dhcp.option_defs import OptionDefs, make_value
from ddi.dhcp.options import MessageType, OptionCode
from ddi.ipam.models import HostDhcpOptions
from tests.unit.dhcp.sim import INBOUND, ClientSim, Harness, dropped, host, reply_of

A = IPv4Address
HEAD = """
[site]
id = "site1"
domain = "site.example"
data_dir = "state"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"
dns_servers = ["198.18.0.1"]
interface = "eth0"
"""
PHONES = """
[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.104"

[[subnets.pools]]
start = "198.18.0.200"
end = "198.18.0.201"
client_class = "phones"

[[subnets.options]]
name = "tftp-server-name"
value = "subnet.example"

[[subnets.options]]
name = "wpad"
value = "http://198.18.0.1/wpad.dat"

[[dhcp.options]]
name = "tftp-server-name"
value = "global.example"

[[dhcp.options]]
name = "domain-search"
value = ["site.example", "lab.site.example"]

[[dhcp.options]]
name = "time-offset"
value = 3600
always_send = true

[[dhcp.classes]]
name = "phones"
[dhcp.classes.match]
vendor_class_prefix = "Cisco Systems, Inc. IP Phone"
[[dhcp.classes.options]]
name = "tftp-server-address"
value = ["198.18.0.5", "198.18.0.6"]
[[dhcp.classes.options]]
name = "tftp-server-name"
value = "class.example"

[[dhcp.classes]]
name = "lab-macs"
[dhcp.classes.match]
mac_prefix = "52:54:01"
[[dhcp.classes.options]]
name = "tftp-server-name"
value = "second-class.example"
"""
PRL = (1, 3, 6, 66, 119, 150, 252)
PHONE_VENDOR = (OptionCode.VENDOR_CLASS_IDENTIFIER, b"Cisco Systems, Inc. IP Phone CP-7975G")


def config(text: str) -> Config:
    return parse_config(tomllib.loads(HEAD + text), path=Path("/etc/ddi/ddi.toml"))


def harness(text: str, **kw: Any) -> Harness:
    cfg = config(text)
    d = cfg.dhcp
    return Harness(
        subnets=cfg.subnets,
        options=d.options,
        classes=d.classes,
        shared_networks=d.shared_networks,
        option_defs=d.option_defs,
        **kw,
    )


def test_subnet_over_global_and_only_what_option_55_asks() -> None:
    h = harness(PHONES)
    ack = reply_of(ClientSim(mac="52:54:00:00:00:01", prl=PRL).dora(h))
    assert ack.yiaddr in (A("198.18.0.100"), A("198.18.0.101"))
    assert ack.get(66) == b"subnet.example"  # the subnet's, over the global one
    assert ack.get(252) == b"http://198.18.0.1/wpad.dat"
    assert ack.get(119) == b"\x04site\x07example\x00\x03lab\xc0\x00"
    assert ack.get(150) is None  # a phone-class option
    assert ack.get(2) == (3600).to_bytes(4, "big")  # always_send, though not asked for
    # Not asked for, not sent.
    quiet = reply_of(ClientSim(mac="52:54:00:00:00:02", prl=(1, 3)).dora(h))
    assert quiet.get(66) is None
    assert quiet.get(119) is None
    assert quiet.get(252) is None
    assert quiet.get(2) == (3600).to_bytes(4, "big")


def test_a_phone_gets_its_class_options_and_the_voice_pool() -> None:
    h = harness(PHONES)
    phone = ClientSim(mac="00:1b:54:00:00:01", prl=PRL, extra=(PHONE_VENDOR,))
    ack = reply_of(phone.dora(h))
    assert ack.yiaddr in (A("198.18.0.200"), A("198.18.0.201"))
    assert ack.get(150) == A("198.18.0.5").packed + A("198.18.0.6").packed
    assert ack.get(66) == b"class.example"  # the class's, over the subnet's
    assert ack.get(252) == b"http://198.18.0.1/wpad.dat"  # the subnet's still


def test_the_first_class_listed_wins() -> None:
    h = harness(PHONES)
    both = ClientSim(mac="52:54:01:00:00:01", prl=PRL, extra=(PHONE_VENDOR,))
    assert reply_of(both.dora(h)).get(66) == b"class.example"
    second_only = ClientSim(mac="52:54:01:00:00:02", prl=PRL)
    assert reply_of(second_only.dora(h)).get(66) == b"second-class.example"


def test_a_reservation_option_wins_over_its_class() -> None:
    cfg = config(PHONES)
    defs = OptionDefs(cfg.dhcp.option_defs)
    own = HostDhcpOptions(options=(make_value(defs, "tftp-server-name", "host.example"),))
    phone = host(mac="00:1b:54:00:00:09", ip="198.18.0.20", hostname="phone9", dhcp=own)
    h = Harness(subnets=cfg.subnets, hosts=(phone,), options=cfg.dhcp.options,
                classes=cfg.dhcp.classes)  # fmt: skip
    ack = reply_of(ClientSim(mac="00:1b:54:00:00:09", prl=PRL, extra=(PHONE_VENDOR,)).dora(h))
    assert ack.yiaddr == A("198.18.0.20")
    assert ack.get(66) == b"host.example"
    assert ack.get(150) == A("198.18.0.5").packed + A("198.18.0.6").packed


def test_pools_of_a_class_are_closed_to_others() -> None:
    h = harness(PHONES)
    for i in range(5):  # the open pool: .100-.104
        ClientSim(mac=f"52:54:00:00:01:{i:02x}").dora(h)
    other = ClientSim(mac="52:54:00:00:02:01")
    assert dropped(h.handle(other.discover())) is DropReason.POOL_EXHAUSTED
    # A non-phone asking for a voice address is NAKed.
    request = other.message(MessageType.REQUEST, requested=A("198.18.0.200"))
    assert reply_of(h.handle(request)).message_type is MessageType.NAK
    # A phone still gets one.
    phone = ClientSim(mac="00:1b:54:00:00:02", extra=(PHONE_VENDOR,))
    assert reply_of(phone.dora(h)).yiaddr == A("198.18.0.200")


def test_user_class_and_circuit_id_and_all_of() -> None:
    h = harness(
        """
[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.109"

[[dhcp.classes]]
name = "ipxe-at-port7"
[dhcp.classes.match]
user_class = "iPXE"
circuit_id = "port7"
[[dhcp.classes.options]]
name = "wpad"
value = "http://proxy/"
always_send = true
"""
    )
    relay = b"\x01\x05port7"
    both = ClientSim(mac="52:54:00:00:00:01", relay_info=relay,
                     extra=((OptionCode.USER_CLASS, b"iPXE"),))  # fmt: skip
    # RFC 3004 form: length-prefixed classes.
    rfc3004 = ClientSim(mac="52:54:00:00:00:03", relay_info=relay,
                        extra=((OptionCode.USER_CLASS, b"\x04iPXE\x03foo"),))  # fmt: skip
    one = ClientSim(mac="52:54:00:00:00:02", extra=((OptionCode.USER_CLASS, b"iPXE"),))
    assert reply_of(h.handle(both.discover())).get(252) == b"http://proxy/"
    assert reply_of(h.handle(rfc3004.discover())).get(252) == b"http://proxy/"
    assert reply_of(h.handle(one.discover())).get(252) is None


SHARED = """
[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.101"

[[subnets]]
name = "lan2"
cidr = "198.18.1.0/24"
gateway = "198.18.1.1"

[[subnets.pools]]
start = "198.18.1.100"
end = "198.18.1.101"

[[dhcp.shared_networks]]
name = "floor1"
interface = "eth0"
subnets = ["lan", "lan2"]
"""


def test_a_shared_network_overflows_into_the_next_subnet() -> None:
    h = harness(SHARED)
    got = [reply_of(ClientSim(mac=f"52:54:00:00:03:{i:02x}").dora(h)) for i in range(4)]
    assert [p.yiaddr for p in got] == [A("198.18.0.100"), A("198.18.0.101"),
                                       A("198.18.1.100"), A("198.18.1.101")]  # fmt: skip
    # The second subnet's own router and mask go with its addresses.
    assert got[2].get(OptionCode.ROUTER) == A("198.18.1.1").packed
    assert h.committed[2].subnet == "lan2"
    assert dropped(h.handle(ClientSim(mac="52:54:00:00:03:09").discover())) is (
        DropReason.POOL_EXHAUSTED
    )


def test_a_renewal_in_any_member_subnet_is_accepted() -> None:
    h = harness(SHARED)
    for i in range(2):
        ClientSim(mac=f"52:54:00:00:04:{i:02x}").dora(h)
    client = ClientSim(mac="52:54:00:00:04:09")
    client.dora(h)
    assert client.ip == A("198.18.1.100")
    renew = client.message(MessageType.REQUEST, ciaddr=client.ip)
    ack = reply_of(h.handle(renew))
    assert ack.message_type is MessageType.ACK
    assert ack.yiaddr == client.ip
    # INIT-REBOOT with the address in option 50.
    reboot = client.message(MessageType.REQUEST, requested=client.ip)
    assert reply_of(h.handle(reboot)).message_type is MessageType.ACK
    # A client back after its lease comes back to its previous member first.
    again = reply_of(h.handle(client.discover(), now=1_800_000_000.0 + 10))
    assert again.yiaddr == client.ip


def test_a_relayed_shared_network() -> None:
    cfg = parse_config(tomllib.loads((HEAD + SHARED).replace('interface = "eth0"\n', "")
                       .replace("subnets = [", 'relay_agents = ["198.18.9.1"]\nsubnets = [')),
                       path=Path("/etc/ddi/ddi.toml"))  # fmt: skip
    # The config gives both members the network's relay.
    assert {s.name: s.relay_agents for s in cfg.subnets} == {
        "lan": (A("198.18.9.1"),),
        "lan2": (A("198.18.9.1"),),
    }
    h = Harness(subnets=cfg.subnets, shared_networks=cfg.dhcp.shared_networks)
    relayed = [ClientSim(mac=f"52:54:00:00:05:{i:02x}", giaddr=A("198.18.9.1")) for i in range(3)]
    inbound = replace(INBOUND, interface="eth1")
    ips = [reply_of(c.dora(h, inbound=inbound)).yiaddr for c in relayed]
    assert ips == [A("198.18.0.100"), A("198.18.0.101"), A("198.18.1.100")]


def relayed_shared() -> Harness:
    text = (HEAD + SHARED).replace('interface = "eth0"\n', "")
    text = text.replace("subnets = [", 'relay_agents = ["198.18.9.1"]\nsubnets = [')
    cfg = parse_config(tomllib.loads(text), path=Path("/etc/ddi/ddi.toml"))
    return Harness(subnets=cfg.subnets, shared_networks=cfg.dhcp.shared_networks)


def test_a_relayed_inform_from_a_member_gets_that_members_options() -> None:
    h = relayed_shared()
    client = ClientSim(mac="52:54:00:00:06:01", giaddr=A("198.18.9.1"))
    inform = client.message(MessageType.INFORM, ciaddr=A("198.18.1.50"))
    ack = reply_of(h.handle(inform, inbound=replace(INBOUND, interface="eth1")))
    assert ack.get(OptionCode.ROUTER) == A("198.18.1.1").packed
    assert ack.get(OptionCode.LEASE_TIME) is None


def test_reused_option_lists_follow_the_class() -> None:
    h = harness(PHONES)
    first = reply_of(ClientSim(mac="52:54:00:00:07:01", prl=PRL).dora(h))
    # A MAC-prefix class: nothing in the request keeps it off the fast path but its class.
    lab = reply_of(ClientSim(mac="52:54:01:00:07:02", prl=PRL).dora(h))
    again = reply_of(ClientSim(mac="52:54:00:00:07:03", prl=PRL).dora(h))
    assert (first.get(66), lab.get(66), again.get(66)) == (
        b"subnet.example", b"second-class.example", b"subnet.example"
    )  # fmt: skip

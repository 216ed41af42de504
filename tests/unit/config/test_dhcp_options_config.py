"""``[[dhcp.option_defs]]``, option values, ``[[dhcp.classes]]`` and ``[[dhcp.shared_networks]]``:
good ones load encoded; each bad one is refused naming its key, the option and why."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ddi.config import parse_config
from ddi.dhcp.classes import ClassMatch
from ddi.errors import ConfigError

HEAD = """
[site]
id = "site1"
domain = "site.example"
data_dir = "state"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
interface = "eth0"

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.109"
"""


def load(text: str) -> object:
    return parse_config(tomllib.loads(HEAD + text), path=Path("/etc/ddi/ddi.toml"))


def test_definitions_values_and_classes_load_encoded() -> None:
    cfg = load(
        """
[[subnets.options]]
code = 224
value = "7, 198.18.0.9"

[[dhcp.option_defs]]
name = "site-record"
code = 224
type = "record"
record_types = ["uint8", "ip-address"]

[[dhcp.option_defs]]
name = "voice-vlans"
code = 225
type = "uint16"
array = true

[[dhcp.options]]
name = "voice-vlans"
value = [100, 200]
always_send = true

[[dhcp.classes]]
name = "phones"
[dhcp.classes.match]
vendor_class = "0x0102ff"
mac_prefix = "00-1B-54"
"""
    )
    assert cfg.subnets[0].options[0].data == b"\x07\xc6\x12\x00\x09"  # type: ignore[attr-defined]
    (option,) = cfg.dhcp.options  # type: ignore[attr-defined]
    assert (option.code, option.data, option.always_send) == (225, b"\x00\x64\x00\xc8", True)
    (phones,) = cfg.dhcp.classes  # type: ignore[attr-defined]
    assert phones.match == ClassMatch(vendor_class=b"\x01\x02\xff", mac_prefix=b"\x00\x1b\x54")


def test_vendor_information_from_typed_sub_options() -> None:
    cfg = load(
        """
[[dhcp.options]]
name = "vendor-encapsulated-options"
[[dhcp.options.sub_options]]
code = 1
type = "ip-address"
value = "198.18.0.5"
[[dhcp.options.sub_options]]
code = 2
type = "string"
value = "voice"
[[dhcp.options.sub_options]]
code = 3
type = "uint16"
array = true
value = [1, 2]
"""
    )
    (option,) = cfg.dhcp.options  # type: ignore[attr-defined]
    assert option.code == 43
    # RFC 2132 §8.4: code, length, data, one after the other.
    assert option.data == bytes.fromhex("0104c6120005") + b"\x02\x05voice" + bytes.fromhex(
        "030400010002"
    )


SUBNET2 = """
[[subnets]]
name = "lan2"
cidr = "198.18.1.0/24"
"""


@pytest.mark.parametrize(
    ("text", "key", "why"),
    [
        (
            '[[dhcp.option_defs]]\nname = "x"\ncode = 53\ntype = "uint8"',
            "dhcp.option_defs[0].code",
            "x: code 53 is set by the server itself",
        ),
        (
            '[[dhcp.option_defs]]\nname = "x"\ncode = 300\ntype = "uint8"',
            "dhcp.option_defs[0].code",
            "at most 254",
        ),
        (
            '[[dhcp.option_defs]]\nname = "x"\ncode = 224\ntype = "float"',
            "dhcp.option_defs[0].type",
            "unknown type 'float'",
        ),
        (
            '[[dhcp.option_defs]]\nname = "x"\ncode = 224\ntype = "record"',
            "dhcp.option_defs[0].record_types",
            "needs its field types",
        ),
        (
            '[[dhcp.option_defs]]\nname = "x"\ncode = 224\ntype = "uint8"\n'
            '[[dhcp.option_defs]]\nname = "y"\ncode = 224\ntype = "uint8"',
            "dhcp.option_defs[1].code",
            "224 is also option_defs[0]",
        ),
        (
            '[[dhcp.options]]\nname = "ntp-servers"\nvalue = "198.18.0.300"',
            "dhcp.options[0].value",
            "option ntp-servers (42): '198.18.0.300' is not an IPv4 address",
        ),
        (
            '[[dhcp.options]]\nname = "nope"\nvalue = "1"',
            "dhcp.options[0].name",
            "no option is named 'nope'",
        ),
        (
            '[[dhcp.options]]\ncode = 3\nvalue = "198.18.0.1"',
            "dhcp.options[0].code",
            "set by the server itself",
        ),
        ('[[dhcp.options]]\ncode = 230\nvalue = "1"', "dhcp.options[0].code", "has no definition"),
        (
            '[[dhcp.options]]\nname = "wpad"\n[[dhcp.options.sub_options]]\ncode = 1\n'
            'type = "uint8"\nvalue = 1',
            "dhcp.options[0].sub_options",
            "option wpad (252) is not binary",
        ),
        (
            "[[dhcp.options]]\ncode = 43\n[[dhcp.options.sub_options]]\ncode = 1\n"
            'type = "uint8"\nvalue = 300',
            "dhcp.options[0].sub_options[0].value",
            "option vendor-encapsulated-options (43) sub-option 1: 300 is outside uint8",
        ),
        (
            '[[dhcp.options]]\nname = "wpad"\nvalue = "a"\n'
            '[[dhcp.options]]\ncode = 252\nvalue = "b"',
            "dhcp.options[1].code",
            "option 252 is also given at dhcp.options[0].name",
        ),
        (
            '[[subnets.options]]\nname = "domain-search"\nvalue = "bad..example"',
            "subnets[0].options[0].value",
            "1-63 characters",
        ),
        (
            '[[dhcp.classes]]\nname = "c"\n[dhcp.classes.match]',
            "dhcp.classes[0].match",
            "name at least one of",
        ),
        (
            '[[dhcp.classes]]\nname = "c"\n[dhcp.classes.match]\nmac_prefix = "00:1b:5"',
            "dhcp.classes[0].match.mac_prefix",
            "not a MAC prefix",
        ),
        (
            '[[dhcp.classes]]\nname = "c"\n[dhcp.classes.match]\nvendr_class = "x"',
            "dhcp.classes[0].match.vendr_class",
            "did you mean 'vendor_class'",
        ),
        (
            '[[dhcp.classes]]\nname = "c"\nboot = "pxe"\n[dhcp.classes.match]\nuser_class = "x"',
            "dhcp.classes[0].boot",
            "no [boot.profiles.pxe]",
        ),
        (
            '[[subnets.pools]]\nstart = "198.18.0.200"\nend = "198.18.0.201"\n'
            'client_class = "nope"',
            "subnets[0].pools[1].client_class",
            "no [[dhcp.classes]] is named 'nope'",
        ),
        (
            SUBNET2 + '[[dhcp.shared_networks]]\nname = "n"\ninterface = "eth0"\nsubnets = ["lan"]',
            "dhcp.shared_networks[0].subnets",
            "two subnets or more",
        ),
        (
            SUBNET2 + '[[dhcp.shared_networks]]\nname = "n"\nsubnets = ["lan", "lan2"]',
            "dhcp.shared_networks[0].interface",
            "interface or relay_agents",
        ),
        (
            SUBNET2
            + '[[dhcp.shared_networks]]\nname = "n"\ninterface = "eth1"\nsubnets = ["lan", "lan2"]',
            "dhcp.shared_networks[0].subnets[0]",
            "'lan' is on interface eth0, the network on eth1",
        ),
        (
            SUBNET2
            + '[[dhcp.shared_networks]]\nname = "n"\ninterface = "eth0"\nsubnets = ["lan", "lan3"]',
            "dhcp.shared_networks[0].subnets[1]",
            "no [[subnets]] is named 'lan3'",
        ),
        (
            SUBNET2 + '[[dhcp.shared_networks]]\nname = "n"\ninterface = "eth0"\n'
            'subnets = ["lan", "lan2"]\n'
            '[[dhcp.shared_networks]]\nname = "m"\ninterface = "eth0"\nsubnets = ["lan2", "lan"]',
            "dhcp.shared_networks[1].subnets[0]",
            "'lan2' is already in shared network 'n'",
        ),
        (
            SUBNET2 + '[[dhcp.shared_networks]]\nname = "n"\nrelay_agents = ["198.18.9.1"]\n'
            'subnets = ["lan", "lan2"]',
            "dhcp.shared_networks[0].subnets[0]",
            "'lan' is on interface eth0; the network is relayed",
        ),
    ],
)
def test_bad_ones_are_refused_naming_the_key(text: str, key: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(text)
    assert caught.value.key == key
    assert why in caught.value.reason

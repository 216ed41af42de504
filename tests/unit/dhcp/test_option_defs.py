"""Option definitions: each type encodes byte for byte as scapy's DHCP option encoder does where
scapy knows the option, option 119 as RFC 3397 §2 shows, and bad values are refused saying why."""

from __future__ import annotations

from typing import Any

import dnslib
import pytest
from scapy.layers.dhcp import DHCP

from ddi.dhcp.option_defs import (
    MANAGED_CODES,
    OptionDef,
    OptionDefs,
    OptionError,
    OptionType,
    encode,
    encode_fqdn_list,
    make_value,
)

DEFS = OptionDefs()


def scapy_value(name: str, *values: Any) -> bytes:
    """The value scapy writes for one option (its code and length bytes taken off)."""
    wire = bytes(DHCP(options=[(name, *values), "end"]))
    assert wire[-1] == 255
    assert wire[1] == len(wire) - 3
    return wire[2:-1]


@pytest.mark.parametrize(
    ("ours", "value", "scapy_name", "scapy_args"),
    [
        ("ntp-servers", "198.18.0.1, 198.18.0.2", "NTP_server", ("198.18.0.1", "198.18.0.2")),
        ("time-servers", ["198.18.0.9"], "time_server", ("198.18.0.9",)),
        ("tftp-server-address", "198.18.0.5", "tftp_server_address", ("198.18.0.5",)),
        ("tftp-server-name", "198.18.0.5", "tftp_server_name", (b"198.18.0.5",)),
        ("interface-mtu", 1400, "interface-mtu", (1400,)),
        ("netbios-node-type", "8", "NetBIOS_node_type", (8,)),
        ("time-offset", 7200, "time_zone", (7200,)),
        ("smtp-server", "198.18.0.25", "SMTP_server", ("198.18.0.25",)),
        ("tcode", "Europe/Paris", "tcode", (b"Europe/Paris",)),
        (
            "v4-captive-portal",
            "https://portal.example/",
            "captive-portal",
            (b"https://portal.example/",),
        ),
        (
            "vendor-encapsulated-options",
            "01:04:c6:12:00:05",
            "vendor_specific",
            (bytes.fromhex("0104c6120005"),),
        ),
    ],
)
def test_standard_options_encode_as_scapy_does(
    ours: str, value: Any, scapy_name: str, scapy_args: tuple[Any, ...]
) -> None:
    option = make_value(DEFS, ours, value)
    assert option.data == scapy_value(scapy_name, *scapy_args)


def test_options_are_found_by_code_as_well_as_by_name() -> None:
    assert make_value(DEFS, "150", "198.18.0.5").code == 150
    assert make_value(DEFS, 252, "http://198.18.0.1/wpad.dat").data == b"http://198.18.0.1/wpad.dat"


def test_domain_search_is_compressed_as_rfc3397_shows() -> None:
    # RFC 3397 §2, the example: "eng.apple.com." and "marketing.apple.com."
    data = make_value(DEFS, "domain-search", "eng.apple.com, marketing.apple.com").data
    assert data == (b"\x03eng\x05apple\x03com\x00" + b"\x09marketing\xc0\x04")
    assert len(data) == 27  # the option's length in the RFC's figure


def test_compressed_names_decode_with_a_dns_decoder() -> None:
    names = ["site.example", "lab.site.example", "example", "other.test", "a.other.test"]
    data = encode_fqdn_list(names)
    buffer = dnslib.DNSBuffer(data)
    decoded = []
    while buffer.remaining():
        decoded.append(str(buffer.decode_name()).rstrip("."))
    assert decoded == names
    # Every name after the first reuses a suffix: shorter than the names written out in full.
    assert len(data) < sum(len(n) + 2 for n in names)


@pytest.mark.parametrize(
    ("definition", "value", "expected"),
    [
        (OptionDef(name="x", code=224, type=OptionType.BOOLEAN), True, b"\x01"),
        (OptionDef(name="x", code=224, type=OptionType.BOOLEAN), "false", b"\x00"),
        (OptionDef(name="x", code=224, type=OptionType.INT16), "-2", b"\xff\xfe"),
        (OptionDef(name="x", code=224, type=OptionType.UINT32), 70000, b"\x00\x01\x11\x70"),
        (
            OptionDef(name="x", code=224, type=OptionType.UINT16, array=True),
            "1,2",
            b"\x00\x01\x00\x02",
        ),
        (OptionDef(name="x", code=224, type=OptionType.EMPTY), "", b""),
        (OptionDef(name="x", code=224, type=OptionType.FQDN), "a.b", b"\x01a\x01b\x00"),
        (
            OptionDef(
                name="x",
                code=224,
                type=OptionType.RECORD,
                record_types=(OptionType.UINT8, OptionType.IP_ADDRESS),
            ),
            "7, 198.18.0.1",
            b"\x07\xc6\x12\x00\x01",
        ),
    ],
)
def test_each_type_encodes(definition: OptionDef, value: Any, expected: bytes) -> None:
    assert encode(definition, value) == expected


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("ntp-servers", "198.18.0.300", "not an IPv4 address"),
        ("ntp-servers", "", "at least one value"),
        ("interface-mtu", 70000, "outside uint16"),
        ("interface-mtu", "99999999999999999999999", "not a uint16"),
        ("interface-mtu", True, "not a boolean"),
        ("netbios-node-type", "x", "not a uint8"),
        ("wpad", "caf\u00e9", "not ASCII"),
        ("domain-search", "bad..name", "1-63 characters"),
        ("domain-search", "a" * 64 + ".example", "1-63 characters"),
        ("domain-search", "sp ace.example", "letters, digits"),
        ("vendor-encapsulated-options", "0x0g", "not hex"),
        ("vendor-encapsulated-options", "00" * 1025, "more than 1024"),
        ("no-such-option", "1", "no option is named"),
        ("200", "1", "has no definition"),
        ("53", "1", "set by the server itself"),
        ("6", "198.18.0.1", "set by the server itself"),
    ],
)
def test_bad_values_are_refused_saying_why(key: str, value: Any, why: str) -> None:
    with pytest.raises(OptionError, match=why):
        make_value(DEFS, key, value)


@pytest.mark.parametrize("code", sorted(MANAGED_CODES - {0, 255}))
def test_codes_the_server_sets_cannot_be_defined(code: int) -> None:
    with pytest.raises(OptionError, match="set by the server itself"):
        OptionDefs([OptionDef(name="mine", code=code, type=OptionType.STRING)])


def test_a_definition_replaces_the_standard_one_of_its_code() -> None:
    defs = OptionDefs([OptionDef(name="cisco-sub", code=43, type=OptionType.IP_ADDRESS)])
    assert make_value(defs, "cisco-sub", "198.18.0.5").data == bytes((198, 18, 0, 5))
    with pytest.raises(OptionError, match="no option is named"):
        make_value(defs, "vendor-encapsulated-options", "00")

"""Options by definition and class pools in the values' images: present only when set, so a
subnet or host without them has the image the previous version wrote and read."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from ddi.dhcp.option_defs import OptionValue
from ddi.errors import Invalid
from ddi.ipam.models import Host, HostDhcpOptions, Pool, Subnet
from ddi.ipam.validate import parse_host_dhcp

A = IPv4Address
TFTP = OptionValue(code=150, data=A("198.18.0.5").packed, name="tftp-server-address")


def test_images_without_the_new_fields_are_unchanged() -> None:
    pool = Pool(start=A("198.18.0.10"), end=A("198.18.0.20"))
    subnet = Subnet(name="lan", cidr=IPv4Network("198.18.0.0/24"), pools=(pool,))
    assert pool.to_image() == {"start": "198.18.0.10", "end": "198.18.0.20"}
    assert "options" not in subnet.to_image()
    assert HostDhcpOptions(mtu=1400).to_image() == {"mtu": 1400}


def test_images_round_trip_with_them() -> None:
    pool = Pool(start=A("198.18.0.10"), end=A("198.18.0.20"), client_class="phones")
    subnet = Subnet(
        name="lan",
        cidr=IPv4Network("198.18.0.0/24"),
        pools=(pool,),
        options=(TFTP, OptionValue(code=2, data=b"\0\0\0\1", always_send=True)),
    )
    assert Subnet.from_image(subnet.to_image()) == subnet
    assert subnet.to_image()["options"][0] == {
        "code": 150, "data": "c6120005", "name": "tftp-server-address"
    }  # fmt: skip
    host = Host(id="0" * 32, ip=A("198.18.0.9"), hostname="p", mac="00:1b:54:00:00:01",
                dhcp=HostDhcpOptions(options=(TFTP,)))  # fmt: skip
    assert Host.from_image(host.to_image()) == host


def test_a_reservations_options_are_checked() -> None:
    parsed = parse_host_dhcp({"options": [{"code": 150, "data": "c6120005"}]})
    assert parsed is not None
    assert parsed.options == (OptionValue(code=150, data=A("198.18.0.5").packed),)
    for bad, why in [
        ([{"code": 53, "data": "01"}], "set by the server itself"),
        ([{"code": 150, "data": "zz"}], "not hex"),
        ([{"code": 150, "data": "00"}, {"code": 150, "data": "01"}], "given twice"),
        ([{"code": "150", "data": "00"}], "integer code"),
        ("150=1", "a list"),
    ]:
        with pytest.raises(Invalid, match=why):
            parse_host_dhcp({"options": bad})

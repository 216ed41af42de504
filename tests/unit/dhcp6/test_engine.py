"""The DHCPv6 engine's decisions (RFC 8415 §18.3), over an in-memory view; messages built with
scapy's DHCP6 layers where a client's message is what is tested."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest
from scapy.layers import dhcp6 as s6

from ddi.dhcp.netboot import BootProfile
from ddi.dhcp6.decision import Drop6, DropReason6, Inbound6, Reply6, Rule6
from ddi.dhcp6.engine import Dhcp6Engine, Dhcp6Settings
from ddi.dhcp6.options import (
    MessageType,
    OptionCode,
    Status,
    all_of,
    decode_addresses,
    decode_client_fqdn,
    decode_ia,
    decode_names,
    decode_status,
)
from ddi.dhcp6.packet import Message, Relay, decode_message, encode_message
from ddi.ipam.models import LeaseState
from ddi.ipam.models6 import Lease6, Lease6Kind, PdPool, Pool6, Subnet6

NOW = 1_700_000_000.0
SERVER_DUID = bytes.fromhex("00030001525400ffff01")
MAC = "52:54:00:00:00:aa"
LAN = Subnet6(
    name="lan6",
    cidr=IPv6Network("2001:db8:10::/64"),
    pools=(Pool6(start=IPv6Address("2001:db8:10::1000"), end=IPv6Address("2001:db8:10::10ff")),),
    pd_pools=(PdPool(prefix=IPv6Network("2001:db8:100::/48"), delegated_length=56),),
    dns_servers=(IPv6Address("2001:db8:10::53"),),
    domain="lab.example",
    ntp_servers=(IPv6Address("2001:db8:10::123"),),
    interface="eth0",
    relay_links=(IPv6Address("2001:db8:99::1"),),
    preferred_lifetime=1000,
    valid_lifetime=2000,
)


@dataclass(frozen=True)
class FakeHost:
    hostname: str
    ip6: IPv6Address | None
    duid: str | None = None
    mac: str | None = None
    boot: str | None = None
    boot_file: str | None = None
    boot_script: str | None = None


@dataclass
class View:
    subnets: list[Subnet6] = field(default_factory=lambda: [LAN])
    hosts: list[FakeHost] = field(default_factory=list)
    leases: dict[tuple[Lease6Kind, IPv6Network], Lease6] = field(default_factory=dict)
    owned: set[str] = field(default_factory=set)

    def subnets6(self) -> Sequence[Subnet6]:
        return self.subnets

    def host_by_duid(self, duid: str) -> Any:
        return next((h for h in self.hosts if h.duid == duid), None)

    def host_by_mac(self, mac: str) -> Any:
        return next((h for h in self.hosts if h.mac == mac), None)

    def host_by_ip6(self, ip: IPv6Address) -> Any:
        return next((h for h in self.hosts if h.ip6 == ip), None)

    def lease6(self, kind: Lease6Kind, prefix: IPv6Network) -> Lease6 | None:
        return self.leases.get((kind, prefix))

    def host_at6(self, ip: int) -> Any:
        return self.host_by_ip6(IPv6Address(ip))

    def na_lease_at(self, ip: int) -> Lease6 | None:
        return self.leases.get((Lease6Kind.NA, IPv6Network(ip)))

    def leases6_of(self, kind: Lease6Kind, duid: str, iaid: int) -> list[Lease6]:
        found = [x for x in self.leases.values() if (x.kind, x.duid, x.iaid) == (kind, duid, iaid)]
        return sorted(found, key=lambda x: (x.state is LeaseState.BOUND, x.end), reverse=True)

    def name_owned(self, name: str) -> bool:
        return name in self.owned

    def commit(self, leases: Sequence[Lease6]) -> None:
        for lease in leases:
            self.leases[lease.kind, lease.prefix] = lease


def engine(view: View, **profiles: BootProfile) -> Dhcp6Engine:
    settings = Dhcp6Settings(server_duid=SERVER_DUID, domain="site.example")
    return Dhcp6Engine(settings, view, profiles=profiles)  # type: ignore[arg-type]


DIRECT = Inbound6(interface="eth0", src=IPv6Address("fe80::5054:ff:fe00:aa"),
                  local=IPv6Address("2001:db8:10::1"))  # fmt: skip


def client_id(mac: str = MAC) -> Any:
    return s6.DHCP6OptClientId(duid=s6.DUID_LL(lladdr=mac))


def duid_of(mac: str = MAC) -> str:
    return bytes(s6.DUID_LL(lladdr=mac)).hex(":")


def run(eng: Dhcp6Engine, packet: Any, inbound: Inbound6 = DIRECT) -> Reply6 | Drop6:
    return eng.handle(decode_message(bytes(packet)), inbound, NOW)


def reply_of(decision: Reply6 | Drop6) -> Message:
    """The reply a client reads: inside the RELAY-REPL chain when relayed."""
    assert isinstance(decision, Reply6), decision
    inner = decision.message
    while isinstance(inner, Relay):
        raw = inner.option(OptionCode.RELAY_MSG)
        assert raw is not None
        inner = decode_message(raw)
    return inner


def addresses(message: Message) -> list[IPv6Address]:
    return [
        a.address
        for v in all_of(message.options, OptionCode.IA_NA)
        for a in decode_ia(OptionCode.IA_NA, v).addresses()
    ]


def ia_status(message: Message, code: int = OptionCode.IA_NA) -> int | None:
    ia = decode_ia(code, all_of(message.options, code)[0])
    raw = next((v for c, v in ia.options if c == OptionCode.STATUS_CODE), None)
    return None if raw is None else decode_status(raw)[0]


def solicit(*extra: Any, mac: str = MAC, iaid: int = 1) -> Any:
    packet = s6.DHCP6_Solicit(trid=0x10) / client_id(mac) / s6.DHCP6OptIA_NA(iaid=iaid)
    for option in extra:
        packet = packet / option
    return packet


def request(address: IPv6Address, *extra: Any, mac: str = MAC, iaid: int = 1) -> Any:
    packet = (
        s6.DHCP6_Request(trid=0x11)
        / client_id(mac)
        / s6.DHCP6OptServerId(duid=SERVER_DUID)
        / s6.DHCP6OptIA_NA(iaid=iaid, ianaopts=[s6.DHCP6OptIAAddress(addr=str(address))])
    )
    for option in extra:
        packet = packet / option
    return packet


def test_solicit_advertises_a_pool_address_with_parameters_and_commits_nothing() -> None:
    view = View()
    decision = run(engine(view), solicit(s6.DHCP6OptOptReq(reqopts=[23, 24, 56])))
    assert isinstance(decision, Reply6)
    assert decision.reply_type is MessageType.ADVERTISE
    assert decision.commit == ()
    message = reply_of(decision)
    [address] = addresses(message)
    assert address in LAN.pools[0]
    ia = decode_ia(OptionCode.IA_NA, message.option(OptionCode.IA_NA) or b"")
    assert (ia.t1, ia.t2) == (500, 800)  # 0.5 and 0.8 of the preferred lifetime
    assert ia.addresses()[0].preferred == 1000
    assert ia.addresses()[0].valid == 2000
    assert message.option(OptionCode.SERVERID) == SERVER_DUID
    assert message.option(OptionCode.CLIENTID) == bytes.fromhex(duid_of().replace(":", ""))
    assert decode_addresses(message.option(OptionCode.DNS_SERVERS) or b"") == LAN.dns_servers
    assert decode_names(message.option(OptionCode.DOMAIN_LIST) or b"") == (("lab.example", True),)
    assert message.option(OptionCode.NTP_SERVER) == b"\x00\x01\x00\x10" + LAN.ntp_servers[0].packed
    assert decision.to.ip == DIRECT.src
    assert decision.to.port == 546


def test_request_binds_the_advertised_address_and_a_renew_extends_it() -> None:
    view = View()
    eng = engine(view)
    advertised = addresses(reply_of(run(eng, solicit())))[0]
    decision = run(eng, request(advertised))
    assert isinstance(decision, Reply6)
    assert decision.reply_type is MessageType.REPLY
    [lease] = decision.commit
    assert lease.prefix == IPv6Network(advertised)
    assert (lease.duid, lease.iaid, lease.mac) == (duid_of(), 1, MAC)
    assert lease.end == NOW + 2000
    view.commit(decision.commit)
    # Another client never gets it.
    other = addresses(reply_of(run(eng, solicit(mac="52:54:00:00:00:bb"))))[0]
    assert other != advertised
    renew = (
        s6.DHCP6_Renew(trid=3) / client_id() / s6.DHCP6OptServerId(duid=SERVER_DUID)
        / s6.DHCP6OptIA_NA(iaid=1, ianaopts=[s6.DHCP6OptIAAddress(addr=str(advertised))])
    )  # fmt: skip
    renewed = run(eng, renew)
    assert isinstance(renewed, Reply6)
    assert renewed.rule is Rule6.RENEW
    assert [x.prefix for x in renewed.commit] == [IPv6Network(advertised)]
    unknown = run(eng, replace_mac(renew, "52:54:00:00:00:cc"))
    assert ia_status(reply_of(unknown)) == Status.NO_BINDING


def replace_mac(packet: Any, mac: str) -> Any:
    packet = packet.copy()
    packet[s6.DHCP6OptClientId].duid = s6.DUID_LL(lladdr=mac)
    return packet


def test_reservation_by_duid_and_by_mac_in_a_duid_llt() -> None:
    host = FakeHost(hostname="web", ip6=IPv6Address("2001:db8:10::21"), duid=duid_of())
    view = View(hosts=[host])
    assert addresses(reply_of(run(engine(view), solicit()))) == [host.ip6]
    by_mac = FakeHost(hostname="db", ip6=IPv6Address("2001:db8:10::22"), mac="52:54:00:00:00:dd")
    view = View(hosts=[by_mac])
    llt = s6.DHCP6_Solicit(trid=1) / s6.DHCP6OptClientId(
        duid=s6.DUID_LLT(lladdr="52:54:00:00:00:dd", timeval=12345)
    ) / s6.DHCP6OptIA_NA(iaid=3)  # fmt: skip
    assert addresses(reply_of(run(engine(view), llt))) == [by_mac.ip6]
    # A reserved address is never another client's pool address.
    assert by_mac.ip6 not in addresses(reply_of(run(engine(view), solicit())))


def test_relayed_solicit_selects_the_subnet_by_link_address_and_mac_by_option_79() -> None:
    host = FakeHost(hostname="pc", ip6=IPv6Address("2001:db8:10::30"), mac="52:54:00:00:00:ee")
    view = View(hosts=[host])
    inner = s6.DHCP6_Solicit(trid=9) / s6.DHCP6OptClientId(
        duid=s6.DUID_EN(enterprisenum=32473, id=b"abcd")
    ) / s6.DHCP6OptIA_NA(iaid=1)  # fmt: skip
    relayed = s6.DHCP6_RelayForward(
        hopcount=0, linkaddr="2001:db8:99::1", peeraddr="fe80::1"
    ) / s6.DHCP6OptIfaceId(ifaceid=b"port7") / s6.DHCP6OptClientLinkLayerAddr(
        clladdr="52:54:00:00:00:ee"
    ) / s6.DHCP6OptRelayMsg(message=inner)  # fmt: skip
    via = Inbound6(interface="eth1", src=IPv6Address("2001:db8:99::1"), src_port=547)
    decision = run(engine(view), relayed, via)
    assert isinstance(decision, Reply6)
    assert decision.to.ip == via.src
    assert decision.to.port == 547
    assert isinstance(decision.message, Relay)
    assert decision.message.msg_type == MessageType.RELAY_REPL
    assert decision.message.option(OptionCode.INTERFACE_ID) == b"port7"
    assert addresses(reply_of(decision)) == [host.ip6]
    unknown_link = replace(via)
    relayed[s6.DHCP6_RelayForward].linkaddr = "2001:db8:77::1"
    assert run(engine(view), relayed, unknown_link) == Drop6(reason=DropReason6.NO_SUBNET)


def test_rapid_commit_only_where_the_subnet_allows_it() -> None:
    packet = solicit(s6.DHCP6OptRapidCommit())
    plain = run(engine(View()), packet)
    assert isinstance(plain, Reply6)
    assert plain.reply_type is MessageType.ADVERTISE
    view = View(subnets=[replace(LAN, rapid_commit=True)])
    rapid = run(engine(view), packet)
    assert isinstance(rapid, Reply6)
    assert rapid.reply_type is MessageType.REPLY
    assert rapid.rule is Rule6.RAPID_COMMIT
    assert len(rapid.commit) == 1
    assert reply_of(rapid).option(OptionCode.RAPID_COMMIT) == b""


def test_prefix_delegation_from_the_pd_pool() -> None:
    view = View()
    eng = engine(view)
    packet = s6.DHCP6_Solicit(trid=1) / client_id() / s6.DHCP6OptIA_PD(iaid=5)
    message = reply_of(run(eng, packet))
    [prefix] = decode_ia(OptionCode.IA_PD, message.option(OptionCode.IA_PD) or b"").prefixes()
    assert prefix.prefix.prefixlen == 56
    assert prefix.prefix.subnet_of(IPv6Network("2001:db8:100::/48"))
    req = (
        s6.DHCP6_Request(trid=2) / client_id() / s6.DHCP6OptServerId(duid=SERVER_DUID)
        / s6.DHCP6OptIA_PD(iaid=5)
    )  # fmt: skip
    decision = run(eng, req)
    assert isinstance(decision, Reply6)
    assert [(x.kind, x.prefix) for x in decision.commit] == [(Lease6Kind.PD, prefix.prefix)]


def test_exhausted_pools_say_no_addrs_and_no_prefix_avail() -> None:
    tiny = replace(
        LAN,
        pools=(Pool6(start=IPv6Address("2001:db8:10::5"), end=IPv6Address("2001:db8:10::5")),),
        pd_pools=(PdPool(prefix=IPv6Network("2001:db8:100::/56"), delegated_length=56),),
    )
    view = View(subnets=[tiny])
    eng = engine(view)
    first = run(eng, request(IPv6Address("2001:db8:10::5")) / s6.DHCP6OptIA_PD(iaid=2))
    assert isinstance(first, Reply6)
    view.commit(first.commit)
    second = reply_of(run(eng, solicit(s6.DHCP6OptIA_PD(iaid=2), mac="52:54:00:00:00:bb")))
    assert ia_status(second) == Status.NO_ADDRS_AVAIL
    assert ia_status(second, OptionCode.IA_PD) == Status.NO_PREFIX_AVAIL


def test_release_and_decline_commit_then_reply_success() -> None:
    view = View()
    eng = engine(view)
    bound = run(eng, request(IPv6Address("2001:db8:10::1001")))
    assert isinstance(bound, Reply6)
    view.commit(bound.commit)
    address = bound.commit[0].prefix.network_address
    release = (
        s6.DHCP6_Release(trid=4) / client_id() / s6.DHCP6OptServerId(duid=SERVER_DUID)
        / s6.DHCP6OptIA_NA(iaid=1, ianaopts=[s6.DHCP6OptIAAddress(addr=str(address))])
    )  # fmt: skip
    released = run(eng, release)
    assert isinstance(released, Reply6)
    assert [x.state for x in released.commit] == [LeaseState.RELEASED]
    status = reply_of(released).option(OptionCode.STATUS_CODE)
    assert decode_status(status or b"")[0] == Status.SUCCESS
    view.commit(bound.commit)
    decline = s6.DHCP6_Decline(b"\x09" + bytes(release)[1:])
    declined = run(eng, decline)
    assert isinstance(declined, Reply6)
    [lease] = declined.commit
    assert lease.state is LeaseState.DECLINED
    assert lease.end == NOW + 600
    view.commit(declined.commit)
    # Quarantined: no one gets it, not even the client that declined it.
    assert address not in addresses(reply_of(run(eng, request(address))))


def test_confirm_on_and_off_link() -> None:
    def confirm(address: str) -> Any:
        return (
            s6.DHCP6_Confirm(trid=5)
            / client_id()
            / s6.DHCP6OptIA_NA(iaid=1, ianaopts=[s6.DHCP6OptIAAddress(addr=address)])
        )

    on = reply_of(run(engine(View()), confirm("2001:db8:10::77")))
    assert decode_status(on.option(OptionCode.STATUS_CODE) or b"")[0] == Status.SUCCESS
    off = reply_of(run(engine(View()), confirm("2001:db8:55::77")))
    assert decode_status(off.option(OptionCode.STATUS_CODE) or b"")[0] == Status.NOT_ON_LINK


def test_unicast_request_gets_use_multicast() -> None:
    unicast = replace(DIRECT, unicast=True)
    decision = run(engine(View()), request(IPv6Address("2001:db8:10::1001")), unicast)
    assert isinstance(decision, Reply6)
    assert decision.commit == ()
    message = reply_of(decision)
    assert decode_status(message.option(OptionCode.STATUS_CODE) or b"")[0] == Status.USE_MULTICAST
    assert message.option(OptionCode.IA_NA) is None


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (s6.DHCP6_Solicit(trid=1) / s6.DHCP6OptIA_NA(iaid=1), DropReason6.NO_CLIENT_ID),
        (solicit(s6.DHCP6OptServerId(duid=SERVER_DUID)), DropReason6.BAD_SERVER_ID),
        (s6.DHCP6_Request(trid=1) / client_id(), DropReason6.BAD_SERVER_ID),
        (
            s6.DHCP6_Request(trid=1)
            / client_id()
            / s6.DHCP6OptServerId(duid=b"\x00\x03\x00\x01abcdef"),
            DropReason6.OTHER_SERVER,
        ),
        (s6.DHCP6_Advertise(trid=1) / client_id(), DropReason6.UNEXPECTED_MESSAGE),
    ],
)
def test_rfc_8415_section_16_drops(packet: Any, reason: DropReason6) -> None:
    assert run(engine(View()), packet) == Drop6(reason=reason)


def test_known_hosts_only_drops_strangers() -> None:
    view = View(subnets=[replace(LAN, known_hosts_only=True)])
    assert run(engine(view), solicit()) == Drop6(reason=DropReason6.UNKNOWN_CLIENT)
    view.hosts.append(FakeHost(hostname="k", ip6=IPv6Address("2001:db8:10::9"), duid=duid_of()))
    assert isinstance(run(engine(view), solicit()), Reply6)


def test_client_fqdn_follows_the_name_ownership_rule() -> None:
    fqdn = s6.DHCP6OptClientFQDN(flags=1, fqdn="laptop.")
    bound = run(engine(View()), request(IPv6Address("2001:db8:10::1001"), fqdn))
    assert isinstance(bound, Reply6)
    assert bound.commit[0].hostname == "laptop"
    answer = decode_client_fqdn(reply_of(bound).option(OptionCode.CLIENT_FQDN) or b"")
    assert answer.name == "laptop.lab.example"
    assert answer.flags & 1  # S: the server publishes the AAAA
    taken = run(engine(View(owned={"laptop"})), request(IPv6Address("2001:db8:10::1001"), fqdn))
    assert isinstance(taken, Reply6)
    assert taken.commit[0].hostname is None


def test_information_request_gets_parameters_and_no_ia() -> None:
    packet = s6.DHCP6_InfoRequest(trid=7) / client_id() / s6.DHCP6OptOptReq(reqopts=[23, 24])
    decision = run(engine(View()), packet)
    assert isinstance(decision, Reply6)
    assert decision.rule is Rule6.INFORMATION
    assert decision.commit == ()
    assert reply_of(decision).option(OptionCode.DNS_SERVERS) == LAN.dns_servers[0].packed
    with_ia = packet / s6.DHCP6OptIA_NA(iaid=1)
    assert run(engine(View()), with_ia) == Drop6(reason=DropReason6.BAD_OPTION)


def vendor(data: bytes) -> Any:
    return s6.DHCP6OptVendorClass(enterprisenum=343, vcdata=[s6.VENDOR_CLASS_DATA(data=data)])


def test_netboot_pxe_and_http_urls_from_the_boot_profile() -> None:
    profile = BootProfile(
        name="uefi", files={7: "ipxe.efi", 16: "boot/ipxe.efi"}, base_url="http://{server}:8080"
    )
    view = View(subnets=[replace(LAN, boot="uefi")])
    eng = engine(view, uefi=profile)
    pxe = solicit(
        s6.DHCP6OptClientArchType(archtypes=[7]),
        vendor(b"PXEClient"),
    )
    message = reply_of(run(eng, pxe))
    assert message.option(OptionCode.BOOTFILE_URL) == b"tftp://[2001:db8:10::1]/ipxe.efi"
    http = solicit(
        s6.DHCP6OptClientArchType(archtypes=[16]),
        vendor(b"HTTPClient"),
    )
    decision = run(eng, http)
    assert isinstance(decision, Reply6)
    message = reply_of(decision)
    assert message.option(OptionCode.BOOTFILE_URL) == b"http://[2001:db8:10::1]:8080/boot/ipxe.efi"
    assert b"HTTPClient" in (message.option(OptionCode.VENDOR_CLASS) or b"")
    assert decision.boot is not None
    assert decision.boot.profile_source == "subnet"
    plain = reply_of(run(eng, solicit()))
    assert plain.option(OptionCode.BOOTFILE_URL) is None


def test_every_reply_encodes() -> None:
    view = View()
    decision = run(engine(view), solicit(s6.DHCP6OptIA_PD(iaid=4)))
    assert isinstance(decision, Reply6)
    assert decode_message(encode_message(decision.message)) == decision.message


def test_boot_params_go_with_the_boot_file_url_as_option_60() -> None:
    profile = BootProfile(name="uefi", files={7: "ipxe.efi"})
    view = View(subnets=[replace(LAN, boot="uefi")])
    settings = Dhcp6Settings(server_duid=SERVER_DUID, domain="site.example")
    eng = Dhcp6Engine(
        settings,
        view,  # type: ignore[arg-type]
        profiles={"uefi": profile},
        boot_params={"uefi": ("console=ttyS0", "profile={profile}")},
    )
    pxe = solicit(s6.DHCP6OptClientArchType(archtypes=[7]), vendor(b"PXEClient"))
    message = reply_of(run(eng, pxe))
    assert message.option(OptionCode.BOOTFILE_URL) == b"tftp://[2001:db8:10::1]/ipxe.efi"
    # RFC 5970 §3.2: each parameter a 2-octet length and its octets.
    assert message.option(OptionCode.BOOTFILE_PARAM) == (
        b"\x00\x0dconsole=ttyS0" + b"\x00\x0cprofile=uefi"
    )
    # No URL (not a netboot request), no parameters either.
    assert reply_of(run(eng, solicit())).option(OptionCode.BOOTFILE_PARAM) is None

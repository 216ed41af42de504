"""DHCPv6 codec: vectors built with scapy's DHCP6 layers (an independent implementation), round
trips and hostile input (hypothesis)."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers import dhcp6 as s6

from ddi.dhcp6.options import (
    ClientFqdn,
    Dhcp6FormatError,
    Ia,
    IaAddress,
    IaPrefix,
    MessageType,
    OptionCode,
    Status,
    decode_client_fqdn,
    decode_ia,
    decode_names,
    decode_options,
    decode_status,
    decode_vendor_class,
    encode_client_fqdn,
    encode_domain_list,
    encode_ia,
    encode_iaaddr,
    encode_iaprefix,
    encode_options,
    encode_vendor_class,
    mac_from_duid,
    ntp_server_option,
    status_option,
)
from ddi.dhcp6.packet import (
    HOP_COUNT_LIMIT,
    Message,
    Relay,
    decode_message,
    encode_message,
    unwrap,
    wrap,
)

DUID = bytes.fromhex("000300015254000000aa")
SERVER = bytes.fromhex("0003000152540000ff01")


def test_scapy_solicit_decodes() -> None:
    raw = bytes(
        s6.DHCP6_Solicit(trid=0x123456)
        / s6.DHCP6OptClientId(duid=s6.DUID_LL(lladdr="52:54:00:00:00:aa"))
        / s6.DHCP6OptIA_NA(iaid=7, T1=0, T2=0)
        / s6.DHCP6OptIA_PD(
            iaid=9,
            iapdopt=[s6.DHCP6OptIAPrefix(prefix="2001:db8:100::", plen=56, preflft=1, validlft=2)],
        )
        / s6.DHCP6OptOptReq(reqopts=[23, 24, 59])
        / s6.DHCP6OptRapidCommit()
        / s6.DHCP6OptClientFQDN(flags=1, fqdn="host1.lab.example.")
    )
    message = decode_message(raw)
    assert isinstance(message, Message)
    assert message.msg_type == MessageType.SOLICIT
    assert message.transaction_id == 0x123456
    assert message.option(OptionCode.CLIENTID) == DUID
    assert mac_from_duid(DUID) == "52:54:00:00:00:aa"
    ia = decode_ia(OptionCode.IA_NA, message.option(OptionCode.IA_NA) or b"")
    assert (ia.iaid, ia.t1, ia.t2, ia.options) == (7, 0, 0, ())
    pd = decode_ia(OptionCode.IA_PD, message.option(OptionCode.IA_PD) or b"")
    assert pd.prefixes() == [
        IaPrefix(prefix=IPv6Network("2001:db8:100::/56"), preferred=1, valid=2)
    ]
    assert message.option(OptionCode.RAPID_COMMIT) == b""
    fqdn = decode_client_fqdn(message.option(OptionCode.CLIENT_FQDN) or b"")
    assert fqdn == ClientFqdn(flags=1, name="host1.lab.example", qualified=True)
    assert encode_message(message) == raw


def test_reply_encodes_as_scapy_reads_it() -> None:
    ia = Ia(
        code=OptionCode.IA_NA,
        iaid=7,
        t1=1800,
        t2=2880,
        options=(
            encode_iaaddr(
                IaAddress(address=IPv6Address("2001:db8:10::21"), preferred=3600, valid=7200)
            ),
        ),
    )
    pd = Ia(
        code=OptionCode.IA_PD,
        iaid=9,
        options=(
            encode_iaprefix(
                IaPrefix(prefix=IPv6Network("2001:db8:200::/56"), preferred=10, valid=20)
            ),
            status_option(Status.SUCCESS, "ok"),
        ),
    )
    reply = Message(
        msg_type=MessageType.REPLY,
        transaction_id=0xABCDEF,
        options=(
            (OptionCode.CLIENTID, DUID),
            (OptionCode.SERVERID, SERVER),
            encode_ia(ia),
            encode_ia(pd),
            (OptionCode.DNS_SERVERS, IPv6Address("2001:db8::53").packed),
            (OptionCode.DOMAIN_LIST, encode_domain_list(["lab.example", "example"])),
            (OptionCode.NTP_SERVER, ntp_server_option([IPv6Address("2001:db8::123")])),
        ),
    )
    parsed = s6.DHCP6_Reply(encode_message(reply))
    assert parsed.trid == 0xABCDEF
    na = parsed[s6.DHCP6OptIA_NA]
    assert (na.iaid, na.T1, na.T2) == (7, 1800, 2880)
    address = na.ianaopts[0]
    assert (address.addr, address.preflft, address.validlft) == ("2001:db8:10::21", 3600, 7200)
    prefix = parsed[s6.DHCP6OptIA_PD].iapdopt[0]
    assert (prefix.prefix, prefix.plen) == ("2001:db8:200::", 56)
    assert parsed[s6.DHCP6OptDNSServers].dnsservers == ["2001:db8::53"]
    assert parsed[s6.DHCP6OptDNSDomains].dnsdomains == ["lab.example.", "example."]
    assert parsed[s6.DHCP6OptNTPServer].ntpserver[0].addr == "2001:db8::123"


def test_relay_chain_unwraps_and_wraps_with_interface_id() -> None:
    inner = s6.DHCP6_Solicit(trid=1) / s6.DHCP6OptClientId(
        duid=s6.DUID_LL(lladdr="52:54:00:00:00:aa")
    )
    first = s6.DHCP6_RelayForward(hopcount=0, linkaddr="2001:db8:10::1", peeraddr="fe80::1") / (
        s6.DHCP6OptIfaceId(ifaceid=b"eth7") / s6.DHCP6OptRelayMsg(message=inner)
    )
    outer = s6.DHCP6_RelayForward(hopcount=1, linkaddr="::", peeraddr="2001:db8:10::1") / (
        s6.DHCP6OptRelayMsg(message=first)
    )
    relays, message = unwrap(decode_message(bytes(outer)))
    assert [r.hop_count for r in relays] == [1, 0]
    assert relays[1].link_address == IPv6Address("2001:db8:10::1")
    assert message.msg_type == MessageType.SOLICIT
    reply = Message(msg_type=MessageType.ADVERTISE, transaction_id=1, options=())
    back = s6.DHCP6_RelayReply(encode_message(wrap(reply, relays)))
    assert back.hopcount == 1
    assert back.peeraddr == "2001:db8:10::1"
    inner_relay = back[s6.DHCP6OptRelayMsg].message
    assert isinstance(inner_relay, s6.DHCP6_RelayReply)
    assert inner_relay.peeraddr == "fe80::1"
    assert inner_relay[s6.DHCP6OptIfaceId].ifaceid == b"eth7"
    assert isinstance(inner_relay[s6.DHCP6OptRelayMsg].message, s6.DHCP6_Advertise)


def test_relay_nesting_past_the_hop_limit_is_refused() -> None:
    message: Message | Relay = Message(msg_type=MessageType.SOLICIT, transaction_id=1)
    for _ in range(HOP_COUNT_LIMIT + 1):
        message = Relay(
            msg_type=MessageType.RELAY_FORW,
            hop_count=0,
            link_address=IPv6Address("::"),
            peer_address=IPv6Address("fe80::1"),
            options=((OptionCode.RELAY_MSG, encode_message(message)),),
        )
    with pytest.raises(Dhcp6FormatError, match="more than 32"):
        unwrap(decode_message(encode_message(message)))


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x01\x00", b"\x01\x00\x00\x01\x00\x01\x00\x05ab", b"\x0c" + bytes(20)],
)
def test_truncated_input_is_a_format_error(raw: bytes) -> None:
    with pytest.raises(Dhcp6FormatError):
        decode_message(raw)


def test_small_options() -> None:
    assert decode_status(status_option(Status.NO_BINDING, "gone")[1]) == (3, "gone")
    vc = encode_vendor_class(343, [b"HTTPClient:Arch:00016"])
    assert decode_vendor_class(vc) == (343, (b"HTTPClient:Arch:00016",))
    assert decode_names(encode_domain_list(["a.b", "c"])) == (("a.b", True), ("c", True))
    full = ClientFqdn(flags=1, name="h.lab.example", qualified=True)
    assert decode_client_fqdn(encode_client_fqdn(full)) == full
    with pytest.raises(Dhcp6FormatError):
        decode_options(b"\x00\x01\x00\x09abc")


options_st = st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=8).map(
    tuple
)
messages_st = st.one_of(
    st.builds(
        Message,
        msg_type=st.integers(1, 11),
        transaction_id=st.integers(0, (1 << 24) - 1),
        options=options_st,
    ),
    st.builds(
        Relay,
        msg_type=st.sampled_from([12, 13]),
        hop_count=st.integers(0, 255),
        link_address=st.builds(IPv6Address, st.integers(0, (1 << 128) - 1)),
        peer_address=st.builds(IPv6Address, st.integers(0, (1 << 128) - 1)),
        options=options_st,
    ),
)


@given(messages_st)
def test_round_trip(message: Message | Relay) -> None:
    assert decode_message(encode_message(message)) == message


@given(st.builds(
    Ia,
    code=st.sampled_from([3, 25]),
    iaid=st.integers(0, 2**32 - 1),
    t1=st.integers(0, 2**32 - 1),
    t2=st.integers(0, 2**32 - 1),
    options=options_st,
))  # fmt: skip
def test_ia_round_trip(ia: Ia) -> None:
    code, value = encode_ia(ia)
    assert decode_ia(code, value) == ia
    assert encode_options(decode_options(value[12:])) == value[12:]


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_no_input_crashes_the_decoder(data: bytes) -> None:
    try:
        message = decode_message(data)
        _, inner = unwrap(message)
        for code, value in inner.options:
            if code in (3, 25):
                ia = decode_ia(code, value)
                ia.addresses()
                ia.prefixes()
    except Dhcp6FormatError:
        pass

"""DHCPv6: a UDP payload sent to port 547, decoded and handed to the engine, as
``ddi.dhcp6.server`` does with each datagram (direct from a client, or relayed).

``ddi.dhcp6.admission6.glance`` reads each payload first, as the transport does; where the
decoder reads a client DUID too, they agree. Outcomes: ``DhcpFormatError`` from the decoder or
a relay chain (the server counts it as ``malformed``), a ``Drop6`` with its reason, or a
``Reply6`` whose message encodes and decodes back to itself. Committed leases are kept in the
target's view as the store would keep them, so later inputs meet bound, released and declined
bindings; the state starts over every ``RESET_EVERY`` inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv6Address, IPv6Network

from ddi.dhcp.netboot import BootProfile
from ddi.dhcp6.admission6 import glance
from ddi.dhcp6.decision import Drop6, Inbound6, Reply6
from ddi.dhcp6.engine import Dhcp6Engine, Dhcp6Settings
from ddi.dhcp6.options import (
    Ia,
    IaAddress,
    MessageType,
    OptionCode,
    encode_ia,
    encode_iaaddr,
    encode_vendor_class,
)
from ddi.dhcp6.packet import Message, Relay, decode_message, encode_message, unwrap
from ddi.errors import DhcpFormatError
from ddi.ipam.models import Host
from ddi.ipam.models6 import Lease6, Lease6Kind, PdPool, Pool6, Subnet6
from fuzz.core import Target, Unexpected

NOW = 1_800_000_000.0
RESET_EVERY = 5000
SERVER_DUID = bytes.fromhex("00030001525400ffff01")
CLIENT_DUID = bytes.fromhex("00030001525400000001")
LAN = Subnet6(
    name="lan6",
    cidr=IPv6Network("2001:db8:10::/64"),
    pools=(Pool6(start=IPv6Address("2001:db8:10::100"), end=IPv6Address("2001:db8:10::107")),),
    pd_pools=(PdPool(prefix=IPv6Network("2001:db8:100::/54"), delegated_length=56),),
    dns_servers=(IPv6Address("2001:db8:10::53"),),
    domain="site.example",
    interface="eth0",
    relay_links=(IPv6Address("2001:db8:99::1"),),
    rapid_commit=True,
    boot="pxe",
)
HOSTS = (
    Host(id="h-web", ip6=IPv6Address("2001:db8:10::10"), hostname="web",
         duid="00:03:00:01:52:54:00:00:00:01"),
    Host(id="h-mac", ip6=IPv6Address("2001:db8:10::11"), hostname="mac", mac="52:54:00:00:00:02"),
)  # fmt: skip
PROFILES = {
    "pxe": BootProfile(
        name="pxe", files={7: "ipxe.efi", 16: "boot/ipxe.efi"}, base_url="http://{server}:8080"
    )
}
DIRECT = Inbound6(interface="eth0", src=IPv6Address("fe80::1"), local=IPv6Address("2001:db8:10::1"))
RELAYED = Inbound6(interface="eth0", src=IPv6Address("2001:db8:99::1"), src_port=547)


class _View:
    def __init__(self) -> None:
        self.leases: dict[tuple[Lease6Kind, IPv6Network], Lease6] = {}

    def subnets6(self) -> Sequence[Subnet6]:
        return (LAN,)

    def host_by_duid(self, duid: str) -> Host | None:
        return next((h for h in HOSTS if h.duid == duid), None)

    def host_by_mac(self, mac: str) -> Host | None:
        return next((h for h in HOSTS if h.mac == mac), None)

    def host_by_ip6(self, ip: IPv6Address) -> Host | None:
        return next((h for h in HOSTS if h.ip6 == ip), None)

    def lease6(self, kind: Lease6Kind, prefix: IPv6Network) -> Lease6 | None:
        return self.leases.get((kind, prefix))

    def host_at6(self, ip: int) -> Host | None:
        return self.host_by_ip6(IPv6Address(ip))

    def na_lease_at(self, ip: int) -> Lease6 | None:
        return self.leases.get((Lease6Kind.NA, IPv6Network(ip)))

    def leases6_of(self, kind: Lease6Kind, duid: str, iaid: int) -> list[Lease6]:
        return [x for x in self.leases.values() if (x.kind, x.duid, x.iaid) == (kind, duid, iaid)]

    def name_owned(self, name: str) -> bool:
        return name == "web"


class _State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.view = _View()
        self.engine = Dhcp6Engine(
            Dhcp6Settings(server_duid=SERVER_DUID, domain="site.example"),
            self.view,
            profiles=PROFILES,
        )
        self.inputs = 0


_state = _State()


def check(data: bytes) -> str:
    state = _state
    state.inputs += 1
    if state.inputs > RESET_EVERY:
        state.reset()
    now = NOW + state.inputs * 7.0
    # The transport's look before decoding (rate-limit keys): never raises, and where the
    # decoder reads the same client, it reads the same DUID.
    kind, duid = glance(data)
    message = decode_message(data)
    _relays, client = unwrap(message)
    if duid is not None and duid != client.option(OptionCode.CLIENTID):
        raise Unexpected("glance and the decoder disagree on the client's DUID")
    if kind not in (-1, client.msg_type) and duid is not None:
        raise Unexpected("glance and the decoder disagree on the message type")
    inbound = RELAYED if isinstance(message, Relay) else DIRECT
    decision = state.engine.handle(message, inbound, now)
    match decision:
        case Reply6():
            encoded = encode_message(decision.message)
            if decode_message(encoded) != decision.message:
                raise Unexpected("a reply does not decode back to itself")
            for lease in decision.commit:
                state.view.leases[lease.kind, lease.prefix] = lease
            return f"reply:{decision.rule.value}"
        case Drop6():
            return f"drop:{decision.reason.value}"
    raise Unexpected(f"handle returned {decision!r}")


def _client(kind: MessageType, *options: tuple[int, bytes], server: bool = False) -> bytes:
    head: list[tuple[int, bytes]] = [(OptionCode.CLIENTID, CLIENT_DUID)]
    if server:
        head.append((OptionCode.SERVERID, SERVER_DUID))
    return encode_message(Message(msg_type=kind, transaction_id=0xABCDE, options=(*head, *options)))


def seeds() -> list[bytes]:
    address = IaAddress(address=IPv6Address("2001:db8:10::100"), preferred=10, valid=20)
    na = encode_ia(Ia(code=OptionCode.IA_NA, iaid=1, options=(encode_iaaddr(address),)))
    pd = encode_ia(Ia(code=OptionCode.IA_PD, iaid=2))
    pxe = (OptionCode.VENDOR_CLASS, encode_vendor_class(343, [b"PXEClient"]))
    arch = (OptionCode.CLIENT_ARCH_TYPE, b"\x00\x07")
    fqdn = (OptionCode.CLIENT_FQDN, b"\x01\x06laptop")
    solicit = _client(MessageType.SOLICIT, na, pd, (OptionCode.RAPID_COMMIT, b""), pxe, arch)
    relayed = encode_message(
        Relay(
            msg_type=MessageType.RELAY_FORW,
            hop_count=0,
            link_address=IPv6Address("2001:db8:99::1"),
            peer_address=IPv6Address("fe80::2"),
            options=(
                (OptionCode.INTERFACE_ID, b"eth7"),
                (OptionCode.CLIENT_LINKLAYER_ADDR, b"\x00\x01\x52\x54\x00\x00\x00\x02"),
                (OptionCode.RELAY_MSG, _client(MessageType.SOLICIT, na)),
            ),
        )
    )
    return [
        solicit,
        _client(MessageType.SOLICIT, na, fqdn),
        _client(MessageType.REQUEST, na, pd, fqdn, server=True),
        _client(MessageType.RENEW, na, pd, server=True),
        _client(MessageType.REBIND, na, pd),
        _client(MessageType.RELEASE, na, server=True),
        _client(MessageType.DECLINE, na, server=True),
        _client(MessageType.CONFIRM, na),
        _client(MessageType.INFORMATION_REQUEST, (OptionCode.ORO, b"\x00\x17\x00\x18")),
        relayed,
    ]


DICTIONARY = (
    b"\x00\x01\x00\x0a\x00\x03\x00\x01\x52\x54\x00\x00\x00\x01",
    b"\x00\x02\x00\x0a\x00\x03\x00\x01\x52\x54\x00\xff\xff\x01",
    b"\x00\x03\x00\x0c",
    b"\x00\x19\x00\x0c",
    b"\x00\x05\x00\x18",
    b"\x00\x09",
    b"\x00\x0e\x00\x00",
    b"\x00\x27",
    b"\x0c\x00",
)


def target() -> Target:
    return Target(
        name="dhcp6",
        doc="a DHCPv6 message: ddi.dhcp6.packet.decode_message, then Dhcp6Engine.handle",
        check=check,
        seeds=seeds,
        allowed=(DhcpFormatError,),
        max_len=1500,
        dictionary=DICTIONARY,
        reset=_state.reset,
    )

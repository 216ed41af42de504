"""DHCP: a UDP payload sent to port 67, glanced at, decoded and handed to the engine, as
``ddi.dhcp.server`` does with each datagram. The glance is the admission's, on the undecoded
bytes: ``admission.client_key`` and ``link_key`` into token buckets (a burst no input uses up,
so every input goes on to the decoder), and the known-client check's ``engine.holds``.

Outcomes: ``DhcpFormatError`` from the decoder (the server counts it as ``malformed``), a
``Drop`` with its reason, a ``Commit``, or a ``Reply`` whose packet encodes. Commits are applied
to the in-memory index as the store would, so later inputs meet leased and declined addresses;
the state starts over every ``RESET_EVERY`` inputs to stay bounded.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from ddi.config import DhcpConfig
from ddi.dhcp.admission import TokenBuckets, client_key, link_key
from ddi.dhcp.classes import ClassMatch, ClientClass
from ddi.dhcp.decision import Commit, Drop, Inbound, Reply
from ddi.dhcp.engine import DhcpEngine
from ddi.dhcp.netboot import BootProfile
from ddi.dhcp.option_defs import OptionDefs, make_value
from ddi.dhcp.options import MessageType, OptionCode
from ddi.dhcp.packet import (
    BOOTREQUEST,
    ZERO_ADDRESS,
    DhcpPacket,
    decode_packet,
    encode_packet,
)
from ddi.errors import DhcpFormatError
from ddi.ipam.models import Change, Host, Kind, Lease, Op, Pool, Subnet
from ddi.ipam.views import IpamIndex
from fuzz.core import Target, Unexpected
from fuzz.seeds import captured

NOW = 1_800_000_000.0
SERVER = IPv4Address("198.18.0.1")
RELAY = IPv4Address("198.18.9.1")
RESET_EVERY = 5000
DEFS = OptionDefs()

LAN = Subnet(
    name="lan",
    cidr=IPv4Network("198.18.0.0/24"),
    gateway=SERVER,
    dns_servers=(SERVER,),
    domain="site.example",
    lease_time=3600,
    pools=(
        Pool(start=IPv4Address("198.18.0.100"), end=IPv4Address("198.18.0.131")),
        Pool(
            start=IPv4Address("198.18.0.200"), end=IPv4Address("198.18.0.203"), client_class="ipxe"
        ),
    ),
    interface="eth0",
    boot="pxe",
    options=(make_value(DEFS, "wpad", "http://198.18.0.1/wpad.dat"),),
)
FAR = Subnet(
    name="far",
    cidr=IPv4Network("198.18.5.0/24"),
    gateway=IPv4Address("198.18.5.1"),
    domain="site.example",
    lease_time=600,
    pools=(Pool(start=IPv4Address("198.18.5.50"), end=IPv4Address("198.18.5.53")),),
    relay_agents=(RELAY,),
)
HOSTS = (
    Host(
        id="h-web",
        ip=IPv4Address("198.18.0.10"),
        hostname="web",
        mac="52:54:00:00:00:01",
    ),
    Host(
        id="h-cid",
        ip=IPv4Address("198.18.0.11"),
        hostname="cid",
        client_id="01:52:54:00:00:00:02",
    ),
    Host(
        id="h-far",
        ip=IPv4Address("198.18.5.10"),
        hostname="far",
        circuit_id="65:74:68:31",
    ),
)
PROFILES = {
    "pxe": BootProfile(
        name="pxe",
        files={0: "undionly.kpxe", 7: "ipxe.efi", 16: "http://198.18.0.1/ipxe.efi"},
        ipxe_script="http://{server}/boot/{mac}.ipxe",
    )
}
# Classes on every field they match, so hostile 60/77/82 and MACs go through ``classify``.
CONFIG = DhcpConfig(
    options=(
        make_value(DEFS, "domain-search", "site.example, lab.site.example"),
        make_value(DEFS, "time-offset", 3600, always_send=True),
    ),
    classes=(
        ClientClass(name="ipxe", match=ClassMatch(user_class=b"iPXE"),
                    options=(make_value(DEFS, "tftp-server-name", "boot.site.example"),)),
        ClientClass(name="phones", match=ClassMatch(vendor_class_prefix=b"Cisco"),
                    options=(make_value(DEFS, "tftp-server-address", "198.18.0.5"),)),
        ClientClass(name="port", match=ClassMatch(circuit_id=b"eth1", mac_prefix=b"\x52\x54")),
    ),
)  # fmt: skip
DIRECT = Inbound(interface="eth0", local_ip=SERVER)
RELAYED = Inbound(interface="eth0", local_ip=SERVER, src_ip=RELAY, src_port=67)


class _State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.index = IpamIndex(
            subnets=(LAN, FAR), hosts=HOSTS, leases=(), records=(), domain="site.example"
        )
        self.engine = DhcpEngine(CONFIG, self.index, profiles=PROFILES, domain="site.example")
        self.seq = 0
        self.inputs = 0
        self.clients = TokenBuckets(1.0, 10**9)
        self.links = TokenBuckets(1.0, 10**9)

    def commit(self, lease: Lease) -> None:
        self.seq += 1
        change = Change(
            epoch=1,
            seq=self.seq,
            kind=Kind.LEASE,
            object_id=str(lease.ip),
            op=Op.UPSERT,
            image=lease.to_image(),
        )
        self.index.apply([change])


_state = _State()


def check(data: bytes) -> str:
    state = _state
    state.inputs += 1
    if state.inputs > RESET_EVERY:
        state.reset()
    now = NOW + state.inputs * 7.0
    hwaddr = client_key(data)
    if not state.clients.allow(hwaddr, now) or not state.links.allow(link_key(data, "eth0"), now):
        raise Unexpected("a token bucket ran out within its burst")
    if len(hwaddr) == 6:
        state.engine.holds(hwaddr.hex(":"))
    packet = decode_packet(data)
    inbound = DIRECT if packet.giaddr == ZERO_ADDRESS else RELAYED
    # The clock moves with the inputs, so offers and leases expire now and then.
    decision = state.engine.handle(packet, inbound, now)
    match decision:
        case Reply():
            encode_packet(decision.packet, max_size=decision.max_size)
            if decision.commit is not None:
                state.commit(decision.commit)
            return f"reply:{decision.rule.value}"
        case Commit():
            state.commit(decision.lease)
            return f"commit:{decision.rule.value}"
        case Drop():
            return f"drop:{decision.reason.value}"
    raise Unexpected(f"handle returned {decision!r}")


def _message(
    mac: bytes,
    message_type: MessageType,
    *options: tuple[int, bytes],
    giaddr: IPv4Address = ZERO_ADDRESS,
    ciaddr: IPv4Address = ZERO_ADDRESS,
    flags: int = 0,
) -> bytes:
    packet = DhcpPacket(
        op=BOOTREQUEST,
        xid=0x1234ABCD,
        flags=flags,
        ciaddr=ciaddr,
        giaddr=giaddr,
        hops=0 if giaddr == ZERO_ADDRESS else 1,
        chaddr=mac + bytes(16 - len(mac)),
        options=((OptionCode.MESSAGE_TYPE, bytes((message_type,))), *options),
    )
    return encode_packet(packet, max_size=1500)


def seeds() -> list[bytes]:
    """The captured client messages, and one of each message type the engine answers."""
    mac = bytes.fromhex("525400000001")
    other = bytes.fromhex("5254000000aa")
    prl = (OptionCode.PARAMETER_REQUEST_LIST, bytes((1, 3, 6, 15, 28, 12, 42, 26, 66, 67)))
    lan_ip = IPv4Address("198.18.0.10").packed
    pool_ip = IPv4Address("198.18.0.100").packed
    relay_info = b"\x01\x04eth1\x02\x06" + other + b"\x05\x04" + bytes((198, 18, 5, 0))
    fqdn = b"\x05\x00\x00\x04host\x07example\x00"
    return [
        *captured(67),
        _message(mac, MessageType.DISCOVER, prl),
        _message(other, MessageType.DISCOVER, prl, (OptionCode.CLIENT_IDENTIFIER, b"\x01" + other)),
        _message(
            mac,
            MessageType.REQUEST,
            prl,
            (OptionCode.REQUESTED_ADDRESS, lan_ip),
            (OptionCode.SERVER_IDENTIFIER, SERVER.packed),
        ),
        _message(other, MessageType.REQUEST, (OptionCode.REQUESTED_ADDRESS, pool_ip)),
        _message(other, MessageType.REQUEST, ciaddr=IPv4Address(pool_ip)),
        _message(other, MessageType.DECLINE, (OptionCode.REQUESTED_ADDRESS, pool_ip)),
        _message(other, MessageType.RELEASE, ciaddr=IPv4Address(pool_ip)),
        _message(other, MessageType.INFORM, prl, ciaddr=IPv4Address("198.18.0.77")),
        _message(other, MessageType.DISCOVER, prl, (81, fqdn), flags=0x8000),
        _message(
            other,
            MessageType.DISCOVER,
            prl,
            (OptionCode.RELAY_AGENT_INFORMATION, relay_info),
            giaddr=RELAY,
        ),
        _message(
            other,
            MessageType.DISCOVER,
            prl,
            (60, b"PXEClient:Arch:00007:UNDI:003010"),
            (93, b"\x00\x07"),
            (77, b"iPXE"),
            (57, b"\x05\xc0"),
        ),
        _message(bytes(6), MessageType.DISCOVER, prl),
    ]


DICTIONARY = (
    b"\x63\x82\x53\x63",  # the magic cookie
    b"\x35\x01\x01",
    b"\x35\x01\x03",
    b"\x34\x01\x03",  # option overload: file and sname
    b"\x32\x04\xc6\x12\x00\x64",
    b"\x36\x04\xc6\x12\x00\x01",
    b"\x3d\x07\x01\x52\x54\x00\x00\x00\x02",
    b"\x52\x0a\x01\x04eth1\x05\x04\xc6\x12\x05\x00",
    b"\x51\x05\x05\x00\x00\x01a",
    b"\x5d\x02\x00\x07",
    b"\x3c\x20PXEClient:Arch:00007:UNDI:003010",
    b"\x39\x02\xff\xff",
    b"\xff",
)


def target() -> Target:
    return Target(
        name="dhcp",
        doc="a DHCP request payload: ddi.dhcp.packet.decode_packet, then DhcpEngine.handle",
        check=check,
        seeds=seeds,
        allowed=(DhcpFormatError,),
        max_len=1500,
        dictionary=DICTIONARY,
        reset=_state.reset,
    )

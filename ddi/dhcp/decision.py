"""What the DHCPv4 engine decides, and where a reply goes (RFC 2131 §4.1), sans-I/O.

``DhcpEngine.handle`` returns one ``Decision``:

* ``Reply(packet, to, commit)``: send ``packet`` to ``to``; when ``commit`` is a lease, the
  transport sends only after the lease is durable (DESIGN principle 4).
* ``Commit(lease)``: make ``lease`` durable and send nothing (DECLINE, RELEASE).
* ``Drop(reason)``: send nothing; the transport counts ``reason``.

Rule 5 of ``ddi.dhcp.engine``: reply addressing is ``reply_destination`` (RFC 2131 §4.1), a
pure function.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv4Address

from ddi.dhcp.netboot import BootChoice
from ddi.dhcp.options import MessageType
from ddi.dhcp.packet import MIN_MESSAGE_SIZE, ZERO_ADDRESS, DhcpPacket
from ddi.errors import DhcpFormatError
from ddi.ipam.models import Lease
from ddi.values import slot_builder

BROADCAST_ADDRESS = IPv4Address("255.255.255.255")


class DropReason(enum.StrEnum):
    """Why a request got no reply (a bounded metric label)."""

    NOT_BOOTREQUEST = "not-bootrequest"
    NO_MESSAGE_TYPE = "no-message-type"
    """BOOTP, or option 53 malformed: ddi serves DHCP only."""
    UNEXPECTED_MESSAGE = "unexpected-message-type"
    """A server's message (OFFER, ACK, NAK) or an unknown type sent to the server port."""
    NO_CLIENT_IDENTITY = "no-client-identity"
    BAD_OPTION = "bad-option"
    NO_SUBNET = "no-subnet"
    NO_SERVER_ADDRESS = "no-server-address"
    OTHER_SERVER = "other-server"
    """The client chose, or speaks to, another server (option 54 is not ours)."""
    UNKNOWN_CLIENT = "unknown-client"
    """Known-hosts-only subnet and no reservation."""
    POOL_EXHAUSTED = "pool-exhausted"
    BAD_REQUEST = "bad-request"
    """A REQUEST that fits no RFC 2131 §4.3.2 state, or a DECLINE without option 50."""
    NO_RECORD = "no-record"
    """Non-authoritative: an INIT-REBOOT/RENEWING client we know nothing about."""
    NOT_LEASED = "not-leased"
    """RELEASE/DECLINE of an address this client does not hold."""


class Rule(enum.StrEnum):
    """Which rule produced a reply or a commit (a bounded metric and log label)."""

    OFFER_RESERVATION = "offer-reservation"
    OFFER_OUTSTANDING = "offer-outstanding"
    OFFER_PREVIOUS = "offer-previous-lease"
    OFFER_REQUESTED = "offer-requested"
    OFFER_POOL = "offer-pool"
    ACK_SELECTING = "ack-selecting"
    ACK_INIT_REBOOT = "ack-init-reboot"
    ACK_RENEWING = "ack-renewing"
    ACK_INFORM = "ack-inform"
    NAK_WRONG_SUBNET = "nak-wrong-subnet"
    NAK_RESERVED_ELSEWHERE = "nak-reserved-elsewhere"
    """The client has a reservation at another address."""
    NAK_RESERVED = "nak-reserved"
    """The address is another host's reservation."""
    NAK_TAKEN = "nak-taken"
    NAK_NOT_IN_POOL = "nak-not-in-pool"
    NAK_UNKNOWN_CLIENT = "nak-unknown-client"
    NAK_UNKNOWN_LEASE = "nak-unknown-lease"
    DECLINED = "declined"
    RELEASED = "released"


@dataclass(frozen=True, slots=True, kw_only=True)
class Inbound:
    """Where a request came from, as the transport saw it."""

    interface: str | None
    """Ingress interface name; None when the transport cannot tell."""
    local_ip: IPv4Address | None
    """This server's address on that interface (the default server identifier)."""
    src_ip: IPv4Address = ZERO_ADDRESS
    src_port: int = 68


@dataclass(frozen=True, slots=True, kw_only=True)
class Destination:
    """Where a reply goes. ``ip`` 255.255.255.255 means broadcast on ``interface``."""

    ip: IPv4Address
    port: int
    interface: str | None

    hwaddr: bytes | None = None
    """Set for a client that has no address yet and did not ask for broadcast: its hardware
    address. The transport then sends a link-layer unicast to ``ip`` (yiaddr) at ``hwaddr``
    when it can write frames (CAP_NET_RAW), else broadcasts on ``interface``."""

    @property
    def broadcast(self) -> bool:
        return self.ip == BROADCAST_ADDRESS


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    packet: DhcpPacket
    to: Destination
    rule: Rule
    commit: Lease | None = None
    """Sent only after this lease is durable."""
    max_size: int = MIN_MESSAGE_SIZE
    """The client's option 57 (at least 576): what ``encode_packet`` may use."""
    boot: BootChoice | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    lease: Lease
    rule: Rule


@dataclass(frozen=True, slots=True, kw_only=True)
class Drop:
    reason: DropReason


Decision = Reply | Commit | Drop


_new_destination = slot_builder(Destination)
"""``Destination(ip, port, interface, hwaddr)`` through its slots (ddi.values): the hot path."""


def reply_destination(
    request: DhcpPacket,
    message_type: MessageType,
    interface: str | None,
    *,
    server_port: int,
    client_port: int,
    relay_port: int | None = None,
    yiaddr: IPv4Address = ZERO_ADDRESS,
) -> Destination:
    """RFC 2131 §4.1, "If the 'giaddr' field in a DHCP message from a client is non-zero...".

    Relayed: to the relay at giaddr, server port (or the relay's source port when it asked for
    that with RFC 8357 sub-option 19: ``relay_port``). Else a NAK is broadcast; else a client with
    ciaddr (RENEWING, REBINDING, INFORM) gets unicast to ciaddr. Else, when the broadcast bit is
    set or chaddr is no station's address (``unicast_hwaddr``), broadcast; else unicast to the
    client's hardware address and yiaddr (``hwaddr`` set: the transport falls back to broadcast
    when it cannot write link-layer frames).
    """
    if request.giaddr != ZERO_ADDRESS:
        port = server_port if relay_port is None else relay_port
        return _new_destination(request.giaddr, port, None, None)
    if message_type is MessageType.NAK:
        return _new_destination(BROADCAST_ADDRESS, client_port, interface, None)
    if request.ciaddr != ZERO_ADDRESS:
        return _new_destination(request.ciaddr, client_port, interface, None)
    if not request.broadcast and yiaddr != ZERO_ADDRESS and request.hlen and request.hlen <= 16:
        hwaddr = request.chaddr[: request.hlen]
        if unicast_hwaddr(request.htype, hwaddr):
            return _new_destination(yiaddr, client_port, interface, hwaddr)
    return _new_destination(BROADCAST_ADDRESS, client_port, interface, None)


_ETHERNET = 1


def unicast_hwaddr(htype: int, hwaddr: bytes) -> bool:
    """Whether a frame to ``hwaddr`` reaches one station: not all zeros (no address at all),
    not all ones, and for Ethernet not a group address (IEEE 802 I/G bit, the first octet's
    lowest bit). A reply to a client that sent any of these is broadcast instead."""
    if not any(hwaddr) or hwaddr.count(0xFF) == len(hwaddr):
        return False
    return htype != _ETHERNET or not hwaddr[0] & 1


def reply_max_size(packet: DhcpPacket) -> int:
    """RFC 2132 §9.10: the client's maximum message size, never below 576."""
    try:
        size = packet.max_message_size()
    except DhcpFormatError:
        return MIN_MESSAGE_SIZE
    return MIN_MESSAGE_SIZE if size is None else max(size, MIN_MESSAGE_SIZE)

"""What the DHCPv6 engine decides, sans-I/O: a ``Reply6`` (with the leases to make durable
before it leaves) or a counted ``Drop6``."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv6Address

from ddi.dhcp6.netboot import BootChoice6
from ddi.dhcp6.options import MessageType
from ddi.dhcp6.packet import Message, Relay
from ddi.ipam.models6 import Lease6

CLIENT_PORT = 546
SERVER_PORT = 547
"""RFC 8415 §7.2: clients listen on 546, servers and relays on 547."""


class DropReason6(enum.StrEnum):
    """Why a message got no reply (a bounded metric label)."""

    UNEXPECTED_MESSAGE = "unexpected-message-type"
    """A server's message (ADVERTISE, REPLY, RECONFIGURE, RELAY-REPL) sent to the server."""
    NO_CLIENT_ID = "no-client-id"
    BAD_SERVER_ID = "bad-server-id"
    """A SOLICIT/REBIND/CONFIRM with a Server Identifier, or a REQUEST/RENEW/RELEASE/DECLINE
    without one (RFC 8415 §16)."""
    OTHER_SERVER = "other-server"
    BAD_OPTION = "bad-option"
    NO_SUBNET = "no-subnet"
    UNKNOWN_CLIENT = "unknown-client"
    NO_BINDING = "no-binding"
    """A REBIND for bindings the server does not have (RFC 8415 §18.3.5: no reply)."""
    NOTHING_TO_CONFIRM = "nothing-to-confirm"


class Rule6(enum.StrEnum):
    """Which rule produced a reply (a bounded metric and log label)."""

    ADVERTISE = "advertise"
    RAPID_COMMIT = "rapid-commit"
    REQUEST = "request"
    RENEW = "renew"
    REBIND = "rebind"
    RELEASE = "release"
    DECLINE = "decline"
    CONFIRM = "confirm"
    INFORMATION = "information"
    USE_MULTICAST = "use-multicast"


@dataclass(frozen=True, slots=True, kw_only=True)
class Inbound6:
    """Where a message came from, as the transport saw it."""

    interface: str | None
    src: IPv6Address
    src_port: int = CLIENT_PORT
    unicast: bool = False
    """Sent to one of the server's unicast addresses rather than All_DHCP_Relay_Agents_and_
    Servers (RFC 8415 §18.4)."""
    local: IPv6Address | None = None
    """The server's global address on the interface (boot URLs); None when it has none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Destination6:
    ip: IPv6Address
    port: int
    interface: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply6:
    message: Message | Relay
    """What to encode and send (a RELAY-REPL chain for a relayed request)."""
    reply_type: MessageType
    to: Destination6
    rule: Rule6
    commit: tuple[Lease6, ...] = ()
    """Sent only after these leases are durable."""
    boot: BootChoice6 | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Drop6:
    reason: DropReason6


Decision6 = Reply6 | Drop6

"""The DHCPv6 message codec (RFC 8415 §8, §9): client/server and relay messages, options as data.

``decode_message(data)`` returns a ``Message`` (type, transaction id, options) or a ``Relay``
(type, hop count, link-address, peer-address, options). A relay's RELAY_MSG option holds the
message it carries; ``unwrap`` follows those down to the client's message, at most
``HOP_COUNT_LIMIT`` relays deep (RFC 8415 §7.6), and ``wrap`` builds the RELAY-REPL chain back.
``decode_message(encode_message(x)) == x`` for every value either side can make.

Pure: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address

from ddi.dhcp6.options import (
    RELAY_TYPES,
    Dhcp6FormatError,
    MessageType,
    Option,
    OptionCode,
    decode_options,
    encode_options,
    first,
)

HOP_COUNT_LIMIT = 32
"""RFC 8415 §7.6: relays a message may cross; deeper nesting is refused."""
MAX_MESSAGE = 65535
_RELAY = struct.Struct("!BB16s16s")


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A client/server message (RFC 8415 §8)."""

    msg_type: int
    transaction_id: int
    """24 bits."""
    options: tuple[Option, ...] = ()

    def option(self, code: int) -> bytes | None:
        return first(self.options, code)


@dataclass(frozen=True, slots=True, kw_only=True)
class Relay:
    """A relay agent/server message (RFC 8415 §9)."""

    msg_type: int
    hop_count: int
    link_address: IPv6Address
    peer_address: IPv6Address
    options: tuple[Option, ...] = ()

    def option(self, code: int) -> bytes | None:
        return first(self.options, code)


def decode_message(data: bytes) -> Message | Relay:
    """Decode one DHCPv6 message.

    Raises:
        Dhcp6FormatError: too short, too long, or an option does not fit.
    """
    if len(data) > MAX_MESSAGE:
        raise Dhcp6FormatError("message longer than 65535 octets")
    if len(data) < 4:
        raise Dhcp6FormatError("message shorter than 4 octets")
    msg_type = data[0]
    if msg_type in RELAY_TYPES:
        if len(data) < _RELAY.size:
            raise Dhcp6FormatError("relay message shorter than 34 octets")
        _, hops, link, peer = _RELAY.unpack_from(data)
        return Relay(
            msg_type=msg_type,
            hop_count=hops,
            link_address=IPv6Address(link),
            peer_address=IPv6Address(peer),
            options=decode_options(data[_RELAY.size :]),
        )
    return Message(
        msg_type=msg_type,
        transaction_id=int.from_bytes(data[1:4], "big"),
        options=decode_options(data[4:]),
    )


def encode_message(message: Message | Relay) -> bytes:
    """The wire form of ``message``.

    Raises:
        Dhcp6FormatError: a field out of range or an option too long.
    """
    if not 0 <= message.msg_type <= 255:
        raise Dhcp6FormatError(f"message type {message.msg_type}")
    body = encode_options(message.options)
    if isinstance(message, Relay):
        if not 0 <= message.hop_count <= 255:
            raise Dhcp6FormatError(f"hop count {message.hop_count}")
        head = _RELAY.pack(
            message.msg_type,
            message.hop_count,
            message.link_address.packed,
            message.peer_address.packed,
        )
    else:
        if not 0 <= message.transaction_id < 1 << 24:
            raise Dhcp6FormatError(f"transaction id {message.transaction_id}")
        head = bytes((message.msg_type,)) + message.transaction_id.to_bytes(3, "big")
    return head + body


def unwrap(message: Message | Relay) -> tuple[tuple[Relay, ...], Message]:
    """The relays a message crossed (outermost first) and the client's message inside.

    Raises:
        Dhcp6FormatError: a relay without RELAY_MSG, nesting past ``HOP_COUNT_LIMIT``, or a
            relay reply where a forward belongs.
    """
    relays: list[Relay] = []
    while isinstance(message, Relay):
        if message.msg_type != MessageType.RELAY_FORW:
            raise Dhcp6FormatError("a RELAY-REPL sent to the server")
        if len(relays) >= HOP_COUNT_LIMIT:
            raise Dhcp6FormatError(f"relayed more than {HOP_COUNT_LIMIT} times")
        relays.append(message)
        inner = message.option(OptionCode.RELAY_MSG)
        if inner is None:
            raise Dhcp6FormatError("RELAY-FORW without a relay message option")
        message = decode_message(inner)
    return tuple(relays), message


def wrap(reply: Message, relays: Sequence[Relay]) -> Message | Relay:
    """The RELAY-REPL chain for ``reply`` (RFC 8415 §19.3): one per relay the request crossed,
    each with its hop count, link- and peer-address, and its Interface-ID echoed (§21.18)."""
    out: Message | Relay = reply
    for relay in reversed(relays):
        options: list[Option] = [(OptionCode.RELAY_MSG, encode_message(out))]
        interface_id = relay.option(OptionCode.INTERFACE_ID)
        if interface_id is not None:
            options.append((OptionCode.INTERFACE_ID, interface_id))
        out = Relay(
            msg_type=MessageType.RELAY_REPL,
            hop_count=relay.hop_count,
            link_address=relay.link_address,
            peer_address=relay.peer_address,
            options=tuple(options),
        )
    return out

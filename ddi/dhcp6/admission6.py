"""Whose DHCPv6 message it is, read off the datagram before it is decoded (pure).

The transport's token buckets need a key per client before the engine runs. The source
address is no such key: every relayed message comes from its relay, and a client behind one
would share the relay's bucket with all the others. ``glance`` walks the RELAY-FORW chain
(RFC 8415 §9, through each RELAY_MSG option) to the client's message and returns its type and
its Client Identifier (option 1, the DUID), without building any option list. Anything that
does not parse returns what was found so far; the decoder counts it as malformed later.

Nothing here reads the clock, does I/O or draws randomness.
"""

from __future__ import annotations

_RELAY_FORW = 12
_RELAY_HEADER = 34
"""msg-type, hop-count, link-address and peer-address (RFC 8415 §9)."""
_CLIENT_HEADER = 4
_CLIENTID = 1
_RELAY_MSG = 9
MAX_HOPS = 32
"""RFC 8415 §7.6: HOP_COUNT_LIMIT; a deeper chain is not walked."""
MAX_GLANCED = 64
"""Options looked at per message before giving up (the decoder's own bound is larger)."""


def _option(data: bytes, start: int, code: int) -> tuple[int, int] | None:
    """Where the value of the first option ``code`` lies in ``data[start:]`` (offset, end)."""
    offset, end = start, len(data)
    for _ in range(MAX_GLANCED):
        if end - offset < 4:
            return None
        found = (data[offset] << 8) | data[offset + 1]
        length = (data[offset + 2] << 8) | data[offset + 3]
        offset += 4
        if length > end - offset:
            return None
        if found == code:
            return offset, offset + length
        offset += length
    return None


def glance(data: bytes) -> tuple[int, bytes | None]:
    """The client's message type and DUID, through any relays; (-1, None) for an empty or
    truncated datagram, (type, None) when no Client Identifier is found."""
    for _ in range(MAX_HOPS + 1):
        if len(data) < _CLIENT_HEADER:
            return -1, None
        kind = data[0]
        if kind != _RELAY_FORW:
            where = _option(data, _CLIENT_HEADER, _CLIENTID)
            return kind, None if where is None else data[where[0] : where[1]]
        if len(data) < _RELAY_HEADER:
            return -1, None
        where = _option(data, _RELAY_HEADER, _RELAY_MSG)
        if where is None:
            return kind, None
        data = data[where[0] : where[1]]
    return _RELAY_FORW, None

"""One INFO line per lease event, in the form operators already grep dnsmasq's log for:

    DHCPACK(eth0) 198.18.0.10 52:54:00:aa:bb:01 web1
    DHCPNAK(eth0) 198.18.0.10 52:54:00:aa:bb:01 nak-wrong-subnet
    DHCPRELEASE(eth0) 198.18.0.10 52:54:00:aa:bb:01
    DHCPDECLINE(eth0) 198.18.0.10 52:54:00:aa:bb:01

The DHCP server calls :func:`sent` after a reply has left (an ACK leaves only once its lease is
durable) and :func:`committed` once a RELEASE or DECLINE is durable. The logger is
``ddi.dhcp.leases``: ``--log-level warning`` (or a logging filter on that name) silences it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from ipaddress import IPv4Address

from ddi.dhcp.decision import Reply
from ddi.dhcp.options import MessageType, OptionCode
from ddi.ipam.models import Lease, LeaseState

__all__ = ["after", "committed", "line", "sent"]

log = logging.getLogger("ddi.dhcp.leases")

_ZERO = IPv4Address(0)


def line(event: str, interface: str | None, ip: IPv4Address | None, mac: str | None,
         detail: str | None) -> str:  # fmt: skip
    """``EVENT(iface) ip mac detail``, dnsmasq's order; absent parts are left out."""
    parts = [f"{event}({interface or '-'})"]
    parts += [str(p) for p in (ip, mac, detail) if p]
    return " ".join(parts)


def _mac(chaddr: bytes, hlen: int) -> str | None:
    if not 0 < hlen <= 16:
        return None
    return chaddr[:hlen].hex(":")


def sent(interface: str | None, reply: Reply) -> None:
    """After ``reply`` left: a line for an ACK or a NAK, nothing for the rest."""
    packet = reply.packet
    kind = packet.message_type
    if kind not in (MessageType.ACK, MessageType.NAK) or not log.isEnabledFor(logging.INFO):
        return
    mac = _mac(packet.chaddr, packet.hlen)
    if kind is MessageType.ACK:
        lease = reply.commit
        ip = packet.yiaddr if packet.yiaddr != _ZERO else packet.ciaddr
        name = lease.hostname if lease is not None else None
        if name is None:
            raw = packet.get(OptionCode.HOST_NAME)
            name = raw.decode("ascii", "replace") if raw else None
        log.info("%s", line("DHCPACK", interface, ip, mac, name))
    else:
        asked = packet.ciaddr if packet.ciaddr != _ZERO else None
        log.info("%s", line("DHCPNAK", interface, asked, mac, reply.rule.value))


def committed(interface: str | None, lease: Lease) -> None:
    """After a RELEASE or DECLINE is durable (the lease's new state says which)."""
    if not log.isEnabledFor(logging.INFO):
        return
    event = {LeaseState.RELEASED: "DHCPRELEASE", LeaseState.DECLINED: "DHCPDECLINE"}.get(
        lease.state
    )
    if event is not None:
        log.info("%s", line(event, interface, lease.ip, lease.mac or lease.client_id, None))


def after(interface: str | None, lease: Lease) -> Callable[[], None]:
    """The group committer's callback for a RELEASE or DECLINE: :func:`committed`."""
    return functools.partial(committed, interface, lease)

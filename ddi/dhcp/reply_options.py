"""The configuration options a DHCPv4 reply carries (RFC 2132, RFC 3442, RFC 4702), sans-I/O.

A subnet's options are encoded once per subnet value; a reservation with its own DHCP values
(``host.dhcp``) gets them encoded per reply. ``ordered_options`` puts them in the client's parameter
request list order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ddi.dhcp.classes import ClientClass, merged_options
from ddi.dhcp.option_defs import OptionValue
from ddi.dhcp.options import (
    ClientFqdn,
    OptionCode,
    decode_client_fqdn,
    encode_classless_routes,
    encode_client_fqdn,
    encode_ip_list,
    encode_u16,
)
from ddi.dhcp.packet import DhcpPacket
from ddi.ipam.models import Host, Subnet


def reply_parameters(
    packet: DhcpPacket,
    subnet: Subnet,
    host: Host | None,
    hostname: str | None,
    subnet_cache: dict[str, tuple[Subnet, dict[int, bytes]]],
    *,
    defined: Sequence[OptionValue] = (),
    classes: Sequence[ClientClass] = (),
) -> dict[int, bytes]:
    """Configuration options available for this client, keyed by code. ``defined`` are the
    ``[[dhcp.options]]`` for every subnet; ``classes`` the client's, in configuration order."""
    if host is not None and host.dhcp is not None:
        params = subnet_options(subnet)  # per-host values: encoded per reply, not cached
    else:
        params = dict(subnet_parameters(subnet, subnet_cache))
    host_defined = () if host is None or host.dhcp is None else host.dhcp.options or ()
    if defined or subnet.options or classes or host_defined:
        params.update(defined_options(packet, defined, subnet, classes, host_defined))
    if host is not None:
        params[OptionCode.HOST_NAME] = host.hostname.encode("ascii")
    fqdn = packet.get(OptionCode.CLIENT_FQDN)
    if fqdn is not None:
        asked = decode_client_fqdn(fqdn)
        # RFC 4702 §4: the server updates the A record itself (S=1); O=1 says it overrode
        # a client that wanted to do it; N=0; E as the client sent.
        flags = ClientFqdn.FLAG_S | (asked.flags & ClientFqdn.FLAG_E)
        if not asked.flags & ClientFqdn.FLAG_S:
            flags |= ClientFqdn.FLAG_O
        name = ""
        if hostname is not None:
            name = f"{hostname}.{subnet.domain}" if subnet.domain else hostname
        params[OptionCode.CLIENT_FQDN] = encode_client_fqdn(ClientFqdn(flags=flags, name=name))
    return params


def defined_options(
    packet: DhcpPacket,
    defined: Sequence[OptionValue],
    subnet: Subnet,
    classes: Sequence[ClientClass],
    host_defined: Sequence[OptionValue],
) -> dict[int, bytes]:
    """Options by definition, a reservation's over its classes' over its subnet's over the
    global ones (the first class listed wins among classes); sent when option 55 asks for
    them or they are ``always_send``."""
    layers = [defined, subnet.options, *(c.options for c in reversed(classes)), host_defined]
    return merged_options(*layers, asked=packet.get(OptionCode.PARAMETER_REQUEST_LIST))


def subnet_parameters(
    subnet: Subnet, subnet_cache: dict[str, tuple[Subnet, dict[int, bytes]]]
) -> Mapping[int, bytes]:
    """The subnet's own options, encoded once per subnet value (subnets are frozen: a
    changed subnet is a new value, and the cache entry is replaced)."""
    cached = subnet_cache.get(subnet.name)
    if cached is not None and cached[0] is subnet:
        return cached[1]
    params = subnet_options(subnet)
    subnet_cache[subnet.name] = (subnet, params)
    return params


def subnet_options(subnet: Subnet) -> dict[int, bytes]:
    """The configuration options ``subnet`` gives its clients, keyed by code."""
    cidr = subnet.cidr
    params: dict[int, bytes] = {OptionCode.SUBNET_MASK: cidr.netmask.packed}
    if subnet.gateway is not None:
        params[OptionCode.ROUTER] = subnet.gateway.packed
    if subnet.dns_servers:
        params[OptionCode.DOMAIN_NAME_SERVER] = encode_ip_list(subnet.dns_servers)
    if subnet.domain:
        params[OptionCode.DOMAIN_NAME] = subnet.domain.encode("ascii")
    if cidr.prefixlen < 31:
        params[OptionCode.BROADCAST_ADDRESS] = cidr.broadcast_address.packed
    if subnet.mtu is not None:
        params[OptionCode.INTERFACE_MTU] = encode_u16(subnet.mtu)
    if subnet.routes:
        # RFC 3442 §3: a client that gets option 121 ignores option 3, so the default
        # route travels in 121 as well when there is a gateway.
        routes = [(r.destination, r.gateway) for r in subnet.routes]
        if subnet.gateway is not None and all(r.destination.prefixlen for r in subnet.routes):
            routes.append((cidr.supernet(new_prefix=0), subnet.gateway))
        params[OptionCode.CLASSLESS_STATIC_ROUTE] = encode_classless_routes(routes)
    if subnet.ntp_servers:
        params[OptionCode.NTP_SERVERS] = encode_ip_list(subnet.ntp_servers)
    return params


_DEFAULT_ORDER = (
    OptionCode.SUBNET_MASK,
    OptionCode.ROUTER,
    OptionCode.DOMAIN_NAME_SERVER,
    OptionCode.DOMAIN_NAME,
    OptionCode.BROADCAST_ADDRESS,
    OptionCode.INTERFACE_MTU,
    OptionCode.CLASSLESS_STATIC_ROUTE,
    OptionCode.NTP_SERVERS,
    OptionCode.HOST_NAME,
    OptionCode.CLIENT_FQDN,
    OptionCode.VENDOR_SPECIFIC,
    OptionCode.VENDOR_CLASS_IDENTIFIER,
    OptionCode.TFTP_SERVER_NAME,
    OptionCode.BOOTFILE_NAME,
)


def ordered_options(params: Mapping[int, bytes], prl: tuple[int, ...]) -> list[tuple[int, bytes]]:
    """The parameters the client asked for, in its option 55 order (RFC 2132 §9.8), then the
    rest it needs anyway, in a fixed order (encode_packet leaves out the last first)."""
    out: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    for code in prl:
        value = params.get(code)
        if value is not None and code not in seen:
            out.append((code, value))
            seen.add(code)
    for code in _DEFAULT_ORDER:
        value = params.get(code)
        if value is not None and code not in seen:
            out.append((code, value))
            seen.add(code)
    for code, value in params.items():
        if code not in seen:
            out.append((code, value))
    return out


_NETBOOT_SIGNS = frozenset(
    {
        OptionCode.VENDOR_CLASS_IDENTIFIER,
        OptionCode.USER_CLASS,
        OptionCode.CLIENT_ARCH,
        OptionCode.IPXE_ENCAPSULATED,
    }
)


def may_netboot(packet: DhcpPacket) -> bool:
    """Whether the request carries any option netboot selection looks at (60, 77, 93, 175);
    without one ``select_boot`` answers ``not-netboot``, so the hot path skips it."""
    return any(code in _NETBOOT_SIGNS for code, _ in packet.options)

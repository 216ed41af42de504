"""Validation and normalisation of what operators and clients hand the IPAM (pure; netaddr).

Rules:
* Every ``parse_*`` returns the one normalised form the store, the views, the change log and
  the CLI use, or raises :class:`~ddi.errors.Invalid` naming the field, the value and why.
* MAC, client-id and circuit-id are lower-case colon-separated hex (``52:54:00:00:00:01``).
* A hostname is one RFC 1123 label (RFC 952 as relaxed by RFC 1123 §2.1), lower case.
* Record names are absolute DNS names, lower case, without the trailing dot.
* Nothing here does I/O, reads the clock or draws randomness.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Any

import netaddr

from ddi.dhcp.option_defs import MAX_VALUE_BYTES, OptionError, OptionValue, check_definable
from ddi.errors import Invalid
from ddi.ipam.models import (
    HOST_DHCP_FIELDS,
    LEASE_TIME_RANGE,
    MTU_RANGE,
    RECORD_TYPES,
    HostDhcpOptions,
    Route,
    Subnet,
)
from ddi.numbers import decimal

__all__ = [
    "check_host_address",
    "check_host_dhcp",
    "format_hex",
    "host_address_problem",
    "host_names",
    "parse_circuit_id",
    "parse_client_id",
    "parse_dns_name",
    "parse_host_dhcp",
    "parse_hostname",
    "parse_ipv4",
    "parse_mac",
    "parse_record_value",
    "parse_rtype",
    "parse_ttl",
    "reverse_name",
    "sanitize_hostname",
    "subnet_for",
    "zone_name",
]

_HEX2 = "[0-9a-f]{2}"
_MAC_SEPARATED = re.compile(rf"^{_HEX2}([:-]){_HEX2}(\1{_HEX2}){{4}}$")
_MAC_DOTTED = re.compile(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$")
_MAC_BARE = re.compile(r"^[0-9a-f]{12}$")
# Hex bytes of one or two digits (ISC prints ``1:52:54:0:0:1``), at least two of them, one
# separator kind throughout.
_HEX_SEPARATED = re.compile(r"^[0-9a-f]{1,2}(?P<sep>[:\-. ])[0-9a-f]{1,2}((?P=sep)[0-9a-f]{1,2})*$")
_HEX_PREFIXED = re.compile(r"^0x((?:[0-9a-f]{2})+)$")
# Bare hex of two bytes or more, as Kea and dnsmasq export a client-id (``0152540aabbcc1``).
_HEX_BARE = re.compile(r"^(?:[0-9a-f]{2}){2,}$")
_QUOTED = re.compile(r"""^(["'])(.+)\1$""", re.DOTALL)
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Owner names of records may hold underscores (RFC 2181 §11; _service._proto for SRV, RFC 2782).
_OWNER_LABEL = re.compile(r"^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$")
_ID_MAX_BYTES = 255  # one DHCP option's worth (RFC 2132 §2)
_TXT_MAX = 4000


def format_hex(data: bytes) -> str:
    """Return ``data`` in the normalised colon hex form (``01:52:54:00``)."""
    return data.hex(":")


def parse_mac(raw: str) -> str:
    """Normalise a MAC address given as ``aa:bb:..``, ``aa-bb-..``, ``aabb.ccdd.eeff`` or
    ``aabbccddeeff``, in either case.

    Raises:
        Invalid: not one of those forms, all zeros, or a group (multicast/broadcast) address,
            which no DHCP client has as its hardware address.
    """
    text = raw.strip().lower()
    if _MAC_SEPARATED.match(text):
        digits = text.replace(":", "").replace("-", "")
    elif _MAC_DOTTED.match(text):
        digits = text.replace(".", "")
    elif _MAC_BARE.match(text):
        digits = text
    else:
        raise Invalid(
            "mac", raw, "not a MAC address (use aa:bb:cc:dd:ee:ff, aa-bb-…, or aabb.ccdd.eeff)"
        )
    data = bytes.fromhex(digits)
    if data == bytes(6):
        raise Invalid("mac", raw, "the all-zero MAC address is not a client")
    if data[0] & 0x01:
        raise Invalid("mac", raw, "a group (multicast or broadcast) address is not a client")
    return format_hex(data)


def _parse_opaque_id(field: str, raw: str, *, bare_hex: bool = False) -> str:
    text = raw.strip()
    if not text:
        raise Invalid(field, raw, "empty")
    lowered = text.lower()
    if (quoted := _QUOTED.match(text)) is not None:
        text = quoted.group(2)
        if not text.isprintable():
            raise Invalid(field, raw, "text form must be printable; give hex bytes instead")
        data = text.encode("utf-8")
    elif bare_hex and _HEX_BARE.match(lowered):
        data = bytes.fromhex(lowered)
    elif (match := _HEX_PREFIXED.match(lowered)) is not None:
        data = bytes.fromhex(match.group(1))
    elif (match := _HEX_SEPARATED.match(lowered)) is not None:
        data = bytes(int(part, 16) for part in re.split(r"[:\-. ]", lowered))
    else:
        if not text.isprintable():
            raise Invalid(field, raw, "text form must be printable; give hex bytes instead")
        data = text.encode("utf-8")
    if len(data) > _ID_MAX_BYTES:
        raise Invalid(field, raw, f"longer than {_ID_MAX_BYTES} bytes")
    return format_hex(data)


def parse_client_id(raw: str) -> str:
    """Normalise a DHCP client identifier (option 61, RFC 2132 §9.14).

    Hex bytes separated by ``:``, ``-``, ``.`` or spaces (``01:52:54:00:00:00:01``), bare
    (``0152540aabbcc1``, two bytes or more, as Kea and dnsmasq export it) or ``0x0152540000…``
    are taken as bytes; quoted text (``"web1"``) is stored as the hex of its UTF-8 bytes
    (``77:65:62:31``). Unquoted text that is not hex is taken as text too, for API clients of
    earlier versions; the CLI refuses it (``ddi.cli.values``).

    Raises:
        Invalid: empty, unprintable text, or longer than an option can carry.
    """
    return _parse_opaque_id("client_id", raw, bare_hex=True)


def parse_circuit_id(raw: str) -> str:
    """Normalise a relay agent circuit-id (option 82 sub-option 1, RFC 3046 §3.1), with the
    rules of :func:`parse_client_id` but for bare hex: relays name ports in text (``eth0``)."""
    return _parse_opaque_id("circuit_id", raw)


def parse_hostname(raw: str) -> str:
    """Normalise a reservation's hostname: one RFC 1123 label, lower case.

    Raises:
        Invalid: empty, longer than 63 characters, a dotted name, or characters other than
            letters, digits and inner hyphens.
    """
    text = raw.strip().lower()
    if not text:
        raise Invalid("hostname", raw, "empty")
    if "." in text.rstrip("."):
        raise Invalid("hostname", raw, "give one label; the site domain is appended")
    text = text.rstrip(".")
    if len(text) > 63:
        raise Invalid("hostname", raw, "longer than 63 characters (RFC 1035 §2.3.4)")
    if not _LABEL.match(text):
        raise Invalid(
            "hostname",
            raw,
            "only letters, digits and hyphens, not starting or ending with a hyphen (RFC 1123)",
        )
    return text


def sanitize_hostname(raw: str | bytes) -> str | None:
    """Turn a client-supplied name (DHCP option 12, or the name in option 81) into a valid label.

    Takes the first label, lower-cases it, replaces every run of characters outside
    ``[a-z0-9-]`` by one hyphen, trims hyphens and cuts to 63 characters.

    Returns:
        The label, or None when nothing usable remains.
    """
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    text = text.replace("\x00", "").strip().lower()
    first = text.split(".", 1)[0]
    cleaned = re.sub(r"[^a-z0-9-]+", "-", first)
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-")[:63].rstrip("-")
    return cleaned or None


def zone_name(raw: str, domain: str) -> str:
    """A record's owner name as a zone file reads it with ``$ORIGIN domain``: ``@`` is the
    domain, a name ending in a dot is absolute, any other is relative (``_ldap._tcp`` is
    ``_ldap._tcp.<domain>``; RFC 1035 §5.1). One exception keeps the commonest slip of zone
    files from doubling the domain: a name already ending in the domain (``www.site1.example``)
    is taken as written. Not validated here: :func:`parse_dns_name` does that."""
    name = raw.strip()
    if name == "@":
        return domain
    if name.endswith("."):
        return name
    lowered = name.lower()
    if lowered == domain or lowered.endswith(f".{domain}"):
        return name
    return f"{name}.{domain}"


def parse_dns_name(raw: str, *, field: str = "name") -> str:
    """Normalise an absolute DNS name: lower case, no trailing dot, each label 1-63 characters
    of letters, digits, hyphens and underscores (a leading ``*`` label is a wildcard).

    Raises:
        Invalid: empty, too long (RFC 1035 §2.3.4: 253 characters in text form), or a bad label.
    """
    text = raw.strip().lower()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise Invalid(field, raw, "empty")
    if len(text) > 253:
        raise Invalid(field, raw, "longer than 253 characters (RFC 1035 §2.3.4)")
    labels = text.split(".")
    for position, label in enumerate(labels):
        if label == "*" and position != 0:
            raise Invalid(field, raw, "a wildcard '*' may only be the first label")
        if not _OWNER_LABEL.match(label):
            raise Invalid(field, raw, f"bad label {label!r}")
    return text


def parse_ipv4(raw: str | IPv4Address, *, field: str = "ip") -> IPv4Address:
    """Return ``raw`` as an IPv4 address. Raises Invalid when it is not one."""
    if isinstance(raw, IPv4Address):
        return raw
    try:
        return IPv4Address(str(raw).strip())
    except ValueError:
        raise Invalid(field, str(raw), "not an IPv4 address") from None


def subnet_for(ip: IPv4Address, subnets: Iterable[Subnet]) -> Subnet | None:
    """Return the most specific subnet whose CIDR holds ``ip``, or None."""
    best: Subnet | None = None
    for subnet in subnets:
        if ip in subnet.cidr and (best is None or subnet.cidr.prefixlen > best.cidr.prefixlen):
            best = subnet
    return best


def host_address_problem(ip: IPv4Address, subnet: Subnet) -> str | None:
    """Why ``ip`` cannot be a host's address in ``subnet``, or None when it can.

    The network and broadcast addresses are never hosts' (RFC 1122 §3.2.1.3), except on /31
    (RFC 3021) and /32 networks, which have neither.
    """
    network = netaddr.IPNetwork(str(subnet.cidr))
    address = netaddr.IPAddress(str(ip))
    if address not in network:
        return f"outside subnet {subnet.name} ({subnet.cidr})"
    if network.broadcast is None:
        return None
    if address == network.network:
        return f"the network address of subnet {subnet.name} ({subnet.cidr})"
    if address == network.broadcast:
        return f"the broadcast address of subnet {subnet.name} ({subnet.cidr})"
    return None


def check_host_address(ip: IPv4Address, subnets: Sequence[Subnet]) -> Subnet:
    """The subnet in which ``ip`` may be a reservation's address.

    Raises:
        Invalid: ``ip`` is outside every subnet, or is a network or broadcast address.
    """
    subnet = subnet_for(ip, subnets)
    if subnet is None:
        served = ", ".join(f"{s.name} {s.cidr}" for s in subnets) or "none"
        raise Invalid("ip", str(ip), f"outside every subnet the site serves ({served})")
    problem = host_address_problem(ip, subnet)
    if problem is not None:
        raise Invalid("ip", str(ip), f"is {problem}")
    return subnet


def parse_rtype(raw: str) -> str:
    """Normalise a record type to upper case. Raises Invalid for types the site does not serve."""
    rtype = raw.strip().upper()
    if rtype not in RECORD_TYPES:
        raise Invalid("rtype", raw, f"not one of {', '.join(RECORD_TYPES)}")
    return rtype


def parse_ttl(raw: int | None) -> int | None:
    """A TTL in seconds, 0 to 2**31 - 1 (RFC 2181 §8), or None for the zone default."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 2**31 - 1:
        raise Invalid("ttl", str(raw), "must be an integer from 0 to 2147483647 seconds")
    return raw


def _u16(rtype: str, raw: str, part: str, what: str) -> int:
    value = decimal(part, max_digits=5)
    if value is None or value > 65535:
        raise Invalid("value", raw, f"{rtype} {what} must be an integer from 0 to 65535")
    return value


def parse_record_value(rtype: str, raw: str) -> str:
    """Normalise a record's rdata in presentation form, by type.

    A: an IPv4 address. AAAA: an IPv6 address (compressed form). CNAME, NS, PTR: a DNS name.
    MX: ``preference exchange``. SRV: ``priority weight port target`` (RFC 2782; target ``.``
    means no service). TXT: printable text, up to 4000 characters.

    Raises:
        Invalid: the value does not fit its type.
    """
    text = raw.strip()
    if rtype == "A":
        try:
            return str(IPv4Address(text))
        except ValueError:
            raise Invalid("value", raw, "an A record needs an IPv4 address") from None
    if rtype == "AAAA":
        try:
            return str(IPv6Address(text))
        except ValueError:
            raise Invalid("value", raw, "an AAAA record needs an IPv6 address") from None
    if rtype in ("CNAME", "NS", "PTR"):
        return parse_dns_name(text, field="value")
    if rtype == "MX":
        parts = text.split()
        if len(parts) != 2:
            raise Invalid("value", raw, "an MX record is 'preference exchange'")
        preference = _u16(rtype, raw, parts[0], "preference")
        return f"{preference} {parse_dns_name(parts[1], field='value')}"
    if rtype == "SRV":
        parts = text.split()
        if len(parts) != 4:
            raise Invalid("value", raw, "an SRV record is 'priority weight port target'")
        numbers = [
            _u16(rtype, raw, part, what)
            for part, what in zip(parts[:3], ("priority", "weight", "port"), strict=True)
        ]
        target = "." if parts[3] == "." else parse_dns_name(parts[3], field="value")
        return " ".join([*map(str, numbers), target])
    if rtype == "TXT":
        if not text:
            raise Invalid("value", raw, "a TXT record needs some text")
        if len(text) > _TXT_MAX or not text.isprintable():
            raise Invalid("value", raw, f"TXT must be printable text of at most {_TXT_MAX} chars")
        return text
    raise Invalid("rtype", rtype, f"not one of {', '.join(RECORD_TYPES)}")


def reverse_name(ip: IPv4Address | IPv6Address) -> str:
    """The PTR owner name of ``ip`` (RFC 1035 §3.5), without the trailing dot."""
    return ipaddress.ip_address(ip).reverse_pointer


def host_names(
    hostname: str, ip: IPv4Address | None, subnets: Iterable[Subnet], domain: str | None
) -> set[str]:
    """The absolute names a reservation owns: ``hostname`` under the site ``domain`` and under
    the domain of the subnet holding ``ip`` (when that differs; an IPv6-only host has none)."""
    names: set[str] = set()
    subnet = None if ip is None else subnet_for(ip, subnets)
    for zone in (domain, subnet.domain if subnet is not None else None):
        if zone:
            names.add(f"{hostname}.{zone.lower().rstrip('.')}")
    return names


def _int_in(field: str, raw: Any, bounds: tuple[int, int]) -> int:
    lo, hi = bounds
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise Invalid(field, str(raw), "not an integer")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise Invalid(field, str(raw), "not an integer") from None
    if not lo <= value <= hi:
        raise Invalid(field, str(raw), f"must be from {lo} to {hi}")
    return value


def _address_list(field: str, raw: Any) -> tuple[IPv4Address, ...]:
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise Invalid(field, str(raw), "a list of IPv4 addresses is expected")
    return tuple(
        parse_ipv4(a if isinstance(a, str | IPv4Address) else str(a), field=field) for a in raw
    )


def parse_route(raw: Any) -> Route:
    """A classless static route from ``{"destination": "10.0.0.0/8", "gateway": IP}``, a
    :class:`Route`, or the CLI's ``DEST/LEN=GATEWAY`` text.

    Raises:
        Invalid (field ``routes``): malformed, or the destination has host bits set.
    """
    if isinstance(raw, Route):
        return raw
    if isinstance(raw, str):
        dest_text, sep, gateway_text = raw.partition("=")
        if not sep:
            raise Invalid("routes", raw, "expected DEST/LEN=GATEWAY")
        raw = {"destination": dest_text.strip(), "gateway": gateway_text.strip()}
    if not isinstance(raw, Mapping) or set(raw) != {"destination", "gateway"}:
        raise Invalid("routes", str(raw), "expected destination and gateway")
    try:
        destination = IPv4Network(str(raw["destination"]))
    except ValueError as exc:  # also host bits set: 10.0.0.1/8
        raise Invalid("routes", str(raw["destination"]), f"bad destination: {exc}") from None
    return Route(destination=destination, gateway=parse_ipv4(raw["gateway"], field="routes"))


def parse_host_dhcp(raw: Mapping[str, Any] | HostDhcpOptions | None) -> HostDhcpOptions | None:
    """A reservation's DHCP options from their image (or a value), checked field by field.

    Each field is optional; None or an empty list inherits the subnet's value.

    Returns:
        The normalised options, or None when none is set.

    Raises:
        Invalid: naming the field: an unknown one, a lease time or MTU out of range, a
            malformed address, domain or route.
    """
    if raw is None:
        return None
    if isinstance(raw, HostDhcpOptions):
        raw = raw.to_image()
    if not isinstance(raw, Mapping):
        raise Invalid("dhcp", str(raw), "an object of DHCP options is expected")
    for name in raw:
        if name not in HOST_DHCP_FIELDS:
            raise Invalid(
                name, str(raw[name]), f"unknown DHCP option field ({', '.join(HOST_DHCP_FIELDS)})"
            )

    def given(name: str) -> Any:
        value = raw.get(name)
        return None if value is None or value == "" or value == [] else value

    lease_time, gateway, dns, domain = (given(n) for n in HOST_DHCP_FIELDS[:4])
    mtu, routes, ntp, defined = (given(n) for n in HOST_DHCP_FIELDS[4:])
    if routes is not None and (isinstance(routes, str) or not isinstance(routes, Sequence)):
        raise Invalid("routes", str(routes), "a list of routes is expected")
    options = HostDhcpOptions(
        lease_time=None
        if lease_time is None
        else _int_in("lease_time", lease_time, LEASE_TIME_RANGE),
        gateway=None if gateway is None else parse_ipv4(gateway, field="gateway"),
        dns_servers=None if dns is None else _address_list("dns_servers", dns),
        domain=None if domain is None else parse_dns_name(str(domain), field="domain"),
        mtu=None if mtu is None else _int_in("mtu", mtu, MTU_RANGE),
        routes=None if routes is None else tuple(parse_route(r) for r in routes),
        ntp_servers=None if ntp is None else _address_list("ntp_servers", ntp),
        options=None if defined is None else _defined_options(defined),
    )
    return None if options.is_empty() else options


def _defined_options(raw: Any) -> tuple[OptionValue, ...]:
    """A reservation's options by definition, as stored: code and hex value (the API encodes
    ``name``/``value`` pairs by the daemon's definitions before they get here)."""
    if isinstance(raw, str) or not isinstance(raw, Sequence) or len(raw) > 64:
        raise Invalid("options", str(raw)[:80], "a list of at most 64 options is expected")
    out: list[OptionValue] = []
    seen: set[int] = set()
    for item in raw:
        if isinstance(item, OptionValue):
            item = item.to_image()
        if not isinstance(item, Mapping) or not set(item) <= {
            "code",
            "data",
            "name",
            "always_send",
        }:
            raise Invalid("options", str(item)[:80], "expected code and data")
        code, data = item.get("code"), item.get("data")
        if isinstance(code, bool) or not isinstance(code, int) or not isinstance(data, str):
            raise Invalid("options", str(item)[:80], "expected an integer code and hex data")
        try:
            check_definable(code)
        except OptionError as exc:
            raise Invalid("options", str(code), str(exc)) from None
        if code in seen:
            raise Invalid("options", str(code), "the option is given twice")
        seen.add(code)
        if len(data) > 2 * MAX_VALUE_BYTES:
            raise Invalid("options", str(code), f"more than {MAX_VALUE_BYTES} bytes")
        try:
            value = OptionValue.from_image(item)
        except (ValueError, OptionError):
            raise Invalid("options", str(code), "the data is not hex") from None
        out.append(value)
    return tuple(out)


def check_host_dhcp(options: HostDhcpOptions, subnet: Subnet) -> None:
    """Refuse a reservation's options that cannot work on its subnet: a router or a route's
    gateway off the subnet (the client could not reach it), or a duplicate route.

    Raises:
        Invalid: naming ``gateway`` or ``routes``.
    """
    if options.gateway is not None:
        problem = host_address_problem(options.gateway, subnet)
        if problem is not None:
            raise Invalid("gateway", str(options.gateway), f"the router is {problem}")
    seen: set[IPv4Network] = set()
    for route in options.routes or ():
        problem = host_address_problem(route.gateway, subnet)
        if problem is not None:
            raise Invalid(
                "routes", f"{route.destination}={route.gateway}", f"the gateway is {problem}"
            )
        if route.destination in seen:
            raise Invalid("routes", str(route.destination), "the destination is given twice")
        seen.add(route.destination)

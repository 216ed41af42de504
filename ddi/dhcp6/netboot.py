"""Netboot over DHCPv6 (RFC 5970): the boot file URL (option 59) and parameters (option 60) a
client gets, from the same boot profiles as DHCPv4 (``ddi.dhcp.netboot``).

The rules are DHCPv4's (``ddi.dhcp.netboot.select_boot``) with an IPv6 server: a profile's
file for the client's architecture (option 61, RFC 5970 §3.3; the profile keys are the same
architecture types) becomes ``tftp://[server]/file`` for a PXE client and
``http://[server]:port/file`` (the profile's base URL) for a UEFI HTTP client (vendor class 16,
enterprise 343, ``HTTPClient``); iPXE (user class ``iPXE``) gets its script URL. The reply to an
HTTP client carries vendor class ``HTTPClient`` back (UEFI 2.5+ §24.7.2). A profile's
``boot_params`` (templates, rendered with the same values as the URL) go with the URL as
option 60.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import TYPE_CHECKING

from ddi.boot.templates import render_template
from ddi.dhcp.netboot import (
    HTTP_CLIENT,
    IPXE_USER_CLASS,
    PXE_CLIENT,
    BootFacts,
    BootProfile,
    BootRule,
    arch_name,
)
from ddi.dhcp.options import ClientArch, client_arch_from_int
from ddi.dhcp6.options import (
    ENTERPRISE_PXE,
    Dhcp6FormatError,
    Option,
    OptionCode,
    decode_client_arch,
    decode_vendor_class,
    encode_boot_params,
    encode_vendor_class,
    first,
)

if TYPE_CHECKING:
    from ddi.config.boot import BootConfig
    from ddi.ipam.models import Host
    from ddi.ipam.models6 import Subnet6


@dataclass(frozen=True, slots=True, kw_only=True)
class BootChoice6:
    """The decision: ``url`` None means no boot options."""

    rule: BootRule
    profile: str | None = None
    profile_source: str | None = None
    arch: ClientArch | int | None = None
    url: str | None = None
    params: tuple[str, ...] = ()
    http: bool = False
    problem: str | None = None

    @property
    def offers_boot(self) -> bool:
        return self.url is not None


def _user_classes(value: bytes) -> list[bytes]:
    """Option 15 (RFC 8415 §21.15): items of a 2-octet length and their octets."""
    items: list[bytes] = []
    offset = 0
    while offset + 2 <= len(value) and len(items) < 32:
        length = int.from_bytes(value[offset : offset + 2], "big")
        items.append(value[offset + 2 : offset + 2 + length])
        offset += 2 + length
    return items


def boot_facts6(mac: str | None, options: Sequence[Option]) -> BootFacts:
    """``BootFacts`` of a DHCPv6 request; a malformed 16 or 61 counts as absent."""
    vendor = None
    raw = first(options, OptionCode.VENDOR_CLASS)
    if raw is not None:
        try:
            enterprise, items = decode_vendor_class(raw)
        except Dhcp6FormatError:
            enterprise, items = 0, ()
        if enterprise == ENTERPRISE_PXE and items:
            vendor = items[0].decode("ascii", "replace")
    arch: ClientArch | int | None = None
    raw = first(options, OptionCode.CLIENT_ARCH_TYPE)
    if raw is not None:
        try:
            arch = client_arch_from_int(decode_client_arch(raw)[0])
        except Dhcp6FormatError:
            arch = None
    user = first(options, OptionCode.USER_CLASS)
    return BootFacts(
        mac=mac,
        arch=arch,
        vendor_class=vendor,
        is_pxe_client=vendor is not None and vendor.startswith(PXE_CLIENT),
        is_http_client=vendor is not None and vendor.startswith(HTTP_CLIENT),
        is_ipxe=user is not None and IPXE_USER_CLASS in _user_classes(user),
    )


def boot_params_from_config(boot: BootConfig) -> dict[str, tuple[str, ...]]:
    """Each boot profile's option 60 parameters (``boot_params``), by profile name."""
    return {name: p.boot_params for name, p in boot.profiles.items() if p.boot_params}


def select_boot6(
    facts: BootFacts,
    profiles: Mapping[str, BootProfile],
    *,
    host: Host | None,
    subnet: Subnet6 | None,
    server: IPv6Address | None,
    domain: str | None = None,
    params: Mapping[str, tuple[str, ...]] | None = None,
) -> BootChoice6:
    """Choose the boot options for one DHCPv6 client (the rules of ``select_boot``)."""
    if not facts.netboots:
        return BootChoice6(rule=BootRule.NOT_NETBOOT, arch=facts.arch)
    name, source = None, None
    if host is not None and host.boot is not None:
        name, source = host.boot, "host"
    elif subnet is not None and subnet.boot is not None:
        name, source = subnet.boot, "subnet"
    has_override = host is not None and (host.boot_file or host.boot_script) is not None
    if name is None and not has_override:
        return BootChoice6(rule=BootRule.NO_PROFILE, arch=facts.arch)
    profile = None if name is None else profiles.get(name)
    if name is not None and profile is None:
        return BootChoice6(
            rule=BootRule.UNKNOWN_PROFILE,
            profile=name,
            profile_source=source,
            arch=facts.arch,
            problem=f"boot profile {name!r} ({source}) is not configured",
        )
    arch = ClientArch.BIOS if facts.arch is None else facts.arch
    values = {"mac": facts.mac or "", "arch": str(int(arch))}
    if server is not None:
        values["server"] = f"[{server}]"  # RFC 3986 §3.2.2: an IPv6 literal in brackets
    if domain is not None:
        values["domain"] = domain
    if profile is not None:
        values["profile"] = profile.name
    if host is not None:
        values["hostname"] = host.hostname
        if host.ip6 is not None:
            values["ip"] = str(host.ip6)
        if domain is not None:
            values["fqdn"] = f"{host.hostname}.{domain}"
    if profile is not None and profile.base_url is not None:
        values["base_url"] = render_template(profile.base_url, values)

    templates = () if params is None or name is None else params.get(name, ())
    rendered = tuple(render_template(p, values) for p in templates)

    def choice(rule: BootRule, url: str, *, http: bool = False) -> BootChoice6:
        return BootChoice6(
            rule=rule,
            profile=name,
            profile_source=source,
            arch=arch,
            url=url,
            params=rendered,
            http=http,
        )

    if facts.is_ipxe:
        if host is not None and host.boot_script is not None:
            return choice(BootRule.HOST_SCRIPT, render_template(host.boot_script, values))
        if profile is not None and profile.ipxe_script is not None:
            return choice(BootRule.IPXE_SCRIPT, render_template(profile.ipxe_script, values))
    if host is not None and host.boot_file is not None:
        entry, rule = host.boot_file, BootRule.HOST_FILE
    elif profile is not None and arch in profile.files:
        entry = profile.files[arch]
        rule = BootRule.HTTP_URL if facts.is_http_client else BootRule.ARCH_FILE
    else:
        where = "the host" if profile is None else f"profile {profile.name!r}"
        return BootChoice6(
            rule=BootRule.NO_FILE_FOR_ARCH,
            profile=name,
            profile_source=source,
            arch=arch,
            problem=f"{where} has no boot file for client arch {arch_name(arch)}",
        )
    target = render_template(entry, values)
    if "://" in target:
        return choice(rule, target, http=facts.is_http_client)
    if facts.is_http_client:
        return choice(rule, f"{values.get('base_url', '')}/{target.lstrip('/')}", http=True)
    # RFC 5970 §3.1 with RFC 3617's tftp URL: the profile's file on the TFTP server.
    host_part = values.get("server", "{server}")
    return choice(rule, f"tftp://{host_part}/{target.lstrip('/')}")


def boot_options6(choice: BootChoice6) -> tuple[Option, ...]:
    """Options 16 (``HTTPClient`` for HTTP boot), 59 and 60 for a reply, in code order."""
    if choice.url is None:
        return ()
    options: list[Option] = []
    if choice.http:
        options.append(
            (OptionCode.VENDOR_CLASS, encode_vendor_class(ENTERPRISE_PXE, [HTTP_CLIENT.encode()]))
        )
    options.append((OptionCode.BOOTFILE_URL, choice.url.encode("utf-8")))
    if choice.params:
        options.append((OptionCode.BOOTFILE_PARAM, encode_boot_params(choice.params)))
    return tuple(options)


def request_options6(
    *, arch: int | None, user_class: str | None = None, vendor_class: str | None = None
) -> tuple[Option, ...]:
    """The options a netbooting DHCPv6 client of this kind sends (for ``ddi boot explain
    --v6``): option 61, option 16 (enterprise 343; by default ``HTTPClient`` for the UEFI HTTP
    arches 16 and 19, else ``PXEClient``) and option 15."""
    options: list[Option] = []
    if arch is not None:
        options.append((OptionCode.CLIENT_ARCH_TYPE, arch.to_bytes(2, "big")))
        if vendor_class is None:
            kind = HTTP_CLIENT if arch in (16, 19) else PXE_CLIENT
            vendor_class = f"{kind}:Arch:{arch:05d}"
    if vendor_class:
        raw = vendor_class.encode("ascii", "replace")
        options.append((OptionCode.VENDOR_CLASS, encode_vendor_class(ENTERPRISE_PXE, [raw])))
    if user_class:
        raw = user_class.encode("ascii", "replace")
        options.append((OptionCode.USER_CLASS, len(raw).to_bytes(2, "big") + raw))
    return tuple(options)

"""Netboot selection: which boot file, server and vendor options a DHCP client gets.

Pure: the DHCP engine and ``ddi boot explain`` call the same ``select_boot`` with the client's
``BootFacts`` (from options 60, 77, 93, 175), the boot profiles, the client's reservation and
subnet, and get a ``BootChoice`` that names the rule that made it.

Rules, in order; the first that applies wins and names itself (``BootRule``):

1. ``not-netboot``: the client shows no sign of network booting (no option 93, no
   ``PXEClient``/``HTTPClient`` vendor class, not iPXE). It gets no boot options.
2. ``no-profile``: neither its reservation nor its subnet names a profile, and the reservation
   has no per-host file or script. ``unknown-profile``: the name given is not configured.
3. iPXE (user class ``iPXE`` or option 175 present): the host's ``boot_script``
   (``host-script``), else the profile's iPXE script URL (``ipxe-script``). iPXE never gets the
   file it was itself loaded from, so it cannot chain-load itself in a loop.
4. UEFI HTTP clients (vendor class ``HTTPClient``): the host's ``boot_file`` (``host-file``),
   else the profile's file for the arch (``http-url``), as a full URL (a path is joined to the
   boot HTTP server's base URL); the reply carries option 60 ``HTTPClient`` (UEFI spec 2.5+
   §24.7.2).
5. Everything else (PXE ROMs, iPXE without a script): the host's ``boot_file``
   (``host-file``), else the profile's file for the arch (``arch-file``), served by TFTP from
   ``next_server``. ``PXEClient`` ROMs also get option 60 ``PXEClient`` and option 43 with
   PXE_DISCOVERY_CONTROL = 8 (PXE 2.1 §2.4.4): boot the file given, no boot-server discovery.
6. ``no-file-for-arch``: nothing is configured for this architecture (including any value
   of option 93 ddi does not know); ``BootChoice.problem`` says so, for the engine to log once.

A reservation's profile (``Host.boot``) beats its subnet's; its ``boot_file``/``boot_script``
beat either profile's entries. A PXE client without option 93 (pre-RFC 4578 ROMs) is taken as
BIOS (arch 0), as dnsmasq does.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from ddi.boot.templates import render_template
from ddi.dhcp.options import (
    ClientArch,
    OptionCode,
    client_arch_from_int,
    decode_client_arch,
    decode_user_class,
)
from ddi.errors import DhcpFormatError
from ddi.ipam.models import Host, Subnet

if TYPE_CHECKING:
    from ddi.config import BootConfig
    from ddi.dhcp.packet import DhcpPacket

PXE_CLIENT = "PXEClient"
HTTP_CLIENT = "HTTPClient"
IPXE_USER_CLASS = b"iPXE"
HTTP_ARCHES = frozenset({ClientArch.EFI_X86_64_HTTP, ClientArch.EFI_ARM64_HTTP})
_ARCH_IN_VENDOR_CLASS = re.compile(r":Arch:(\d{5})")

# PXE 2.1 §2.4.4: option 43 sub-option 6 (PXE_DISCOVERY_CONTROL), bit 3 (value 8) = "download
# the boot file named in the offer", then the END sub-option.
PXE_VENDOR_OPTIONS = bytes((6, 1, 8, 255))


@dataclass(frozen=True, slots=True, kw_only=True)
class BootFacts:
    """What a DHCP request says about how the client boots."""

    mac: str | None
    arch: ClientArch | int | None
    """First value of option 93 (RFC 4578 §2.1), else the ``Arch:NNNNN`` of the vendor
    class, else None."""
    vendor_class: str | None = None
    is_pxe_client: bool = False
    """Vendor class (option 60) starts with ``PXEClient``."""
    is_http_client: bool = False
    """Vendor class starts with ``HTTPClient`` (UEFI HTTP boot)."""
    is_ipxe: bool = False
    """User class (option 77) ``iPXE``, or option 175 (iPXE encapsulated options) present."""

    @property
    def netboots(self) -> bool:
        return self.arch is not None or self.is_pxe_client or self.is_http_client or self.is_ipxe


def facts_from_options(mac: str | None, options: Mapping[int, bytes]) -> BootFacts:
    """Derive ``BootFacts`` from raw option values. Never raises on malformed values: a bad
    option 93 or 77 counts as absent (the client still gets its address)."""
    raw_vendor = options.get(OptionCode.VENDOR_CLASS_IDENTIFIER)
    vendor = None if raw_vendor is None else raw_vendor.decode("ascii", "replace").rstrip("\0")
    arch: ClientArch | int | None = None
    raw_arch = options.get(OptionCode.CLIENT_ARCH)
    if raw_arch is not None:
        try:
            arch = decode_client_arch(raw_arch)[0]
        except DhcpFormatError:
            arch = None
    if arch is None and vendor is not None:
        found = _ARCH_IN_VENDOR_CLASS.search(vendor)
        if found:
            arch = client_arch_from_int(int(found.group(1)))
    user_class = options.get(OptionCode.USER_CLASS)
    is_ipxe = OptionCode.IPXE_ENCAPSULATED in options or (
        user_class is not None and IPXE_USER_CLASS in decode_user_class(user_class)
    )
    return BootFacts(
        mac=mac,
        arch=arch,
        vendor_class=vendor,
        is_pxe_client=vendor is not None and vendor.startswith(PXE_CLIENT),
        is_http_client=vendor is not None and vendor.startswith(HTTP_CLIENT),
        is_ipxe=is_ipxe,
    )


def request_options(
    *,
    arch: int | None,
    user_class: str | None = None,
    vendor_class: str | None = None,
    ipxe_options: bool = False,
) -> dict[int, bytes]:
    """The options a netbooting client of this kind sends (for ``ddi boot explain``).

    Without ``vendor_class`` a client with an arch sends the firmware's usual one:
    ``HTTPClient:Arch:000NN`` for the UEFI HTTP arches (16, 19), else ``PXEClient:Arch:NNNNN``.
    """
    options: dict[int, bytes] = {}
    if arch is not None:
        options[OptionCode.CLIENT_ARCH] = arch.to_bytes(2, "big")
        if vendor_class is None:
            kind = HTTP_CLIENT if arch in HTTP_ARCHES else PXE_CLIENT
            vendor_class = f"{kind}:Arch:{arch:05d}:UNDI:003016"
    if vendor_class:
        options[OptionCode.VENDOR_CLASS_IDENTIFIER] = vendor_class.encode("ascii", "replace")
    if user_class:
        options[OptionCode.USER_CLASS] = user_class.encode("ascii", "replace")
    if ipxe_options:
        options[OptionCode.IPXE_ENCAPSULATED] = b""
    return options


def boot_facts(packet: DhcpPacket) -> BootFacts:
    """``BootFacts`` of a decoded request (the first occurrence of each option counts)."""
    options: dict[int, bytes] = {}
    for code, value in packet.options:
        options.setdefault(code, value)
    return facts_from_options(packet.mac, options)


@dataclass(frozen=True, slots=True, kw_only=True)
class BootProfile:
    """A declarative boot profile (``[boot.profiles.NAME]``), ready for selection."""

    name: str
    files: Mapping[int, str]
    """Boot file by option 93 value. For UEFI HTTP arches a URL, or a path under
    ``base_url``."""
    ipxe_script: str | None = None
    """Template of the script URL iPXE clients get."""
    next_server: IPv4Address | None = None
    """TFTP server (siaddr, option 66); None: the DHCP server's own address."""
    base_url: str | None = None
    """Template of the HTTP boot server's URL, e.g. ``http://{server}:8080``."""


def profiles_from_config(boot: BootConfig) -> dict[str, BootProfile]:
    """Build the selection profiles from the ``[boot]`` section.

    The HTTP base URL is ``boot.http_base_url``, else ``http://{server}:<http_port>`` when the
    HTTP server is enabled; an iPXE script URL defaults to ``{base_url}/boot/{mac}.ipxe`` then.
    """
    base_url = boot.http_base_url
    if base_url is None and boot.http_enabled:
        base_url = f"http://{{server}}:{boot.http_port}"
    result = {}
    for name, p in boot.profiles.items():
        script = p.ipxe_script
        if script is None and base_url is not None:
            script = "{base_url}/boot/{mac}.ipxe"
        result[name] = BootProfile(
            name=name,
            files=dict(p.files),
            ipxe_script=script,
            next_server=p.next_server,
            base_url=None if base_url is None else base_url.rstrip("/"),
        )
    return result


class BootRule(enum.StrEnum):
    """Which rule decided (a bounded metric label and what ``ddi boot explain`` prints)."""

    NOT_NETBOOT = "not-netboot"
    NO_PROFILE = "no-profile"
    UNKNOWN_PROFILE = "unknown-profile"
    HOST_SCRIPT = "host-script"
    IPXE_SCRIPT = "ipxe-script"
    HOST_FILE = "host-file"
    HTTP_URL = "http-url"
    ARCH_FILE = "arch-file"
    NO_FILE_FOR_ARCH = "no-file-for-arch"


@dataclass(frozen=True, slots=True, kw_only=True)
class BootChoice:
    """The decision. ``filename`` None means no boot options at all."""

    rule: BootRule
    profile: str | None = None
    profile_source: str | None = None
    """``host`` or ``subnet``: where the profile name came from."""
    arch: ClientArch | int | None = None
    siaddr: IPv4Address | None = None
    """next-server header field; None when the file is a URL or no server is known."""
    filename: str | None = None
    """The ``file`` header field (when it fits) and option 67."""
    vendor_class: bytes | None = None
    """Option 60 to send back (``PXEClient`` or ``HTTPClient``)."""
    vendor_options: bytes | None = None
    """Option 43 (PXE vendor options)."""
    tftp_server: str | None = None
    """Option 66."""
    problem: str | None = None
    """A configuration gap worth one log line (unknown arch, missing file, unknown profile)."""

    @property
    def offers_boot(self) -> bool:
        return self.filename is not None

    @property
    def file_field(self) -> bytes:
        """The BOOTP ``file`` field (RFC 2131 §2: 128 bytes, NUL-terminated): the file name
        when it fits, else empty and only option 67 carries it."""
        if self.filename is None:
            return b""
        raw = self.filename.encode("utf-8")
        return raw if len(raw) < 128 else b""


def arch_name(arch: ClientArch | int | None) -> str:
    if arch is None:
        return "none"
    if isinstance(arch, ClientArch):
        return f"{arch.name} ({arch.value})"
    return f"unknown ({arch})"


def select_boot(
    facts: BootFacts,
    profiles: Mapping[str, BootProfile],
    *,
    host: Host | None,
    subnet: Subnet | None,
    server: IPv4Address | None = None,
    domain: str | None = None,
) -> BootChoice:
    """Choose the boot options for one client.

    Args:
        facts: what the request says (``boot_facts``).
        profiles: the configured profiles by name.
        host: the client's reservation, if any.
        subnet: the subnet the client is served on, if any.
        server: the DHCP server's address on the client's link (default next-server and the
            ``{server}`` template field); None leaves ``{server}`` unexpanded.
        domain: the site domain, for the ``{fqdn}``/``{domain}`` template fields.

    Returns:
        A BootChoice naming the rule that decided.
    """
    if not facts.netboots:
        return BootChoice(rule=BootRule.NOT_NETBOOT, arch=facts.arch)
    name, source = None, None
    if host is not None and host.boot is not None:
        name, source = host.boot, "host"
    elif subnet is not None and subnet.boot is not None:
        name, source = subnet.boot, "subnet"
    has_override = host is not None and (host.boot_file or host.boot_script) is not None
    if name is None and not has_override:
        return BootChoice(rule=BootRule.NO_PROFILE, arch=facts.arch)
    profile = None if name is None else profiles.get(name)
    if name is not None and profile is None:
        return BootChoice(
            rule=BootRule.UNKNOWN_PROFILE,
            profile=name,
            profile_source=source,
            arch=facts.arch,
            problem=f"boot profile {name!r} ({source}) is not configured",
        )
    arch = facts.arch
    if arch is None:
        arch = ClientArch.BIOS
    base = BootChoice(rule=BootRule.NOT_NETBOOT, profile=name, profile_source=source, arch=arch)
    values = _template_values(facts, profile, host, server=server, domain=domain, arch=arch)

    if facts.is_ipxe:
        if host is not None and host.boot_script is not None:
            return _url(base, BootRule.HOST_SCRIPT, render_template(host.boot_script, values))
        if profile is not None and profile.ipxe_script is not None:
            return _url(base, BootRule.IPXE_SCRIPT, render_template(profile.ipxe_script, values))

    if facts.is_http_client:
        if host is not None and host.boot_file is not None:
            entry, rule = host.boot_file, BootRule.HOST_FILE
        elif profile is not None and arch in profile.files:
            entry, rule = profile.files[arch], BootRule.HTTP_URL
        else:
            return _no_file(base, profile, arch)
        url = render_template(entry, values)
        if "://" not in url:
            # A path: served by the boot HTTP server.
            url = f"{values.get('base_url', '')}/{url.lstrip('/')}"
        return _url(base, rule, url, vendor_class=HTTP_CLIENT.encode())

    if host is not None and host.boot_file is not None:
        filename, rule = render_template(host.boot_file, values), BootRule.HOST_FILE
    elif profile is not None and arch in profile.files:
        filename, rule = render_template(profile.files[arch], values), BootRule.ARCH_FILE
    else:
        return _no_file(base, profile, arch)
    siaddr = server if profile is None or profile.next_server is None else profile.next_server
    pxe_rom = facts.is_pxe_client and not facts.is_ipxe
    return BootChoice(
        rule=rule,
        profile=base.profile,
        profile_source=base.profile_source,
        arch=arch,
        siaddr=siaddr,
        filename=filename,
        tftp_server=None if siaddr is None else str(siaddr),
        vendor_class=PXE_CLIENT.encode() if pxe_rom else None,
        vendor_options=PXE_VENDOR_OPTIONS if pxe_rom else None,
    )


def _template_values(
    facts: BootFacts,
    profile: BootProfile | None,
    host: Host | None,
    *,
    server: IPv4Address | None,
    domain: str | None,
    arch: ClientArch | int,
) -> dict[str, str]:
    values = {"mac": facts.mac or "", "arch": str(int(arch))}
    if profile is not None:
        values["profile"] = profile.name
    if server is not None:
        values["server"] = str(server)
    if domain is not None:
        values["domain"] = domain
    if host is not None:
        values["ip"] = "" if host.ip is None else str(host.ip)
        values["hostname"] = host.hostname
        if domain is not None:
            values["fqdn"] = f"{host.hostname}.{domain}"
    if profile is not None and profile.base_url is not None:
        values["base_url"] = render_template(profile.base_url, values)
    return values


def _url(
    base: BootChoice, rule: BootRule, url: str, *, vendor_class: bytes | None = None
) -> BootChoice:
    return BootChoice(
        rule=rule,
        profile=base.profile,
        profile_source=base.profile_source,
        arch=base.arch,
        filename=url,
        vendor_class=vendor_class,
    )


def _no_file(base: BootChoice, profile: BootProfile | None, arch: ClientArch | int) -> BootChoice:
    where = "the host" if profile is None else f"profile {profile.name!r}"
    return BootChoice(
        rule=BootRule.NO_FILE_FOR_ARCH,
        profile=base.profile,
        profile_source=base.profile_source,
        arch=arch,
        problem=f"{where} has no boot file for client arch {arch_name(arch)}",
    )


def boot_options(choice: BootChoice) -> tuple[tuple[int, bytes], ...]:
    """The options to add to an OFFER/ACK, in code order: 43, 60, 66, 67.

    The engine also sets the header: ``siaddr = choice.siaddr`` (when not None) and
    ``file = choice.file_field``.
    """
    if choice.filename is None:
        return ()
    options: list[tuple[int, bytes]] = []
    if choice.vendor_options is not None:
        options.append((OptionCode.VENDOR_SPECIFIC, choice.vendor_options))
    if choice.vendor_class is not None:
        options.append((OptionCode.VENDOR_CLASS_IDENTIFIER, choice.vendor_class))
    if choice.tftp_server is not None:
        options.append((OptionCode.TFTP_SERVER_NAME, choice.tftp_server.encode("ascii")))
    options.append((OptionCode.BOOTFILE_NAME, choice.filename.encode("utf-8")))
    return tuple(options)

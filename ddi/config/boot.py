"""``[boot]``: the TFTP and HTTP boot servers and the ``[boot.profiles.X]`` netboot profiles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_address
from pathlib import Path

from ddi.boot.templates import TEMPLATE_NAMES, template_fields
from ddi.config.table import Later, Table, file_default, label, setting
from ddi.errors import ConfigError
from ddi.numbers import decimal

BOOT_ARCH_KEYS: Mapping[str, int] = {
    "bios": 0,
    "efi_ia32": 6,
    "efi_bc": 7,
    "efi_x86_64": 9,
    "efi_arm64": 11,
    "http_x86_64": 16,
    "http_arm64": 19,
}
"""Profile keys for boot files, by client architecture (RFC 4578 §2.1, option 93)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BootProfileConfig:
    name: str
    files: Mapping[int, str] = field(default_factory=dict)
    """Boot file per client architecture (option 93 value); for the UEFI HTTP arches a URL."""
    ipxe_script: str | None = None
    """URL (a template: {mac} {ip} {hostname} {profile}) given to iPXE clients instead of a file."""
    next_server: IPv4Address | None = None
    """TFTP server (siaddr, option 66); default: the DHCP server's own address."""
    script_template: Path | None = None
    """iPXE script template for reserved hosts of this profile; default: boot.script_template."""
    default_script: Path | None = None
    """iPXE script template for MACs without a reservation; none: such requests get 404."""
    boot_params: tuple[str, ...] = ()
    """DHCPv6 boot file parameters (option 60, RFC 5970 §3.2), sent with the boot file URL
    (option 59): e.g. a kernel command line, one string per parameter. Templates, like
    ``ipxe_script``; at most 16 of at most 1024 characters each."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BootConfig:
    root: Path = field(metadata=file_default("boot"))
    """Folder the TFTP and HTTP servers serve; nothing outside it is ever served. In a file,
    relative to it."""
    tftp_enabled: bool = True
    tftp_listen: tuple[str, ...] = ("0.0.0.0",)
    """Addresses to listen on: one string or an array, IPv4 and IPv6 (``"::"`` for every IPv6
    address; ``fe80::1%ddi0`` with its interface)."""
    tftp_port: int = setting(69, lo=0, hi=65535)
    tftp_max_transfers: int = setting(256, lo=1, hi=100_000)
    """Transfers running at once, in all; more requests are answered "server busy"."""
    tftp_max_transfers_per_client: int = setting(8, lo=1, hi=100_000)
    """Transfers running at once to one client address, so that one host cannot take every
    slot. A boot client fetches one file at a time; 8 leaves room for ROMs that restart a fetch
    from a new port while the old transfer still waits out its retries."""
    tftp_timeout: float = setting(1.0, lo=0.05, hi=255)
    """Seconds before an unacknowledged block is sent again (clients may negotiate it)."""
    tftp_retries: int = setting(5, lo=1, hi=100)
    tftp_max_blksize: int = setting(65464, lo=8, hi=65464)
    """Largest block size granted to a client (RFC 2348: 8-65464)."""
    tftp_max_windowsize: int = setting(64, lo=1, hi=65535)
    """Largest window granted to a client (RFC 7440: 1-65535)."""
    tftp_max_window_bytes: int = setting(65536, lo=8, hi=1 << 30)
    """Largest window in bytes (windowsize x blksize) granted: larger windows overrun client
    socket buffers and lose their tail."""
    http_enabled: bool = True
    http_listen: tuple[str, ...] = ("0.0.0.0",)
    """As ``tftp_listen``."""
    http_port: int = setting(8080, lo=0, hi=65535)
    http_max_connections: int = setting(300, lo=1, hi=100_000)
    """Connections open at once; one more gets a 503 and is closed (BIND's
    http-listener-clients default)."""
    http_base_url: str | None = None
    """How clients reach the HTTP server (``http://198.18.0.1:8080``); default from the
    server's address and ``http_port``."""
    script_template: Path | None = None
    """iPXE script template for ``/boot/{mac}.ipxe``; default: a built-in one."""
    profiles: Mapping[str, BootProfileConfig] = field(default_factory=dict)


def _boot_profile(name: str, t: Table) -> BootProfileConfig:
    files: dict[int, str] = {}
    for key, arch in BOOT_ARCH_KEYS.items():
        value = t.str_(key, None)
        if value is not None:
            files[arch] = value
    extra = t.table("arch")
    if extra is not None:  # [boot.profiles.X.arch] "25" = "file" for arches without a name
        for key in extra.names():
            number = decimal(key, max_digits=5)  # str.isdigit() is true for "²", int() is not
            if number is None or number > 0xFFFF:
                raise ConfigError(extra.key(key), "must be an option 93 number (0-65535)")
            files[number] = extra.str_(key)
        extra.done()
    profile = t.read(BootProfileConfig, name=name, files=files)
    for key, arch in BOOT_ARCH_KEYS.items():
        if arch in files:
            _boot_template(t.key(key), files[arch])
    _boot_template(t.key("ipxe_script"), profile.ipxe_script or "")
    if len(profile.boot_params) > MAX_BOOT_PARAMS:
        raise ConfigError(t.key("boot_params"), f"lists more than {MAX_BOOT_PARAMS} parameters")
    for param in profile.boot_params:
        if not 0 < len(param) <= MAX_BOOT_PARAM:
            raise ConfigError(
                t.key("boot_params"), f"each parameter must be 1-{MAX_BOOT_PARAM} characters"
            )
        _boot_template(t.key("boot_params"), param)
    t.done()
    return profile


def _boot_template(key: str, template: str) -> None:
    unknown = template_fields(template) - TEMPLATE_NAMES
    if unknown:
        names = " ".join(f"{{{n}}}" for n in sorted(TEMPLATE_NAMES))
        raise ConfigError(key, f"unknown template field {{{min(unknown)}}} (known: {names})")


MAX_LISTEN = 16
MAX_BOOT_PARAMS = 16
MAX_BOOT_PARAM = 1024


def _listen(t: Table, name: str) -> tuple[str, ...]:
    """A string or an array of 1-16 distinct IP addresses (IPv6 ones may carry ``%scope``)."""
    addresses = t.one_or_list_(name, _listen_address, ("0.0.0.0",))
    if not 0 < len(addresses) <= MAX_LISTEN:
        raise ConfigError(t.key(name), f"must list 1-{MAX_LISTEN} addresses")
    if len(set(addresses)) != len(addresses):
        raise ConfigError(t.key(name), "lists an address twice")
    return addresses


def _listen_address(key: str, value: object) -> str:
    if not isinstance(value, str) or len(value) > 64:
        raise ConfigError(key, "must be an IP address string")
    try:
        return str(ip_address(value))
    except ValueError:
        raise ConfigError(key, f"{value!r} is not an IP address") from None


def parse_boot(t: Table | None, base: Path) -> BootConfig:
    if t is None:  # the defaults, with both servers off
        empty = Table({}, "boot", base)
        return empty.read(BootConfig, tftp_enabled=False, http_enabled=False, profiles={})
    profiles = {
        name: _boot_profile(label(p.key(""), name), p) for name, p in t.named_tables("profiles")
    }
    cfg = t.read(
        BootConfig,
        profiles=profiles,
        tftp_listen=Later(lambda: _listen(t, "tftp_listen")),
        http_listen=Later(lambda: _listen(t, "http_listen")),
    )
    t.done()
    return cfg

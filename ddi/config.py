"""TOML configuration → frozen, validated config objects.

Rules:
* Parsed once, at start-up (and on SIGHUP); nothing reads configuration from a global.
* Every refusal is a ``ConfigError`` whose key is the dotted path of the offending key
  (``subnets[1].pools[0].end``) and whose reason says what was expected.
* Unknown keys are refused, with a hint when one is close to a known key.
* Relative paths resolve against the folder of the configuration file.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address
from pathlib import Path
from typing import Any, TypeVar

from ddi.errors import ConfigError
from ddi.ipam.models import Pool, Route, Subnet

T = TypeVar("T")
_REQUIRED: Any = object()


class _Table:
    """A TOML table being read: typed getters that name the dotted key on error, and a final
    check that no key was left unread (an unknown or misspelt key)."""

    def __init__(self, data: Mapping[str, Any], path: str, base: Path) -> None:
        self._data = data
        self._path = path
        self._base = base
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def has(self, name: str) -> bool:
        return name in self._data

    def _get(self, name: str, default: Any) -> Any:
        self._read.add(name)
        if name in self._data:
            return self._data[name]
        if default is _REQUIRED:
            raise ConfigError(self.key(name), "is required")
        return default

    def _typed(self, name: str, default: Any, types: tuple[type, ...], what: str) -> Any:
        value = self._get(name, default)
        if value is default and default is not _REQUIRED:
            return value
        # bool is an int in Python; TOML keeps them apart, and so do we.
        if isinstance(value, bool) and bool not in types:
            raise ConfigError(self.key(name), f"must be {what}, not a boolean")
        if not isinstance(value, types):
            raise ConfigError(self.key(name), f"must be {what}, not {_toml_type(value)}")
        return value

    def str_(self, name: str, default: Any = _REQUIRED) -> Any:
        value = self._typed(name, default, (str,), "a string")
        if isinstance(value, str) and not value.strip():
            raise ConfigError(self.key(name), "must not be empty")
        return value

    def bool_(self, name: str, default: Any = _REQUIRED) -> Any:
        return self._typed(name, default, (bool,), "true or false")

    def int_(
        self, name: str, default: Any = _REQUIRED, *, lo: int | None = None, hi: int | None = None
    ) -> Any:
        value = self._typed(name, default, (int,), "an integer")
        if isinstance(value, int):
            _check_range(self.key(name), value, lo, hi)
        return value

    def float_(
        self,
        name: str,
        default: Any = _REQUIRED,
        *,
        lo: float | None = None,
        hi: float | None = None,
    ) -> Any:
        value = self._typed(name, default, (int, float), "a number")
        if isinstance(value, int | float):
            _check_range(self.key(name), value, lo, hi)
            return float(value)
        return value

    def ip_(self, name: str, default: Any = _REQUIRED) -> Any:
        value = self.str_(name, default)
        return value if value is None or value is default else _ipv4(self.key(name), value)

    def network_(self, name: str, default: Any = _REQUIRED) -> Any:
        value = self.str_(name, default)
        return value if value is None or value is default else _network(self.key(name), value)

    def path_(self, name: str, default: Any = _REQUIRED) -> Any:
        value = self._get(name, default)
        if value is None:
            return None
        if isinstance(value, Path):
            return value if value.is_absolute() else self._base / value
        if not isinstance(value, str) or not value:
            raise ConfigError(self.key(name), "must be a path")
        p = Path(value)
        return p if p.is_absolute() else self._base / p

    def list_(self, name: str, item: Callable[[str, Any], T], default: Any = ()) -> tuple[T, ...]:
        value = self._get(name, default)
        if not isinstance(value, list | tuple):
            raise ConfigError(self.key(name), f"must be an array, not {_toml_type(value)}")
        return tuple(item(f"{self.key(name)}[{i}]", v) for i, v in enumerate(value))

    def table(self, name: str, *, required: bool = False) -> _Table | None:
        value = self._get(name, _REQUIRED if required else None)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ConfigError(self.key(name), f"must be a table, not {_toml_type(value)}")
        return _Table(value, self.key(name), self._base)

    def tables(self, name: str) -> list[_Table]:
        value = self._get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(self.key(name), "must be an array of tables ([[...]])")
        return [_Table(v, f"{self.key(name)}[{i}]", self._base) for i, v in enumerate(value)]

    def named_tables(self, name: str) -> list[tuple[str, _Table]]:
        """``[name.X]`` sections: a table of tables keyed by name."""
        outer = self.table(name)
        if outer is None:
            return []
        result = []
        for key in list(outer._data):
            inner = outer.table(key, required=True)
            assert inner is not None
            result.append((key, inner))
        return result

    def done(self) -> None:
        for name in self._data:
            if name not in self._read:
                close = difflib.get_close_matches(name, self._read, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(self.key(name), f"unknown key{hint}")


def _toml_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _check_range(key: str, value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        raise ConfigError(key, f"must be at least {lo}, not {value}")
    if hi is not None and value > hi:
        raise ConfigError(key, f"must be at most {hi}, not {value}")


def _ipv4(key: str, value: Any) -> IPv4Address:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be an IPv4 address string, not {_toml_type(value)}")
    try:
        return IPv4Address(value)
    except ValueError:
        raise ConfigError(key, f"{value!r} is not an IPv4 address") from None


def _network(key: str, value: Any) -> IPv4Network:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a CIDR string, not {_toml_type(value)}")
    try:
        return IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ConfigError(key, f"{value!r} is not an IPv4 network in CIDR form: {exc}") from None


def _endpoint(key: str, value: Any, default_port: int) -> tuple[str, int]:
    """``"198.18.0.1"``, ``"198.18.0.1:53"``, ``"[2001:db8::1]:53"`` → (host, port)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "must be an address string like '198.18.0.1' or '198.18.0.1:53'")
    host, port = value, default_port
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ConfigError(key, f"{value!r}: unclosed '['")
        host, rest = value[1:end], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(key, f"{value!r}: expected ':port' after ']'")
            port = _port(key, rest[1:])
    elif value.count(":") == 1:
        host, port_text = value.split(":")
        port = _port(key, port_text)
    try:
        ip_address(host)
    except ValueError:
        raise ConfigError(key, f"{host!r} is not an IP address") from None
    return host, port


def _port(key: str, text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ConfigError(key, f"{text!r} is not a port number (0-65535)")
    return int(text)


def _label(key: str, value: str) -> str:
    ok = value.replace("-", "").replace("_", "").isalnum() and len(value) <= 63
    if not ok or value.startswith("-"):
        raise ConfigError(key, f"{value!r} must be letters, digits, '-' or '_'")
    return value


def _domain(key: str, value: str) -> str:
    name = value.rstrip(".").lower()
    labels = name.split(".")
    for label in labels:
        ok = 0 < len(label) <= 63 and label.replace("-", "").isalnum()
        if not ok or label.startswith("-") or label.endswith("-"):
            raise ConfigError(key, f"{value!r} is not a valid domain name")
    if len(name) > 253:
        raise ConfigError(key, "domain name longer than 253 characters")
    return name


# --- site ---


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteConfig:
    id: str
    """The site's identifier at central: letters, digits, '-' and '_'."""
    domain: str
    """The site's DNS domain (``site1.example``): hosts are named ``<hostname>.<domain>``."""
    data_dir: Path
    """Where the SQLite store lives (``ddi.sqlite``)."""


def _site(t: _Table) -> SiteConfig:
    site = SiteConfig(
        id=_label(t.key("id"), t.str_("id")),
        domain=_domain(t.key("domain"), t.str_("domain")),
        data_dir=t.path_("data_dir", "var/lib/ddi"),
    )
    t.done()
    return site


# --- api ---


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiConfig:
    socket: Path
    """Unix socket of the admin API (mode 0660); the CLI talks to it."""
    listen: tuple[str, int] | None = None
    """Optional TCP listener (``"127.0.0.1:8053"``); needs ``token`` or ``token_file``."""
    token: str | None = None
    """Bearer token required on the TCP listener."""


def _api(t: _Table | None) -> ApiConfig:
    if t is None:
        return ApiConfig(socket=Path("/run/ddi/ddi.sock"))
    listen = t.str_("listen", None)
    token = t.str_("token", None)
    token_file = t.path_("token_file", None)
    if token is not None and token_file is not None:
        raise ConfigError(t.key("token_file"), "give token or token_file, not both")
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(t.key("token_file"), f"cannot read {token_file}: {exc}") from None
        if not token:
            raise ConfigError(t.key("token_file"), f"{token_file} is empty")
    if listen is not None and token is None:
        raise ConfigError(t.key("listen"), "a TCP listener needs token or token_file")
    api = ApiConfig(
        socket=t.path_("socket", "/run/ddi/ddi.sock"),
        listen=None if listen is None else _endpoint(t.key("listen"), listen, 8053),
        token=token,
    )
    t.done()
    return api


# --- subnets ---


def _pool(t: _Table, cidr: IPv4Network) -> Pool:
    start, end = t.ip_("start"), t.ip_("end")
    for name, ip in (("start", start), ("end", end)):
        if ip not in cidr:
            raise ConfigError(t.key(name), f"{ip} is outside the subnet {cidr}")
        if cidr.prefixlen < 31 and ip in (cidr.network_address, cidr.broadcast_address):
            raise ConfigError(t.key(name), f"{ip} is the subnet's network or broadcast address")
    if end < start:
        raise ConfigError(t.key("end"), f"{end} is before start {start}")
    t.done()
    return Pool(start=start, end=end)


def _route(t: _Table) -> Route:
    route = Route(destination=t.network_("destination"), gateway=t.ip_("gateway"))
    t.done()
    return route


def _subnet(t: _Table, site: SiteConfig) -> Subnet:
    name = _label(t.key("name"), t.str_("name"))
    cidr = t.network_("cidr")
    gateway = t.ip_("gateway", None)
    if gateway is not None and gateway not in cidr:
        raise ConfigError(t.key("gateway"), f"{gateway} is outside the subnet {cidr}")
    pools = tuple(_pool(p, cidr) for p in t.tables("pools"))
    for i, a in enumerate(pools):
        for b in pools[i + 1 :]:
            if a.start <= b.end and b.start <= a.end:
                raise ConfigError(
                    t.key("pools"), f"pools {a.start}-{a.end} and {b.start}-{b.end} overlap"
                )
    domain = t.str_("domain", None)
    subnet = Subnet(
        name=name,
        cidr=cidr,
        gateway=gateway,
        dns_servers=t.list_("dns_servers", _ipv4),
        domain=site.domain if domain is None else _domain(t.key("domain"), domain),
        lease_time=t.int_("lease_time", 3600, lo=60, hi=365 * 86400),
        pools=pools,
        interface=t.str_("interface", None),
        relay_agents=t.list_("relay_agents", _ipv4),
        boot=t.str_("boot", None),
        known_hosts_only=t.bool_("known_hosts_only", False),
        mtu=t.int_("mtu", None, lo=68, hi=65535),
        routes=tuple(_route(r) for r in t.tables("routes")),
        ntp_servers=t.list_("ntp_servers", _ipv4),
    )
    t.done()
    return subnet


def _subnets(tables: list[_Table], site: SiteConfig) -> tuple[Subnet, ...]:
    subnets = tuple(_subnet(t, site) for t in tables)
    seen: dict[str, int] = {}
    for i, s in enumerate(subnets):
        if s.name in seen:
            raise ConfigError(f"subnets[{i}].name", f"{s.name!r} is also subnets[{seen[s.name]}]")
        seen[s.name] = i
        for j, other in enumerate(subnets[:i]):
            if s.cidr.overlaps(other.cidr):
                raise ConfigError(
                    f"subnets[{i}].cidr",
                    f"{s.cidr} overlaps subnets[{j}] ({other.name}, {other.cidr})",
                )
    return subnets


# --- dhcp ---


@dataclass(frozen=True, slots=True, kw_only=True)
class DhcpConfig:
    enabled: bool = True
    port: int = 67
    """Server port (RFC 2131: 67). Loopback tests use a high port."""
    client_port: int = 68
    """Port replies go to (RFC 2131: 68)."""
    interfaces: tuple[str, ...] = ()
    """Interfaces to listen on; empty means the ``interface`` of every subnet."""
    offer_ttl: float = 30.0
    """Seconds an unanswered OFFER holds its address (in memory only)."""
    decline_quarantine: int = 600
    """Seconds a DECLINEd address stays out of the pool (RFC 2131 §3.1.5)."""
    queue_size: int = 4096
    """Packets waiting for the engine; a burst beyond this is shed and counted."""
    queue_max_age: float = 2.0
    """Seconds a received packet may wait for the engine; older ones are dropped as stale
    (counted): the client has retransmitted by then, and answering old packets first is how an
    overloaded server stops answering anyone."""
    commit_batch: int = 256
    """Leases committed together in one transaction and one fsync at most."""
    commit_delay: float = 0.002
    """Seconds the group committer waits to gather a batch after the first lease."""
    server_id: IPv4Address | None = None
    """Server identifier (option 54); default: the address of the ingress interface."""
    authoritative: bool = True
    """NAK requests for addresses this server does not know (RFC 2131 §4.3.2)."""
    expire_interval: float = 10.0
    """Seconds between sweeps that mark ended leases expired (and refresh the pool gauges)."""


def _dhcp(t: _Table | None) -> DhcpConfig:
    if t is None:
        return DhcpConfig()
    cfg = DhcpConfig(
        enabled=t.bool_("enabled", True),
        port=t.int_("port", 67, lo=1, hi=65535),
        client_port=t.int_("client_port", 68, lo=1, hi=65535),
        interfaces=t.list_("interfaces", _str_item),
        offer_ttl=t.float_("offer_ttl", 30.0, lo=1, hi=3600),
        decline_quarantine=t.int_("decline_quarantine", 600, lo=0, hi=30 * 86400),
        queue_size=t.int_("queue_size", 4096, lo=1, hi=1_000_000),
        queue_max_age=t.float_("queue_max_age", 2.0, lo=0.01, hi=60),
        commit_batch=t.int_("commit_batch", 256, lo=1, hi=100_000),
        commit_delay=t.float_("commit_delay", 0.002, lo=0, hi=1),
        server_id=t.ip_("server_id", None),
        authoritative=t.bool_("authoritative", True),
        expire_interval=t.float_("expire_interval", 10.0, lo=0.1, hi=3600),
    )
    t.done()
    return cfg


def _str_item(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "must be a non-empty string")
    return value


# --- boot ---

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


@dataclass(frozen=True, slots=True, kw_only=True)
class BootConfig:
    root: Path
    """Folder the TFTP and HTTP servers serve; nothing outside it is ever served."""
    tftp_enabled: bool = True
    tftp_listen: str = "0.0.0.0"
    tftp_port: int = 69
    tftp_max_transfers: int = 256
    tftp_timeout: float = 1.0
    """Seconds before an unacknowledged block is sent again (clients may negotiate it)."""
    tftp_retries: int = 5
    tftp_max_blksize: int = 65464
    """Largest block size granted to a client (RFC 2348: 8-65464)."""
    tftp_max_windowsize: int = 64
    """Largest window granted to a client (RFC 7440: 1-65535)."""
    tftp_max_window_bytes: int = 65536
    """Largest window in bytes (windowsize x blksize) granted: larger windows overrun client
    socket buffers and lose their tail."""
    http_enabled: bool = True
    http_listen: str = "0.0.0.0"
    http_port: int = 8080
    http_base_url: str | None = None
    """How clients reach the HTTP server (``http://198.18.0.1:8080``); default from the
    server's address and ``http_port``."""
    script_template: Path | None = None
    """iPXE script template for ``/boot/{mac}.ipxe``; default: a built-in one."""
    profiles: Mapping[str, BootProfileConfig] = field(default_factory=dict)


def _boot_profile(name: str, t: _Table) -> BootProfileConfig:
    files: dict[int, str] = {}
    for key, arch in BOOT_ARCH_KEYS.items():
        value = t.str_(key, None)
        if value is not None:
            files[arch] = value
    extra = t.table("arch")
    if extra is not None:  # [boot.profiles.X.arch] "25" = "file" for arches without a name
        for key in list(extra._data):
            if not key.isdigit() or int(key) > 0xFFFF:
                raise ConfigError(extra.key(key), "must be an option 93 number (0-65535)")
            files[int(key)] = extra.str_(key)
        extra.done()
    profile = BootProfileConfig(
        name=name,
        files=files,
        ipxe_script=t.str_("ipxe_script", None),
        next_server=t.ip_("next_server", None),
        script_template=t.path_("script_template", None),
        default_script=t.path_("default_script", None),
    )
    for key, arch in BOOT_ARCH_KEYS.items():
        if arch in files:
            _boot_template(t.key(key), files[arch])
    _boot_template(t.key("ipxe_script"), profile.ipxe_script or "")
    t.done()
    return profile


def _boot_template(key: str, template: str) -> None:
    from ddi.dhcp.netboot import TEMPLATE_NAMES, template_fields

    unknown = template_fields(template) - TEMPLATE_NAMES
    if unknown:
        names = " ".join(f"{{{n}}}" for n in sorted(TEMPLATE_NAMES))
        raise ConfigError(key, f"unknown template field {{{min(unknown)}}} (known: {names})")


def _boot(t: _Table | None, base: Path) -> BootConfig:
    if t is None:
        return BootConfig(root=base / "boot", tftp_enabled=False, http_enabled=False)
    profiles = {
        name: _boot_profile(_label(p.key(""), name), p) for name, p in t.named_tables("profiles")
    }
    cfg = BootConfig(
        root=t.path_("root", "boot"),
        tftp_enabled=t.bool_("tftp_enabled", True),
        tftp_listen=t.str_("tftp_listen", "0.0.0.0"),
        tftp_port=t.int_("tftp_port", 69, lo=0, hi=65535),
        tftp_max_transfers=t.int_("tftp_max_transfers", 256, lo=1, hi=100_000),
        tftp_timeout=t.float_("tftp_timeout", 1.0, lo=0.05, hi=255),
        tftp_retries=t.int_("tftp_retries", 5, lo=1, hi=100),
        tftp_max_blksize=t.int_("tftp_max_blksize", 65464, lo=8, hi=65464),
        tftp_max_windowsize=t.int_("tftp_max_windowsize", 64, lo=1, hi=65535),
        tftp_max_window_bytes=t.int_("tftp_max_window_bytes", 65536, lo=8, hi=1 << 30),
        http_enabled=t.bool_("http_enabled", True),
        http_listen=t.str_("http_listen", "0.0.0.0"),
        http_port=t.int_("http_port", 8080, lo=0, hi=65535),
        http_base_url=t.str_("http_base_url", None),
        script_template=t.path_("script_template", None),
        profiles=profiles,
    )
    t.done()
    return cfg


# --- dns ---


@dataclass(frozen=True, slots=True, kw_only=True)
class TsigKeyConfig:
    name: str
    algorithm: str
    """Only ``hmac-sha256``."""
    secret: bytes
    """The decoded base64 secret."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SecondaryConfig:
    address: tuple[str, int]
    """Where NOTIFY goes (``"198.18.0.53:53"``)."""
    key: str | None = None
    """TSIG key name for NOTIFY and for this secondary's transfers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsConfig:
    enabled: bool = True
    listen: tuple[tuple[str, int], ...] = ()
    """UDP and TCP listeners; empty means ``127.0.0.1:<port>``."""
    port: int = 53
    """Default port for ``listen`` entries given without one."""
    ttl: int = 300
    """TTL of records derived from IPAM, and the SOA minimum (negative-caching TTL)."""
    ns_name: str = "ns"
    """The appliance's own name in the site zone (NS target)."""
    ns_address: IPv4Address | None = None
    """The appliance's address for the NS glue A record."""
    forwarders: tuple[tuple[str, int], ...] = ()
    """Upstream resolvers for names outside the local zones; none means REFUSED."""
    forward_timeout: float = 2.0
    """Seconds before an unanswered forwarded query gets SERVFAIL."""
    recursion_from: tuple[IPv4Network, ...] = ()
    """Clients allowed to use the forwarders; empty means the site's subnets and loopback."""
    tsig_keys: Mapping[str, TsigKeyConfig] = field(default_factory=dict)
    secondaries: tuple[SecondaryConfig, ...] = ()
    allow_transfer: tuple[IPv4Network, ...] = ()
    """Peers allowed AXFR/IXFR without TSIG (keyed transfers are always allowed)."""
    tcp_max_connections: int = 128
    tcp_idle_timeout: float = 10.0
    cache_size: int = 10_000
    """Encoded answers kept in the wire cache."""
    journal_size: int = 100
    """Zone changes kept per zone for IXFR; a secondary further behind gets a full AXFR."""
    edns_udp_size: int = 1232
    """Largest UDP reply sent to an EDNS client (RFC 6891; 1232 avoids fragmentation)."""


def _tsig_key(name: str, t: _Table) -> TsigKeyConfig:
    import base64
    import binascii

    algorithm = t.str_("algorithm", "hmac-sha256").lower()
    if algorithm != "hmac-sha256":
        raise ConfigError(t.key("algorithm"), f"{algorithm!r} is not supported (hmac-sha256)")
    secret_text = t.str_("secret")
    try:
        secret = base64.b64decode(secret_text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(t.key("secret"), "must be base64") from None
    if len(secret) < 16:
        raise ConfigError(t.key("secret"), "must decode to at least 16 bytes")
    t.done()
    return TsigKeyConfig(name=_domain(t.key(""), name), algorithm=algorithm, secret=secret)


def _dns(t: _Table | None) -> DnsConfig:
    if t is None:
        return DnsConfig(enabled=False)
    port = t.int_("port", 53, lo=0, hi=65535)
    keys = {k.name: k for k in (_tsig_key(name, kt) for name, kt in t.named_tables("tsig"))}
    secondaries = []
    for st in t.tables("secondaries"):
        key = st.str_("key", None)
        if key is not None and key.rstrip(".").lower() not in keys:
            raise ConfigError(st.key("key"), f"no [dns.tsig.{key}] key is defined")
        secondaries.append(
            SecondaryConfig(
                address=_endpoint(st.key("address"), st.str_("address"), 53),
                key=None if key is None else key.rstrip(".").lower(),
            )
        )
        st.done()
    ns_name = t.str_("ns_name", "ns")
    cfg = DnsConfig(
        enabled=t.bool_("enabled", True),
        listen=t.list_("listen", lambda k, v: _endpoint(k, v, port)),
        port=port,
        ttl=t.int_("ttl", 300, lo=0, hi=2**31 - 1),
        ns_name=_domain(t.key("ns_name"), ns_name),
        ns_address=t.ip_("ns_address", None),
        forwarders=t.list_("forwarders", lambda k, v: _endpoint(k, v, 53)),
        forward_timeout=t.float_("forward_timeout", 2.0, lo=0.05, hi=60),
        recursion_from=t.list_("recursion_from", _network),
        tsig_keys=keys,
        secondaries=tuple(secondaries),
        allow_transfer=t.list_("allow_transfer", _network),
        tcp_max_connections=t.int_("tcp_max_connections", 128, lo=1, hi=100_000),
        tcp_idle_timeout=t.float_("tcp_idle_timeout", 10.0, lo=0.1, hi=3600),
        cache_size=t.int_("cache_size", 10_000, lo=0, hi=10_000_000),
        journal_size=t.int_("journal_size", 100, lo=0, hi=100_000),
        edns_udp_size=t.int_("edns_udp_size", 1232, lo=512, hi=65535),
    )
    t.done()
    return cfg


# --- sync ---


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncConfig:
    central_url: str
    """Base URL of the central collector (``https://central.example:8443``)."""
    site_key: Path
    """This site's Ed25519 private key (PEM); central holds its public key."""
    central_public_key: Path
    """Central's Ed25519 public key (PEM): what central sends down must carry its signature."""
    ca_file: Path | None = None
    """CA (or self-signed certificate) that central's TLS certificate must chain to."""
    insecure_http: bool = False
    """Allow a plain ``http://`` central_url (labs only)."""
    batch_max_entries: int = 500
    batch_max_bytes: int = 1_000_000
    outbox_soft_limit: int = 100_000
    """Past this many unsent entries, entries for the same object coalesce to the newest."""
    outbox_hard_limit: int = 1_000_000
    """Past this many, a new epoch starts and central is brought in line by a snapshot."""
    history_keep: int = 100_000
    """Acknowledged change-log entries kept (for ``ddi changes list``); older ones are deleted
    once central has them, so the log stays bounded."""
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    poll_interval: float = 5.0
    """Seconds between polls of central's down log while idle."""
    timeout: float = 30.0
    """Seconds one HTTP exchange with central may take."""


def _sync(t: _Table | None) -> SyncConfig | None:
    if t is None:
        return None
    url = t.str_("central_url")
    insecure = t.bool_("insecure_http", False)
    if url.startswith("http://") and not insecure:
        raise ConfigError(t.key("central_url"), "plain http:// needs insecure_http = true")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(t.key("central_url"), "must be an https:// URL")
    cfg = SyncConfig(
        central_url=url.rstrip("/"),
        site_key=t.path_("site_key"),
        central_public_key=t.path_("central_public_key"),
        ca_file=t.path_("ca_file", None),
        insecure_http=insecure,
        batch_max_entries=t.int_("batch_max_entries", 500, lo=1, hi=100_000),
        batch_max_bytes=t.int_("batch_max_bytes", 1_000_000, lo=1024, hi=100_000_000),
        outbox_soft_limit=t.int_("outbox_soft_limit", 100_000, lo=1),
        outbox_hard_limit=t.int_("outbox_hard_limit", 1_000_000, lo=1),
        history_keep=t.int_("history_keep", 100_000, lo=0),
        backoff_base=t.float_("backoff_base", 1.0, lo=0.01, hi=3600),
        backoff_cap=t.float_("backoff_cap", 300.0, lo=0.01, hi=86400),
        poll_interval=t.float_("poll_interval", 5.0, lo=0.01, hi=3600),
        timeout=t.float_("timeout", 30.0, lo=0.1, hi=3600),
    )
    if cfg.outbox_hard_limit < cfg.outbox_soft_limit:
        raise ConfigError(t.key("outbox_hard_limit"), "must be at least outbox_soft_limit")
    t.done()
    return cfg


# --- the whole file ---


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    path: Path
    site: SiteConfig
    api: ApiConfig
    subnets: tuple[Subnet, ...]
    dhcp: DhcpConfig
    boot: BootConfig
    dns: DnsConfig
    sync: SyncConfig | None


def parse_config(data: Mapping[str, Any], *, path: Path) -> Config:
    """Validate a parsed TOML document. Raises ConfigError naming the first bad key."""
    base = path.parent
    top = _Table(data, "", base)
    site_table = top.table("site", required=True)
    assert site_table is not None
    site = _site(site_table)
    subnets = _subnets(top.tables("subnets"), site)
    boot = _boot(top.table("boot"), base)
    for i, s in enumerate(subnets):
        if s.boot is not None and s.boot not in boot.profiles:
            raise ConfigError(f"subnets[{i}].boot", f"no [boot.profiles.{s.boot}] is defined")
    config = Config(
        path=path,
        site=site,
        api=_api(top.table("api")),
        subnets=subnets,
        dhcp=_dhcp(top.table("dhcp")),
        boot=boot,
        dns=_dns(top.table("dns")),
        sync=_sync(top.table("sync")),
    )
    top.done()
    return config


def load_config(path: Path) -> Config:
    """Read and validate a TOML configuration file.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or a key is invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, path=path.resolve())

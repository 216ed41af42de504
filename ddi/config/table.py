"""Reading a TOML table: typed getters that name the dotted key on error, fields read from their
declaration, and the value checks the sections share.

A section's dataclass is the one place a setting is declared: its type says how it is read, its
default (``= 67``) is what an absent key means, and ``setting(67, lo=1, hi=65535)`` gives its
bounds too. ``Table.read`` builds the dataclass from that; a section's parser only names the
fields that need more than their type (cross-field checks, a port taken from another key).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, ClassVar, Protocol, TypeVar, get_args, get_type_hints

from ddi.errors import ConfigError
from ddi.numbers import decimal

T = TypeVar("T")
_REQUIRED: Any = object()


class _Dataclass(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]


D = TypeVar("D", bound=_Dataclass)


def setting(default: Any, *, lo: float | None = None, hi: float | None = None) -> Any:
    """A config field's default and its bounds (inclusive), which the parser enforces."""
    return dataclasses.field(default=default, metadata={"lo": lo, "hi": hi})


def file_default(path: str) -> dict[str, str]:
    """Metadata for a path field the dataclass requires but a file may leave out: ``path``,
    relative to the file."""
    return {"file_default": path}


@dataclasses.dataclass(frozen=True, slots=True)
class Later:
    """A value given to ``Table.read`` that is read in its field's turn, so that of two bad
    keys the one declared first is the one reported."""

    read: Callable[[], Any]


class Table:
    """A TOML table being read: typed getters that name the dotted key on error, and a final
    check that no key was left unread (an unknown or misspelt key)."""

    def __init__(self, data: Mapping[str, Any], path: str, base: Path) -> None:
        self._data = data
        self._path = path
        self._base = base
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def names(self) -> list[str]:
        """The keys present, for tables keyed by name (``[boot.profiles.X.arch]``)."""
        return list(self._data)

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
            raise ConfigError(self.key(name), f"must be {what}, not {toml_type(value)}")
        return value

    def raw(self, name: str, default: Any = _REQUIRED) -> Any:
        """The key's TOML value as it is, for a value whose type another key decides (an
        option's ``value``, read by its definition)."""
        return self._get(name, default)

    def str_(self, name: str, default: Any = _REQUIRED) -> Any:
        value = self._typed(name, default, (str,), "a string")
        if isinstance(value, str) and not value.strip():
            raise ConfigError(self.key(name), "must not be empty")
        return value

    def bool_(self, name: str, default: Any = _REQUIRED) -> Any:
        return self._typed(name, default, (bool,), "true or false")

    def int_(
        self,
        name: str,
        default: Any = _REQUIRED,
        *,
        lo: float | None = None,
        hi: float | None = None,
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
        return value if value is None or value is default else ipv4(self.key(name), value)

    def network_(self, name: str, default: Any = _REQUIRED) -> Any:
        value = self.str_(name, default)
        return value if value is None or value is default else network(self.key(name), value)

    def ip6_(self, name: str, default: Any = _REQUIRED) -> Any:
        value = self.str_(name, default)
        return value if value is None or value is default else ipv6(self.key(name), value)

    def network6_(self, name: str, default: Any = _REQUIRED) -> Any:
        value = self.str_(name, default)
        return value if value is None or value is default else network6(self.key(name), value)

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
            raise ConfigError(self.key(name), f"must be an array, not {toml_type(value)}")
        return tuple(item(f"{self.key(name)}[{i}]", v) for i, v in enumerate(value))

    def one_or_list_(
        self, name: str, item: Callable[[str, Any], T], default: tuple[T, ...]
    ) -> tuple[T, ...]:
        """An array, or one value standing for an array of one (``"::"`` or ``["::"]``)."""
        if name not in self._data:
            self._read.add(name)
            return default
        value = self._get(name, default)
        if isinstance(value, list):
            return tuple(item(f"{self.key(name)}[{i}]", v) for i, v in enumerate(value))
        return (item(self.key(name), value),)

    def table(self, name: str, *, required: bool = False) -> Table | None:
        value = self._get(name, _REQUIRED if required else None)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ConfigError(self.key(name), f"must be a table, not {toml_type(value)}")
        return Table(value, self.key(name), self._base)

    def tables(self, name: str) -> list[Table]:
        value = self._get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(self.key(name), "must be an array of tables ([[...]])")
        return [Table(v, f"{self.key(name)}[{i}]", self._base) for i, v in enumerate(value)]

    def named_tables(self, name: str) -> list[tuple[str, Table]]:
        """``[name.X]`` sections: a table of tables keyed by name."""
        outer = self.table(name)
        if outer is None:
            return []
        result = []
        for key in outer.names():
            inner = outer.table(key, required=True)
            assert inner is not None
            result.append((key, inner))
        return result

    def field(self, cls: type[_Dataclass], name: str) -> Any:
        """The key ``name`` read as ``cls`` declares its field: by type, default and bounds."""
        declared = cls.__dataclass_fields__[name]
        default = declared.default
        if declared.default_factory is not dataclasses.MISSING:
            default = declared.default_factory()
        elif default is dataclasses.MISSING:
            in_file = declared.metadata.get("file_default")
            default = _REQUIRED if in_file is None else in_file
        reader = _READERS.get(_field_types(cls)[name])
        if reader is None:
            raise TypeError(f"{cls.__name__}.{name}: no reader for its type; give it to read()")
        return reader(self, name, default, declared.metadata)

    def read(self, cls: type[D], **given: Any) -> D:
        """``cls`` with the fields in ``given`` as they are (a ``Later`` read in its turn)
        and every other one read by ``field``, in declaration order."""
        values = {}
        for declared in dataclasses.fields(cls):
            value = given.get(declared.name, _REQUIRED)
            if isinstance(value, Later):
                values[declared.name] = value.read()
            elif value is not _REQUIRED:
                values[declared.name] = value
            elif declared.init:
                values[declared.name] = self.field(cls, declared.name)
        return cls(**values)

    def done(self) -> None:
        for name in self._data:
            if name not in self._read:
                close = difflib.get_close_matches(name, self._read, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(self.key(name), f"unknown key{hint}")


@functools.cache
def _field_types(cls: type[_Dataclass]) -> dict[str, Any]:
    """Each field's type with ``| None`` taken off (an optional field defaults to None)."""
    types = {}
    for name, hint in get_type_hints(cls).items():
        if isinstance(hint, UnionType) and NoneType in get_args(hint):
            (hint,) = (a for a in get_args(hint) if a is not NoneType)
        types[name] = hint
    return types


_Reader = Callable[[Table, str, Any, Mapping[str, Any]], Any]
_READERS: dict[Any, _Reader] = {
    bool: lambda t, name, default, m: t.bool_(name, default),
    int: lambda t, name, default, m: t.int_(name, default, lo=m.get("lo"), hi=m.get("hi")),
    float: lambda t, name, default, m: t.float_(name, default, lo=m.get("lo"), hi=m.get("hi")),
    str: lambda t, name, default, m: t.str_(name, default),
    IPv4Address: lambda t, name, default, m: t.ip_(name, default),
    IPv4Network: lambda t, name, default, m: t.network_(name, default),
    IPv6Address: lambda t, name, default, m: t.ip6_(name, default),
    IPv6Network: lambda t, name, default, m: t.network6_(name, default),
    Path: lambda t, name, default, m: t.path_(name, default),
    tuple[str, ...]: lambda t, name, default, m: t.list_(name, str_item, default),
    tuple[IPv4Address, ...]: lambda t, name, default, m: t.list_(name, ipv4, default),
    tuple[IPv4Network, ...]: lambda t, name, default, m: t.list_(name, network, default),
    tuple[IPv6Address, ...]: lambda t, name, default, m: t.list_(name, ipv6, default),
}


def toml_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _check_range(key: str, value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        raise ConfigError(key, f"must be at least {lo}, not {value}")
    if hi is not None and value > hi:
        raise ConfigError(key, f"must be at most {hi}, not {value}")


def ipv4(key: str, value: Any) -> IPv4Address:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be an IPv4 address string, not {toml_type(value)}")
    try:
        return IPv4Address(value)
    except ValueError:
        raise ConfigError(key, f"{value!r} is not an IPv4 address") from None


def network(key: str, value: Any) -> IPv4Network:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a CIDR string, not {toml_type(value)}")
    try:
        return IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ConfigError(key, f"{value!r} is not an IPv4 network in CIDR form: {exc}") from None


def ipv6(key: str, value: Any) -> IPv6Address:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be an IPv6 address string, not {toml_type(value)}")
    try:
        return IPv6Address(value)
    except ValueError:
        raise ConfigError(key, f"{value!r} is not an IPv6 address") from None


def network6(key: str, value: Any) -> IPv6Network:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a CIDR string, not {toml_type(value)}")
    try:
        return IPv6Network(value, strict=True)
    except ValueError as exc:
        raise ConfigError(key, f"{value!r} is not an IPv6 network in CIDR form: {exc}") from None


def str_item(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "must be a non-empty string")
    return value


def endpoint(key: str, value: Any, default_port: int) -> tuple[str, int]:
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
    port = decimal(text, max_digits=5)
    if port is None or port > 65535:
        raise ConfigError(key, f"{text!r} is not a port number (0-65535)")
    return port


def label(key: str, value: str) -> str:
    ok = value.replace("-", "").replace("_", "").isalnum() and len(value) <= 63
    if not ok or value.startswith("-"):
        raise ConfigError(key, f"{value!r} must be letters, digits, '-' or '_'")
    return value


def domain(key: str, value: str) -> str:
    name = value.rstrip(".").lower()
    labels = name.split(".")
    for part in labels:
        ok = 0 < len(part) <= 63 and part.replace("-", "").isalnum()
        if not ok or part.startswith("-") or part.endswith("-"):
            raise ConfigError(key, f"{value!r} is not a valid domain name")
    if len(name) > 253:
        raise ConfigError(key, "domain name longer than 253 characters")
    return name

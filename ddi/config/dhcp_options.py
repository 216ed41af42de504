"""``[[dhcp.option_defs]]``, ``[[dhcp.options]]`` (and ``[[subnets.options]]``, ``options`` of a
class), ``[[dhcp.classes]]`` and ``[[dhcp.shared_networks]]``: option definitions, option values
encoded at load, client classes and shared networks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ddi.config.table import Table, ipv4, label, str_item
from ddi.dhcp.classes import ClassMatch, ClientClass
from ddi.dhcp.option_defs import (
    MAX_DEFS,
    OptionDef,
    OptionDefs,
    OptionError,
    OptionType,
    OptionValue,
    check_definable,
    encode_sub_options,
    make_value,
    parse_type,
)
from ddi.dhcp.shared_networks import SharedNetwork
from ddi.errors import ConfigError
from ddi.ipam.models import Subnet

MAX_CLASSES = 256


def _option_def(t: Table) -> OptionDef:
    name = t.str_("name")
    code = t.int_("code", lo=1, hi=254)
    try:
        check_definable(code)
    except OptionError as exc:
        raise ConfigError(t.key("code"), f"{name}: {exc}") from None
    type_text = t.str_("type")
    try:
        type_, array = parse_type(type_text)
    except OptionError as exc:
        raise ConfigError(t.key("type"), str(exc)) from None
    array = t.bool_("array", array)
    record: tuple[OptionType, ...] = ()
    if type_ is OptionType.RECORD:
        fields = t.list_("record_types", str_item, ())
        if not fields:
            raise ConfigError(t.key("record_types"), "a record needs its field types")
        for i, text in enumerate(fields):
            try:
                field_type, field_array = parse_type(text)
            except OptionError as exc:
                raise ConfigError(f"{t.key('record_types')}[{i}]", str(exc)) from None
            if field_array or field_type in (OptionType.RECORD, OptionType.FQDN_LIST):
                raise ConfigError(f"{t.key('record_types')}[{i}]", f"{text} cannot be a field")
            record += (field_type,)
    t.done()
    return OptionDef(name=name, code=code, type=type_, array=array, record_types=record)


def parse_option_defs(t: Table | None) -> tuple[tuple[OptionDef, ...], OptionDefs]:
    """The configured definitions, and every definition in force (the standard ones too)."""
    if t is None:
        return (), OptionDefs()
    tables = t.tables("option_defs")
    if len(tables) > MAX_DEFS:
        raise ConfigError(t.key("option_defs"), f"more than {MAX_DEFS} definitions")
    defs = tuple(_option_def(d) for d in tables)
    seen: dict[object, int] = {}
    for i, d in enumerate(defs):
        for key in (("code", d.code), ("name", d.name)):
            if key in seen:
                raise ConfigError(
                    f"{t.key('option_defs')}[{i}].{key[0]}",
                    f"{key[1]!r} is also option_defs[{seen[key]}]",
                )
            seen[key] = i
    try:
        return defs, OptionDefs(defs)
    except OptionError as exc:
        raise ConfigError(t.key("option_defs"), str(exc)) from None


def parse_option_values(tables: Sequence[Table], defs: OptionDefs) -> tuple[OptionValue, ...]:
    """``[[...options]]`` tables: ``name`` (or ``code``), ``value``, ``always_send``."""
    out: list[OptionValue] = []
    codes: dict[int, str] = {}
    for t in tables:
        key: str | int
        if "code" in t.names():
            key = t.int_("code", lo=1, hi=254)
            where = t.key("code")
        else:
            key = t.str_("name")
            where = t.key("name")
        try:
            definition = defs.lookup(key)
        except OptionError as exc:
            raise ConfigError(where, f"option {key}: {exc}") from None
        label_ = f"option {definition.name} ({definition.code})"
        always = t.bool_("always_send", False)
        if "sub_options" in t.names():
            # Vendor-specific information (43, RFC 2132 §8.4) given as typed sub-options.
            if definition.type is not OptionType.BINARY:
                raise ConfigError(t.key("sub_options"), f"{label_} is not binary")
            data = _sub_options(t.tables("sub_options"), label_, t.key("sub_options"))
            option = OptionValue(
                code=definition.code, data=data, always_send=always, name=definition.name
            )
            t.done()
        else:
            value = t.raw("value")
            t.done()
            try:
                option = make_value(defs, definition.code, value, always_send=always)
            except OptionError as exc:
                raise ConfigError(t.key("value"), f"{label_}: {exc}") from None
        if option.code in codes:
            raise ConfigError(where, f"option {option.code} is also given at {codes[option.code]}")
        codes[option.code] = where
        out.append(option)
    return tuple(out)


def _sub_options(tables: Sequence[Table], label_: str, where: str) -> bytes:
    items: list[tuple[int, OptionType, bool, object]] = []
    for sub in tables:
        code = sub.int_("code", lo=1, hi=254)
        try:
            type_, array = parse_type(sub.str_("type"))
        except OptionError as exc:
            raise ConfigError(sub.key("type"), str(exc)) from None
        if type_ is OptionType.RECORD:
            raise ConfigError(sub.key("type"), "a sub-option cannot be a record")
        items.append((code, type_, sub.bool_("array", array), sub.raw("value")))
        try:
            encode_sub_options(items[-1:])
        except OptionError as exc:
            raise ConfigError(sub.key("value"), f"{label_} sub-option {code}: {exc}") from None
        sub.done()
    if not items:
        raise ConfigError(where, f"{label_}: no sub-options")
    try:
        return encode_sub_options(items)
    except OptionError as exc:
        raise ConfigError(where, f"{label_}: {exc}") from None


def _hex_or_text(key: str, value: object) -> bytes:
    """A match value: text as its ASCII bytes, or ``0x...`` hex for binary ones."""
    text = str_item(key, value)
    if text.startswith("0x"):
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            raise ConfigError(key, f"{text[:40]!r} is not hex") from None
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise ConfigError(key, "must be ASCII text or 0x hex") from None


def _mac_prefix(key: str, value: object) -> bytes:
    text = str_item(key, value).replace("-", ":").lower()
    parts = text.split(":")
    if not 1 <= len(parts) <= 16 or not all(
        len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts
    ):
        raise ConfigError(key, f"{text[:60]!r} is not a MAC prefix (aa:bb:cc, an OUI or longer)")
    return bytes.fromhex("".join(parts))


_MATCH_KEYS = ("vendor_class", "vendor_class_prefix", "user_class", "mac_prefix", "circuit_id")


def _class(t: Table, defs: OptionDefs, profiles: Sequence[str]) -> ClientClass:
    name = label(t.key("name"), t.str_("name"))
    m = t.table("match", required=True)
    assert m is not None
    found = {}
    for key in _MATCH_KEYS:
        raw = m.raw(key, None)  # each read, so a misspelt key gets its hint
        if raw is not None:
            found[key] = (_mac_prefix if key == "mac_prefix" else _hex_or_text)(m.key(key), raw)
    m.done()
    if not found:
        raise ConfigError(t.key("match"), f"name at least one of {', '.join(_MATCH_KEYS)}")
    match = ClassMatch(**found)
    boot = t.str_("boot", None)
    if boot is not None and boot not in profiles:
        raise ConfigError(t.key("boot"), f"no [boot.profiles.{boot}] is defined")
    options = parse_option_values(t.tables("options"), defs)
    t.done()
    return ClientClass(name=name, match=match, options=options, boot=boot)


def parse_classes(
    t: Table | None, defs: OptionDefs, profiles: Sequence[str]
) -> tuple[ClientClass, ...]:
    if t is None:
        return ()
    tables = t.tables("classes")
    if len(tables) > MAX_CLASSES:
        raise ConfigError(t.key("classes"), f"more than {MAX_CLASSES} classes")
    classes = tuple(_class(c, defs, profiles) for c in tables)
    seen: dict[str, int] = {}
    for i, c in enumerate(classes):
        if c.name in seen:
            raise ConfigError(
                f"{t.key('classes')}[{i}].name", f"{c.name!r} is also classes[{seen[c.name]}]"
            )
        seen[c.name] = i
    return classes


def check_pool_classes(subnets: Sequence[Subnet], classes: Sequence[ClientClass]) -> None:
    names = {c.name for c in classes}
    for i, s in enumerate(subnets):
        for j, p in enumerate(s.pools):
            if p.client_class is not None and p.client_class not in names:
                raise ConfigError(
                    f"subnets[{i}].pools[{j}].client_class",
                    f"no [[dhcp.classes]] is named {p.client_class!r}",
                )


def parse_shared_networks(
    t: Table | None, subnets: tuple[Subnet, ...]
) -> tuple[tuple[SharedNetwork, ...], tuple[Subnet, ...]]:
    """The shared networks, and the subnets with each member's link (interface, relays) set
    from its network's."""
    if t is None:
        return (), subnets
    by_name = {s.name: i for i, s in enumerate(subnets)}
    out = list(subnets)
    owner: dict[str, str] = {}
    networks: list[SharedNetwork] = []
    for n in t.tables("shared_networks"):
        name = label(n.key("name"), n.str_("name"))
        interface = n.str_("interface", None)
        relays = n.list_("relay_agents", ipv4, ())
        members = n.list_("subnets", str_item, None)
        n.done()
        if not members or len(members) < 2:
            raise ConfigError(n.key("subnets"), "a shared network needs two subnets or more")
        if interface is None and not relays:
            raise ConfigError(n.key("interface"), "give the link: interface or relay_agents")
        if interface is not None and relays:
            raise ConfigError(n.key("relay_agents"), "give interface or relay_agents, not both")
        if any(network.name == name for network in networks):
            raise ConfigError(n.key("name"), f"{name!r} names two shared networks")
        for k, member in enumerate(members):
            where = f"{n.key('subnets')}[{k}]"
            if member not in by_name:
                raise ConfigError(where, f"no [[subnets]] is named {member!r}")
            if member in owner:
                raise ConfigError(
                    where, f"{member!r} is already in shared network {owner[member]!r}"
                )
            owner[member] = name
            i = by_name[member]
            s = out[i]
            if interface is not None:
                if s.interface is not None and s.interface != interface:
                    raise ConfigError(
                        where,
                        f"{member!r} is on interface {s.interface}, the network on {interface}",
                    )
                s = replace(s, interface=interface)
            elif s.interface is not None:
                raise ConfigError(
                    where, f"{member!r} is on interface {s.interface}; the network is relayed"
                )
            else:
                s = replace(s, relay_agents=tuple(dict.fromkeys((*s.relay_agents, *relays))))
            out[i] = s
        networks.append(
            SharedNetwork(name=name, subnets=members, interface=interface, relay_agents=relays)
        )
    return tuple(networks), tuple(out)

"""``ddi reserve``: reservations (host objects) — add, list, show, set, rm."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from ddi.cli.client import api, quote_key, write_body, write_options
from ddi.cli.output import Column, cell, json_option, print_fields, print_json, print_table
from ddi.ipam.vendor import vendor_label

F = TypeVar("F", bound=Callable[..., Any])

HOST_COLUMNS: list[Column] = [
    "hostname",
    "ip",
    "mac",
    ("client_id", "CLIENT-ID"),
    ("circuit_id", "CIRCUIT-ID"),
    "boot",
    "owner",
    "version",
    # IPv6 last: the columns scripts read before IPv6 keep their places.
    "ip6",
    "duid",
]

HOST_FIELDS = (
    "id",
    "hostname",
    "ip",
    "ip6",
    "mac",
    "client_id",
    "circuit_id",
    "duid",
    "boot",
    "boot_file",
    "boot_script",
    "owner",
    "version",
)

CLEARABLE = (
    "ip", "ip6", "mac", "client_id", "circuit_id", "duid", "boot", "boot_file", "boot_script",
)  # fmt: skip

DHCP_OPTIONS = {
    "lease_time": "lease_time",
    "router": "gateway",
    "dns_server": "dns_servers",
    "domain": "domain",
    "mtu": "mtu",
    "route": "routes",
    "ntp_server": "ntp_servers",
    "option": "options",
}
"""Per-host DHCP option flags (``--lease-time``, ...) and the key each sets in the host's
``dhcp`` image; ``--clear dhcp`` clears them all."""

DHCP_ROWS = (
    ("lease_time", "lease_time"),
    ("router", "gateway"),
    ("dns_servers", "dns_servers"),
    ("domain", "domain"),
    ("mtu", "mtu"),
    ("routes", "routes"),
    ("options", "options"),
    ("ntp_servers", "ntp_servers"),
)
"""``reserve show`` rows for the host's DHCP options: label, image key."""


def _host_options(*, required: bool) -> Callable[[F], F]:
    def decorate(f: F) -> F:
        options = [
            click.option("--mac", metavar="MAC", help="Client hardware address."),
            click.option(
                "--client-id",
                metavar="ID",
                callback=_client_id,
                help="DHCP client identifier (option 61): hex bytes (01:52:54:00:aa:bb:cc,"
                " 0152540aabbcc1, 0x0152...) or quoted text ('\"web1\"').",
            ),
            click.option("--circuit-id", metavar="ID", help="Relay agent circuit-id (option 82)."),
            click.option("--duid", metavar="DUID", help="DHCPv6 client DUID (hex bytes)."),
            click.option("--ip", metavar="IP", help="Reserved IPv4 address."),
            click.option("--ip6", metavar="IP6", help="Reserved IPv6 address."),
            click.option("--hostname", metavar="NAME", required=required, help="One DNS label."),
            click.option("--boot", metavar="PROFILE", help="Boot profile name."),
            click.option("--boot-file", metavar="FILE", help="Boot file overriding the profile."),
            click.option(
                "--boot-script", metavar="URL", help="iPXE script URL overriding the profile."
            ),
        ]
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


_HEX_ID = re.compile(
    r"^(0x)?([0-9a-f]{2})+$|^[0-9a-f]{1,2}([:\-. ])[0-9a-f]{1,2}(\3[0-9a-f]{1,2})*$",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"""^(["']).+\1$""", re.DOTALL)


def _client_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A client-id is hex bytes (separated, bare as Kea and dnsmasq export it, or 0x...) or
    quoted text: bare text would be ambiguous (``cafe`` is two bytes, not four letters)."""
    if value is None or value == "" or _HEX_ID.match(value.strip()) or _QUOTED.match(value):
        return value
    raise click.BadParameter(
        f"{value!r} is neither hex bytes (01:52:54:00:aa:bb:cc, 0152540aabbcc1, 0x0152...)"
        " nor quoted text ('\"web1\"')"
    )


def _dhcp_options(f: F) -> F:
    options = [
        click.option(
            "--lease-time", type=int, metavar="SECONDS", help="Lease time (T1, T2 follow)."
        ),
        click.option("--router", metavar="IP", help="Router (option 3) for this host."),
        click.option("--dns-server", multiple=True, metavar="IP", help="DNS server (repeatable)."),
        click.option("--domain", metavar="NAME", help="Domain name (option 15)."),
        click.option("--mtu", type=int, metavar="N", help="Interface MTU (option 26)."),
        click.option(
            "--route",
            multiple=True,
            metavar="DEST/LEN=GATEWAY",
            help="Classless static route, option 121 (repeatable).",
        ),
        click.option("--ntp-server", multiple=True, metavar="IP", help="NTP server (repeatable)."),
        click.option(
            "--option",
            multiple=True,
            metavar="NAME=VALUE",
            help="An option by name or code, as [[dhcp.option_defs]] and the standard"
            " definitions type it: --option tftp-server-address=198.18.0.5; a list is"
            " comma-separated (repeatable; replaces the host's options).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _route(text: str) -> dict[str, str]:
    destination, sep, gateway = text.partition("=")
    if not sep or not destination.strip() or not gateway.strip():
        raise click.BadParameter(f"{text!r} is not DEST/LEN=GATEWAY", param_hint="--route")
    return {"destination": destination.strip(), "gateway": gateway.strip()}


def _option(text: str) -> dict[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text[:60]!r} is not NAME=VALUE", param_hint="--option")
    return {"name": name.strip(), "value": value.strip()}


def _dhcp_given(given: dict[str, Any]) -> dict[str, Any]:
    """Pop the DHCP option flags out of ``given``; return the ``dhcp`` image keys they set."""
    out: dict[str, Any] = {}
    for flag, key in DHCP_OPTIONS.items():
        value = given.pop(flag, None)
        if value is None or value == ():
            continue
        if flag == "route":
            value = [_route(r) for r in value]
        elif flag == "option":
            value = [_option(o) for o in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def _host_rows(host: Mapping[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [(key, host.get(key)) for key in HOST_FIELDS]
    rows.insert(HOST_FIELDS.index("mac") + 1, ("vendor", vendor_label(host.get("mac"))))
    options = host.get("dhcp") or {}
    for label, key in DHCP_ROWS:
        value = options.get(key)
        if key == "routes" and value:
            value = [f"{r['destination']}={r['gateway']}" for r in value]
        elif key == "options" and value:
            value = [f"{o.get('name') or o['code']}=0x{o['data']}" for o in value]
        rows.append((label, "(subnet)" if value is None else value))
    return rows


def _show_change(result: Mapping[str, Any], verb: str, dry_run: bool) -> None:
    host = result.get("host") or result["change"].get("image", {})
    seq = result["change"].get("seq")
    addresses = " ".join(str(host[k]) for k in ("ip", "ip6") if host.get(k))
    name = f"{host.get('hostname')} {addresses}"
    if dry_run:
        click.echo(f"dry run: would {verb} host {name}; nothing written")
    else:
        click.echo(f"{verb} host {name} (change seq {seq})")
    before = result.get("before")
    if before is None:
        print_fields(_host_rows(host))
        return
    print_fields(
        (key, new) if old == new else (key, f"{cell(old)} -> {cell(new)}")
        for (key, old), (_, new) in zip(_host_rows(before), _host_rows(host), strict=True)
    )


@click.group()
def reserve() -> None:
    """Reservations: a MAC, client-id, circuit-id or DUID bound to an IPv4 address, an IPv6
    address or both, a hostname and a boot profile."""


@reserve.command("add")
@_host_options(required=True)
@_dhcp_options
@write_options
@json_option
def add(
    mac: str | None,
    client_id: str | None,
    circuit_id: str | None,
    duid: str | None,
    ip: str | None,
    ip6: str | None,
    hostname: str,
    boot: str | None,
    boot_file: str | None,
    boot_script: str | None,
    reason: str | None,
    dry_run: bool,
    as_json: bool,
    **dhcp_flags: Any,
) -> None:
    """Reserve IP, IP6 (or both: one dual-stack host) and HOSTNAME for the client with MAC,
    CLIENT-ID, CIRCUIT-ID or DUID (DHCPv6 matches by DUID, then by MAC).

    The DHCP option flags give this host its own values; without them it gets its subnet's.
    """
    if not (mac or client_id or circuit_id or duid):
        raise click.UsageError("give at least one of --mac, --client-id, --circuit-id, --duid")
    if not (ip or ip6):
        raise click.UsageError("give --ip, --ip6 or both")
    fields: dict[str, Any] = {
        "mac": mac,
        "client_id": client_id,
        "circuit_id": circuit_id,
        "duid": duid,
        "ip": ip,
        "ip6": ip6,
        "hostname": hostname,
        "boot": boot,
        "boot_file": boot_file,
        "boot_script": boot_script,
    }
    dhcp = _dhcp_given(dhcp_flags)
    if dhcp:
        fields["dhcp"] = dhcp
    result = api().post("/v1/hosts", write_body(reason, dry_run, **fields))
    if as_json:
        print_json(result)
    else:
        _show_change(result, "add" if dry_run else "added", dry_run)


@reserve.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List every reservation, by IP."""
    hosts = api().get("/v1/hosts")["hosts"]
    if as_json:
        print_json(hosts)
    else:
        print_table(hosts, HOST_COLUMNS)


@reserve.command("show")
@click.argument("key")
@json_option
def show(key: str, as_json: bool) -> None:
    """Show one reservation; KEY is its id, MAC, client-id, IP, IPv6 address, DUID or
    hostname."""
    host = api().get(f"/v1/hosts/{quote_key(key)}")["host"]
    if as_json:
        print_json(host)
    else:
        print_fields(_host_rows(host))


@reserve.command("set")
@click.argument("key")
@_host_options(required=False)
@_dhcp_options
@click.option(
    "--clear",
    "clear",
    multiple=True,
    type=click.Choice([c.replace("_", "-") for c in (*CLEARABLE, *DHCP_OPTIONS, "dhcp")]),
    help="Remove an optional field, return a DHCP option to the subnet's, or (dhcp) all of"
    " them (repeatable).",
)
@write_options
@json_option
def set_(
    key: str,
    clear: tuple[str, ...],
    reason: str | None,
    dry_run: bool,
    as_json: bool,
    **given: Any,
) -> None:
    """Change fields of the reservation KEY (id, MAC, client-id, IP, IPv6 address, DUID or
    hostname). ``--clear ip`` or ``--clear ip6`` leaves a dual-stack host single-stack."""
    dhcp: dict[str, Any] | None = _dhcp_given(given)
    fields: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    for name in clear:
        field = name.replace("-", "_")
        if field == "dhcp":
            if dhcp:
                raise click.UsageError("--clear dhcp and a DHCP option flag contradict each other")
            dhcp = None
        elif field in DHCP_OPTIONS:
            if dhcp is None or DHCP_OPTIONS[field] in dhcp:
                raise click.UsageError(f"--{name} and --clear {name} contradict each other")
            dhcp[DHCP_OPTIONS[field]] = None
        elif field in fields:
            raise click.UsageError(f"--{name} and --clear {name} contradict each other")
        else:
            fields[field] = None
    if dhcp is None or dhcp:
        fields["dhcp"] = dhcp
    if not fields:
        raise click.UsageError("nothing to change: give at least one field option or --clear")
    result = api().patch(f"/v1/hosts/{quote_key(key)}", write_body(reason, dry_run, fields=fields))
    if as_json:
        print_json(result)
    elif result.get("change") is None:
        click.echo(f"no change: {result['host']['hostname']} already has these values")
    else:
        _show_change(result, "change" if dry_run else "changed", dry_run)


@reserve.command("rm")
@click.argument("key")
@write_options
@json_option
def rm(key: str, reason: str | None, dry_run: bool, as_json: bool) -> None:
    """Remove the reservation KEY (id, MAC, client-id, IP or hostname)."""
    result = api().delete(f"/v1/hosts/{quote_key(key)}", write_body(reason, dry_run))
    if as_json:
        print_json(result)
    else:
        _show_change(result, "remove" if dry_run else "removed", dry_run)

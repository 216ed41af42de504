"""Netboot: ``GET /v1/boot/profiles``, ``GET /v1/boot/explain`` and (DHCPv6)
``GET /v1/boot/explain6``.

``explain`` runs the DHCP engine's own selection (``select_boot`` and ``boot_options``) for a
client described by MAC, architecture, user class and vendor class, against the running
config and reservations, and answers with the options that would be sent and the rule and
profile that chose them.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from aiohttp import web

from ddi.api.common import APP_KEY, BadRequest
from ddi.config import BOOT_ARCH_KEYS, Config
from ddi.dhcp.netboot import (
    BootChoice,
    BootRule,
    arch_name,
    boot_options,
    facts_from_options,
    profiles_from_config,
    request_options,
    select_boot,
)
from ddi.dhcp.options import OptionCode, option_code_from_int
from ddi.dhcp.server import interface_address
from ddi.dhcp6.netboot import (
    boot_facts6,
    boot_options6,
    boot_params_from_config,
    request_options6,
    select_boot6,
)
from ddi.dhcp6.options import mac_from_duid
from ddi.dhcp6.server import global_address
from ddi.ipam.models import Subnet
from ddi.numbers import decimal

routes = web.RouteTableDef()

_ARCH_KEY = {arch: key for key, arch in BOOT_ARCH_KEYS.items()}
TFTP_RULES = frozenset({BootRule.ARCH_FILE, BootRule.HOST_FILE})


@routes.get("/v1/boot/profiles")
async def list_profiles(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    config = site.config
    hosts = list(site.index.hosts())
    result = []
    for name, profile in sorted(profiles_from_config(config.boot).items()):
        result.append(
            {
                "name": name,
                "files": {
                    _ARCH_KEY.get(arch, str(arch)): file
                    for arch, file in sorted(profile.files.items())
                },
                "ipxe_script": profile.ipxe_script,
                "next_server": None if profile.next_server is None else str(profile.next_server),
                "base_url": profile.base_url,
                "subnets": [s.name for s in site.index.subnets() if s.boot == name],
                "hosts": sum(1 for h in hosts if h.boot == name),
            }
        )
    return web.json_response({"profiles": result})


def _server_address(config: Config, subnet: Subnet | None) -> IPv4Address | None:
    """The server address the DHCP engine would use for this client: ``dhcp.server_id``, else
    the address of the subnet's interface (a relayed subnet: that of the ingress interface,
    unknown here)."""
    if config.dhcp.server_id is not None:
        return config.dhcp.server_id
    if subnet is not None and subnet.interface is not None:
        return interface_address(subnet.interface)
    return None


def _choice_image(choice: BootChoice) -> dict[str, Any]:
    options = []
    pending_server = choice.rule in TFTP_RULES and choice.siaddr is None
    for code, value in boot_options(choice):
        if code == OptionCode.BOOTFILE_NAME and pending_server:
            # The engine fills siaddr and option 66 with its own address on the client's link.
            options.append({"code": 66, "name": "tftp_server_name", "value": "{server}"})
        known = option_code_from_int(code)
        options.append(
            {
                "code": int(code),
                "name": known.name.lower() if isinstance(known, OptionCode) else str(code),
                "value": value.decode("utf-8", "replace") if code != 43 else value.hex(" "),
            }
        )
    return {
        "rule": choice.rule.value,
        "profile": choice.profile,
        "profile_source": choice.profile_source,
        "arch": None if choice.arch is None else int(choice.arch),
        "arch_name": arch_name(choice.arch),
        "siaddr": str(choice.siaddr) if choice.siaddr else ("{server}" if pending_server else None),
        "file": choice.file_field.decode("utf-8", "replace"),
        "options": options,
        "problem": choice.problem,
    }


def _int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    number = decimal(value, max_digits=5)
    if number is None or number > 0xFFFF:
        raise BadRequest(f"{name} must be a number 0-65535", field=name)
    return number


@routes.get("/v1/boot/explain")
async def explain(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    query = request.query
    mac = (query.get("mac") or "").lower().replace("-", ":")
    if not mac:
        raise BadRequest("mac is required", field="mac")
    arch = _int(query.get("arch"), "arch")
    options = request_options(
        arch=arch,
        user_class=query.get("user_class") or None,
        vendor_class=query.get("vendor_class"),
    )
    facts = facts_from_options(mac, options)
    index = site.index
    host = index.host_by_mac(mac)
    subnet: Subnet | None = None
    subnet_name = query.get("subnet")
    if subnet_name:
        subnet = index.subnet(subnet_name)
        if subnet is None:
            raise BadRequest(f"no subnet {subnet_name!r}", field="subnet")
    else:
        ip = host.ip if host is not None else None
        if ip is None:
            lease = index.lease_by_client(mac, None)
            ip = None if lease is None else lease.ip
        subnet = next((s for s in index.subnets() if ip is not None and ip in s.cidr), None)
    server = _server_address(site.config, subnet)
    choice = select_boot(
        facts,
        profiles_from_config(site.config.boot),
        host=host,
        subnet=subnet,
        server=server,
        domain=site.config.site.domain,
    )
    return web.json_response(
        {
            "client": {
                "mac": mac,
                "arch": facts.arch if facts.arch is None else int(facts.arch),
                "vendor_class": facts.vendor_class,
                "is_pxe_client": facts.is_pxe_client,
                "is_http_client": facts.is_http_client,
                "is_ipxe": facts.is_ipxe,
            },
            "host": None if host is None else host.to_image(),
            "subnet": None if subnet is None else subnet.name,
            "server": None if server is None else str(server),
            **_choice_image(choice),
        }
    )


def _client6(value: str) -> tuple[str | None, str | None]:
    """(mac, duid) of ``--v6 CLIENT``: six octets are a MAC, more a DUID (hex, colons optional).

    Raises:
        BadRequest: not hex octets, or a length neither can be.
    """
    cleaned = value.strip().lower().replace("-", ":").replace(":", "")
    if not 12 <= len(cleaned) <= 260 or len(cleaned) % 2:
        raise BadRequest("v6 must be a MAC or a DUID in hex", field="v6")
    try:
        raw = bytes.fromhex(cleaned)
    except ValueError:
        raise BadRequest("v6 must be a MAC or a DUID in hex", field="v6") from None
    if len(raw) == 6:
        return raw.hex(":"), None
    return mac_from_duid(raw), raw.hex(":")


@routes.get("/v1/boot/explain6")
async def explain6(request: web.Request) -> web.Response:
    """What a DHCPv6 client (``client``: MAC or DUID) would be told to boot (RFC 5970)."""
    site = request.app[APP_KEY].site
    query = request.query
    mac, duid = _client6(query.get("client") or "")
    arch = _int(query.get("arch"), "arch")
    options = request_options6(
        arch=arch,
        user_class=query.get("user_class") or None,
        vendor_class=query.get("vendor_class"),
    )
    facts = boot_facts6(mac, options)
    index = site.index
    host = None if duid is None else index.host_by_duid(duid)
    if host is None and mac is not None:
        host = index.host_by_mac(mac)
    subnet6 = None
    subnet_name = query.get("subnet")
    if subnet_name:
        subnet6 = index.subnet6(subnet_name)
        if subnet6 is None:
            raise BadRequest(f"no IPv6 subnet {subnet_name!r}", field="subnet")
    elif host is not None and host.ip6 is not None:
        subnet6 = index.subnet6_for(host.ip6)
    elif len(index.subnets6()) == 1:
        subnet6 = index.subnets6()[0]
    server = None
    if subnet6 is not None and subnet6.interface is not None:
        server = global_address(subnet6.interface)
    choice = select_boot6(
        facts,
        profiles_from_config(site.config.boot),
        host=host,
        subnet=subnet6,
        server=server,
        domain=site.config.site.domain,
        params=boot_params_from_config(site.config.boot),
    )
    names = {59: "bootfile_url", 60: "bootfile_param", 16: "vendor_class"}
    return web.json_response(
        {
            "client": {
                "mac": mac,
                "duid": duid,
                "arch": facts.arch if facts.arch is None else int(facts.arch),
                "vendor_class": facts.vendor_class,
                "is_pxe_client": facts.is_pxe_client,
                "is_http_client": facts.is_http_client,
                "is_ipxe": facts.is_ipxe,
            },
            "host": None if host is None else host.to_image(),
            "subnet": None if subnet6 is None else subnet6.name,
            "server": None if server is None else str(server),
            "rule": choice.rule.value,
            "profile": choice.profile,
            "profile_source": choice.profile_source,
            "arch": None if choice.arch is None else int(choice.arch),
            "arch_name": arch_name(choice.arch),
            "url": choice.url,
            "params": list(choice.params) if choice.url is not None else [],
            "options": [
                {
                    "code": int(code),
                    "name": names.get(code, str(code)),
                    "value": _option_text6(code, value, choice.params),
                }
                for code, value in boot_options6(choice)
            ],
            "problem": choice.problem,
        }
    )


def _option_text6(code: int, value: bytes, params: tuple[str, ...]) -> str:
    """An explained DHCPv6 boot option as text: option 16's class data, option 60's
    parameters separated by spaces (each is length-prefixed on the wire), 59's URL."""
    if code == 16:
        return value[6:].decode("utf-8", "replace")
    if code == 60:
        return " ".join(params)
    return value.decode("utf-8", "replace")

"""Netboot selection: per-arch files, iPXE scripts, UEFI HTTP, precedence, and the options the
engine adds; facts derived from the captured PXE DISCOVERs."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from scapy.layers.inet import UDP
from scapy.utils import rdpcap

from ddi.boot.templates import render_template, template_fields
from ddi.dhcp.netboot import (
    PXE_VENDOR_OPTIONS,
    BootChoice,
    BootFacts,
    BootProfile,
    BootRule,
    boot_facts,
    boot_options,
    facts_from_options,
    select_boot,
)
from ddi.dhcp.options import ClientArch, MessageType, OptionCode
from ddi.dhcp.packet import decode_packet
from ddi.ipam.models import Host, Subnet
from tests.vectors import VECTORS

SERVER = IPv4Address("198.18.0.1")
MAC = "52:54:00:00:00:07"

PROFILE = BootProfile(
    name="rack",
    files={
        0: "undionly.kpxe",
        6: "ipxe-ia32.efi",
        7: "ipxe.efi",
        9: "ipxe.efi",
        11: "ipxe-arm64.efi",
        16: "x64/ipxe.efi",
        19: "http://boot.site.example/arm64/ipxe.efi",
    },
    ipxe_script="{base_url}/boot/{mac}.ipxe",
    base_url="http://{server}:8080",
)
PROFILES = {"rack": PROFILE, "other": BootProfile(name="other", files={0: "other.kpxe"})}
SUBNET = Subnet(name="lan", cidr=IPv4Network("198.18.0.0/24"), boot="rack")


def pxe(arch: int | None, *, ipxe: bool = False, vendor: str | None = None) -> BootFacts:
    options: dict[int, bytes] = {}
    if arch is not None:
        options[OptionCode.CLIENT_ARCH] = arch.to_bytes(2, "big")
        options[OptionCode.VENDOR_CLASS_IDENTIFIER] = (
            vendor or f"PXEClient:Arch:{arch:05d}:UNDI:003016"
        ).encode()
    elif vendor is not None:
        options[OptionCode.VENDOR_CLASS_IDENTIFIER] = vendor.encode()
    if ipxe:
        options[OptionCode.USER_CLASS] = b"iPXE"
    return facts_from_options(MAC, options)


def host(**kw: str | None) -> Host:
    return Host(id="1" * 32, ip=IPv4Address("198.18.0.10"), hostname="node1", mac=MAC, **kw)  # type: ignore[arg-type]


def choose(facts: BootFacts, h: Host | None = None, subnet: Subnet | None = SUBNET) -> BootChoice:
    return select_boot(facts, PROFILES, host=h, subnet=subnet, server=SERVER, domain="site.example")


# --- facts -----------------------------------------------------------------------------------


def _discover(name: str) -> bytes:
    for pkt in rdpcap(str(VECTORS / name)):
        if UDP in pkt and pkt[UDP].dport == 67:
            return bytes(pkt[UDP].payload)
    raise AssertionError(f"no DISCOVER in {name}")


@pytest.mark.parametrize(
    ("pcap", "arch", "vendor"),
    [
        ("pxe-ipxe-bios-dora-tftp.pcap", ClientArch.BIOS, "PXEClient:Arch:00000:UNDI:002001"),
        ("pxe-ipxe-uefi-x64-dora-tftp.pcap", ClientArch.EFI_BC, "PXEClient:Arch:00007:UNDI:003010"),
    ],
)
def test_facts_from_captured_ipxe_discover(pcap: str, arch: ClientArch, vendor: str) -> None:
    packet = decode_packet(_discover(pcap))
    assert packet.message_type is MessageType.DISCOVER
    facts = boot_facts(packet)
    assert facts.arch is arch
    assert facts.vendor_class == vendor
    assert facts.is_pxe_client
    assert facts.is_ipxe
    assert not facts.is_http_client
    assert facts.mac is not None
    assert facts.mac.startswith("52:54:00:00:00:0")


def test_captured_ipxe_discover_gets_the_script_url() -> None:
    packet = decode_packet(_discover("pxe-ipxe-uefi-x64-dora-tftp.pcap"))
    choice = choose(boot_facts(packet))
    assert choice.rule is BootRule.IPXE_SCRIPT
    assert choice.filename == f"http://198.18.0.1:8080/boot/{packet.mac}.ipxe"


def test_ipxe_via_option_175_only() -> None:
    facts = facts_from_options(MAC, {OptionCode.CLIENT_ARCH: b"\0\7", 175: b"\xb1\x05\x01"})
    assert facts.is_ipxe
    assert choose(facts).rule is BootRule.IPXE_SCRIPT


def test_ipxe_via_rfc3004_encoded_user_class() -> None:
    facts = facts_from_options(MAC, {OptionCode.USER_CLASS: b"\x04iPXE"})
    assert facts.is_ipxe


def test_malformed_option_93_counts_as_absent_and_vendor_class_arch_is_used() -> None:
    facts = facts_from_options(
        MAC,
        {
            OptionCode.CLIENT_ARCH: b"\0",
            OptionCode.VENDOR_CLASS_IDENTIFIER: b"PXEClient:Arch:00009",
        },
    )
    assert facts.arch is ClientArch.EFI_X86_64


def test_plain_dhcp_client_is_not_netboot() -> None:
    facts = facts_from_options(MAC, {OptionCode.VENDOR_CLASS_IDENTIFIER: b"udhcp 1.35.0"})
    assert not facts.netboots
    choice = choose(facts)
    assert choice.rule is BootRule.NOT_NETBOOT
    assert boot_options(choice) == ()


# --- per arch ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "filename"),
    [
        (0, "undionly.kpxe"),
        (6, "ipxe-ia32.efi"),
        (7, "ipxe.efi"),
        (9, "ipxe.efi"),
        (11, "ipxe-arm64.efi"),
    ],
)
def test_pxe_rom_gets_its_arch_file_from_tftp(arch: int, filename: str) -> None:
    choice = choose(pxe(arch))
    assert choice.rule is BootRule.ARCH_FILE
    assert choice.profile == "rack"
    assert choice.profile_source == "subnet"
    assert choice.siaddr == SERVER
    assert choice.file_field == filename.encode()
    assert boot_options(choice) == (
        (OptionCode.VENDOR_SPECIFIC, PXE_VENDOR_OPTIONS),
        (OptionCode.VENDOR_CLASS_IDENTIFIER, b"PXEClient"),
        (OptionCode.TFTP_SERVER_NAME, b"198.18.0.1"),
        (OptionCode.BOOTFILE_NAME, filename.encode()),
    )


@pytest.mark.parametrize(
    ("arch", "url"),
    [(16, "http://198.18.0.1:8080/x64/ipxe.efi"), (19, "http://boot.site.example/arm64/ipxe.efi")],
)
def test_uefi_http_client_gets_full_url_and_option_60(arch: int, url: str) -> None:
    facts = pxe(arch, vendor=f"HTTPClient:Arch:{arch:05d}:UNDI:003000")
    assert facts.is_http_client
    choice = choose(facts)
    assert choice.rule is BootRule.HTTP_URL
    assert choice.siaddr is None
    assert boot_options(choice) == (
        (OptionCode.VENDOR_CLASS_IDENTIFIER, b"HTTPClient"),
        (OptionCode.BOOTFILE_NAME, url.encode()),
    )


def test_unknown_arch_gets_no_file_and_a_problem_to_log() -> None:
    choice = choose(pxe(25))
    assert choice.rule is BootRule.NO_FILE_FOR_ARCH
    assert choice.arch == 25
    assert choice.problem == "profile 'rack' has no boot file for client arch unknown (25)"
    assert boot_options(choice) == ()
    assert choice.siaddr is None


def test_http_client_without_url_for_arch() -> None:
    choice = choose(pxe(16, vendor="HTTPClient:Arch:00016"), subnet=SUBNET_OTHER)
    assert choice.rule is BootRule.NO_FILE_FOR_ARCH


SUBNET_OTHER = Subnet(name="lab", cidr=IPv4Network("198.18.1.0/24"), boot="other")


def test_pxe_without_option_93_is_bios() -> None:
    choice = choose(pxe(None, vendor="PXEClient"))
    assert choice.arch is ClientArch.BIOS
    assert choice.filename == "undionly.kpxe"


def test_ipxe_client_gets_script_url_never_its_own_file() -> None:
    choice = choose(pxe(7, ipxe=True), host())
    assert choice.rule is BootRule.IPXE_SCRIPT
    assert choice.filename == f"http://198.18.0.1:8080/boot/{MAC}.ipxe"
    assert choice.siaddr is None
    assert boot_options(choice) == ((OptionCode.BOOTFILE_NAME, choice.filename.encode()),)


def test_ipxe_without_script_falls_back_to_arch_file_without_pxe_options() -> None:
    choice = choose(pxe(0, ipxe=True), subnet=SUBNET_OTHER)
    assert choice.rule is BootRule.ARCH_FILE
    assert choice.vendor_options is None
    assert choice.vendor_class is None


# --- precedence ----------------------------------------------------------------------------------


def test_host_profile_beats_subnet_profile() -> None:
    choice = choose(pxe(0), host(boot="other"))
    assert (choice.profile, choice.profile_source, choice.filename) == (
        "other",
        "host",
        "other.kpxe",
    )


def test_host_boot_file_beats_profiles() -> None:
    choice = choose(pxe(9), host(boot_file="special/{hostname}.efi"))
    assert choice.rule is BootRule.HOST_FILE
    assert choice.filename == "special/node1.efi"


def test_host_boot_script_beats_profile_script() -> None:
    choice = choose(pxe(9, ipxe=True), host(boot_script="http://x.example/{fqdn}.ipxe"))
    assert choice.rule is BootRule.HOST_SCRIPT
    assert choice.filename == "http://x.example/node1.site.example.ipxe"


def test_host_override_without_any_profile() -> None:
    choice = choose(pxe(0), host(boot_file="mine.kpxe"), subnet=None)
    assert choice.rule is BootRule.HOST_FILE
    assert choice.siaddr == SERVER


def test_next_server_of_profile_is_used() -> None:
    profiles = {
        "rack": BootProfile(name="rack", files={0: "f"}, next_server=IPv4Address("198.18.0.9"))
    }
    choice = select_boot(pxe(0), profiles, host=None, subnet=SUBNET, server=SERVER)
    assert choice.siaddr == IPv4Address("198.18.0.9")
    assert choice.tftp_server == "198.18.0.9"


def test_no_profile_means_no_boot_options() -> None:
    bare = Subnet(name="bare", cidr=IPv4Network("198.18.2.0/24"))
    choice = choose(pxe(7), host(), subnet=bare)
    assert choice.rule is BootRule.NO_PROFILE
    assert not choice.offers_boot
    assert boot_options(choice) == ()
    assert choose(pxe(7), None, subnet=None).rule is BootRule.NO_PROFILE


def test_unknown_profile_name_is_a_problem_not_a_crash() -> None:
    choice = choose(pxe(7), host(boot="gone"))
    assert choice.rule is BootRule.UNKNOWN_PROFILE
    assert choice.problem is not None
    assert "gone" in choice.problem
    assert boot_options(choice) == ()


def test_long_file_name_goes_only_in_option_67() -> None:
    choice = choose(pxe(0), host(boot_file="d/" * 70 + "f"))
    assert choice.file_field == b""
    assert boot_options(choice)[-1] == (OptionCode.BOOTFILE_NAME, ("d/" * 70 + "f").encode())


def test_without_server_the_template_field_stays() -> None:
    choice = select_boot(pxe(7, ipxe=True), PROFILES, host=None, subnet=SUBNET)
    assert choice.filename == f"http://{{server}}:8080/boot/{MAC}.ipxe"


def test_templates_keep_ipxe_variables() -> None:
    template = "chain {base_url}/${net0/mac}/{hostname} ${mac}"
    assert template_fields(template) == {"base_url", "hostname"}
    assert render_template(template, {"base_url": "B", "hostname": "h", "mac": "m"}) == (
        "chain B/${net0/mac}/h ${mac}"
    )


def test_request_options_build_what_firmware_sends() -> None:
    from ddi.dhcp.netboot import request_options

    uefi = facts_from_options(MAC, request_options(arch=7))
    assert (uefi.is_pxe_client, uefi.arch) == (True, ClientArch.EFI_BC)
    http = facts_from_options(MAC, request_options(arch=16))
    assert http.is_http_client
    assert http.vendor_class == "HTTPClient:Arch:00016:UNDI:003016"
    ipxe = facts_from_options(MAC, request_options(arch=None, ipxe_options=True))
    assert ipxe.is_ipxe
    assert ipxe.arch is None
    custom = request_options(arch=0, vendor_class="", user_class="iPXE")
    assert OptionCode.VENDOR_CLASS_IDENTIFIER not in custom
    assert custom[OptionCode.USER_CLASS] == b"iPXE"


def test_http_client_host_url_override_and_names() -> None:
    from ddi.dhcp.netboot import arch_name

    facts = pxe(19, vendor="HTTPClient:Arch:00019")
    choice = choose(facts, host(boot_file="https://img.example/{hostname}.efi"))
    assert (choice.rule, choice.filename) == (BootRule.HOST_FILE, "https://img.example/node1.efi")
    assert choice.vendor_class == b"HTTPClient"
    assert arch_name(None) == "none"
    assert arch_name(ClientArch.EFI_ARM64) == "EFI_ARM64 (11)"
    assert BootChoice(rule=BootRule.NO_PROFILE).file_field == b""
    relative = choose(facts, host(boot_file="hosts/{hostname}.efi"))
    assert relative.filename == "http://198.18.0.1:8080/hosts/node1.efi"


def test_profiles_without_http_server_have_no_script_default() -> None:
    from ddi.config import BootConfig, BootProfileConfig
    from ddi.dhcp.netboot import profiles_from_config

    boot = BootConfig(
        root=Path("/srv"),
        http_enabled=False,
        profiles={"p": BootProfileConfig(name="p", files={0: "f"})},
    )
    profile = profiles_from_config(boot)["p"]
    assert (profile.ipxe_script, profile.base_url) == (None, None)
    # iPXE without a script URL falls back to the arch file.
    choice = select_boot(pxe(0, ipxe=True), {"p": profile}, host=None, subnet=SUBNET_P)
    assert choice.rule is BootRule.ARCH_FILE


SUBNET_P = Subnet(name="p", cidr=IPv4Network("198.18.3.0/24"), boot="p")

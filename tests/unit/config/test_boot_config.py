"""The [boot] section: profiles, limits and template checks."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ddi.config import Config, parse_config
from ddi.dhcp.netboot import profiles_from_config
from ddi.errors import ConfigError

BASE = """
[site]
id = "s1"
domain = "site.example"

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
boot = "rack"
"""


def parse(boot: str) -> object:
    return parse_config(tomllib.loads(BASE + boot), path=Path("/etc/ddi/site.toml"))


def test_profile_and_limits_are_parsed() -> None:
    cfg = parse(
        """
[boot]
root = "tftp"
http_port = 8067
tftp_max_blksize = 1468
tftp_max_windowsize = 8

[boot.profiles.rack]
bios = "undionly.kpxe"
efi_x86_64 = "ipxe.efi"
http_x86_64 = "x64/ipxe.efi"
default_script = "unknown.ipxe"
"""
    )
    boot = cfg.boot  # type: ignore[attr-defined]
    assert boot.root == Path("/etc/ddi/tftp")
    assert (boot.tftp_max_blksize, boot.tftp_max_windowsize) == (1468, 8)
    rack = boot.profiles["rack"]
    assert rack.files == {0: "undionly.kpxe", 9: "ipxe.efi", 16: "x64/ipxe.efi"}
    assert rack.default_script == Path("/etc/ddi/unknown.ipxe")
    profile = profiles_from_config(boot)["rack"]
    assert profile.base_url == "http://{server}:8067"
    assert profile.ipxe_script == "{base_url}/boot/{mac}.ipxe"


def test_unknown_template_field_names_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse('[boot.profiles.rack]\nipxe_script = "http://x/{macaddr}.ipxe"\n')
    assert err.value.key == "boot.profiles.rack.ipxe_script"
    assert "{macaddr}" in err.value.reason


def test_ipxe_variables_are_not_template_fields() -> None:
    parse('[boot.profiles.rack]\nbios = "${net0/mac}/{hostname}.kpxe"\n')


def test_blksize_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        parse("[boot]\ntftp_max_blksize = 70000\n[boot.profiles.rack]\n")
    assert err.value.key == "boot.tftp_max_blksize"


def test_unreadable_script_template_names_its_key(tmp_path: Path) -> None:
    from ddi.boot.http import DEFAULT_SCRIPT, load_scripts

    (tmp_path / "host.ipxe").write_text("#!ipxe\nchain {base_url}/x\n")
    cfg = parse_config(
        tomllib.loads(
            BASE
            + '[boot]\nscript_template = "host.ipxe"\n[boot.profiles.rack]\n'
            + 'default_script = "missing.ipxe"\n'
        ),
        path=tmp_path / "site.toml",
    )
    with pytest.raises(ConfigError) as err:
        load_scripts(cfg.boot)
    assert err.value.key == "boot.profiles.rack.default_script"
    ok = parse_config(
        tomllib.loads(BASE + '[boot]\nscript_template = "host.ipxe"\n[boot.profiles.rack]\n'),
        path=tmp_path / "site.toml",
    )
    scripts = load_scripts(ok.boot)
    assert scripts.host["rack"] == "#!ipxe\nchain {base_url}/x\n"
    assert scripts.fallback != DEFAULT_SCRIPT


RACK = '[boot.profiles.rack]\nbios = "undionly.kpxe"\n'


def test_listen_takes_one_address_or_a_list_of_ipv4_and_ipv6() -> None:
    cfg = parse(f'[boot]\ntftp_listen = "2001:db8:0::1"\nhttp_listen = ["0.0.0.0", "::"]\n{RACK}')
    assert cfg.boot.tftp_listen == ("2001:db8::1",)  # type: ignore[attr-defined]
    assert cfg.boot.http_listen == ("0.0.0.0", "::")  # type: ignore[attr-defined]
    assert parse(f"[boot]\n{RACK}").boot.tftp_listen == ("0.0.0.0",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("line", "key", "reason"),
    [
        ('tftp_listen = ["::", "0:0::0"]', "boot.tftp_listen", "twice"),
        ("http_listen = []", "boot.http_listen", "1-16"),
        ('http_listen = ["::", "ddi0"]', r"boot.http_listen\[1\]", "not an IP address"),
        ("tftp_listen = 5", "boot.tftp_listen", "IP address string"),
    ],
)
def test_bad_listen_addresses_are_refused(line: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as info:
        parse(f"[boot]\n{line}\n{RACK}")
    assert info.value.key == key.replace("\\", "")


def test_boot_params_are_parsed_for_dhcpv6() -> None:
    from ddi.dhcp6.netboot import boot_params_from_config

    cfg = parse('[boot.profiles.rack]\nboot_params = ["console=ttyS0", "host={hostname}"]\n')
    assert isinstance(cfg, Config)
    assert boot_params_from_config(cfg.boot) == {"rack": ("console=ttyS0", "host={hostname}")}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('boot_params = ["x={macaddr}"]', "{macaddr}"),
        ('boot_params = [""]', "non-empty"),
        (f'boot_params = ["{"a" * 1025}"]', "1-1024 characters"),
        ("boot_params = [" + ", ".join(['"a"'] * 17) + "]", "more than 16"),
    ],
)
def test_bad_boot_params_name_the_key(line: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(f"[boot.profiles.rack]\n{line}\n")
    assert err.value.key.startswith("boot.profiles.rack.boot_params")
    assert reason in err.value.reason

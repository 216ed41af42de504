"""Boot over IPv6 in the namespace lab: ``ddi serve`` listening for TFTP and HTTP on both
families of ``ddi0`` (``boot.tftp_listen``/``http_listen`` lists), a client fetching the same
file with tftp-hpa ``-6``, curl ``tftp://[...]`` and curl ``http://[...]``, and over IPv4.

    cli  eth0 198.18.0.250/24 2001:db8:10::250/64 ── ddi0 .1, ::1  srv (TFTP :69, HTTP :8067)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ddi.lab import Lab
from tests.integration.conftest import require

BODY = """
[dhcp]
enabled = false

[boot]
root = "{root}"
tftp_listen = ["198.18.0.1", "2001:db8:10::1"]
http_listen = ["198.18.0.1", "2001:db8:10::1"]
http_port = 8067
"""


def test_tftp_and_http_boot_over_ipv6_and_ipv4(lab: Lab, ddi_daemon: Any, tmp_path: Path) -> None:
    require("tftp", "curl")
    root = tmp_path / "bootroot"
    root.mkdir()
    content = os.urandom(150_000)
    (root / "ipxe.efi").write_bytes(content)
    srv, cli = lab.namespace("srv"), lab.namespace("cli")
    lab.link(srv, "ddi0", ("198.18.0.1/24", "2001:db8:10::1/64"),
             cli, "eth0", ("198.18.0.250/24", "2001:db8:10::250/64"))  # fmt: skip
    daemon = ddi_daemon(srv, BODY.format(root=root))

    fetched = {
        "tftp6": ["tftp", "-6", "-m", "octet", "2001:db8:10::1", "-c", "get", "ipxe.efi"],
        "curl-tftp6": ["curl", "-sS", "-g", "tftp://[2001:db8:10::1]/ipxe.efi", "-o"],
        "http6": ["curl", "-sS", "-g", "http://[2001:db8:10::1]:8067/ipxe.efi", "-o"],
        "tftp4": ["tftp", "-4", "-m", "octet", "198.18.0.1", "-c", "get", "ipxe.efi"],
        "http4": ["curl", "-sS", "http://198.18.0.1:8067/ipxe.efi", "-o"],
    }
    for name, argv in fetched.items():
        out = tmp_path / name
        done = lab.run(cli, *argv, str(out), timeout=60, check=False)
        assert out.read_bytes() == content, (name, done.stdout, done.stderr)

    statistics = daemon.cli_json("status")["statistics"]
    assert statistics["tftp"]["requests"] == {"completed": 3}
    assert statistics["http_boot"]["requests"] == {"file_200": 2}

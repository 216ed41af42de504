"""What a process that loads the command line (``ddi serve`` among them) imports: nothing that
only one rarely used command needs, since every module stays resident for the daemon's life."""

from __future__ import annotations

import subprocess
import sys

from ddi.migrate.detect import parser_for

SCRIPT = """
import sys
import ddi.cli
print(" ".join(sorted(m for m in ("dns", "cryptography", "scapy") if m in sys.modules)))
"""


def test_loading_the_cli_leaves_dnspython_cryptography_and_scapy_out() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_zone_parser_still_loads_when_asked_for() -> None:
    what, parse = parser_for("zone", "", origin="site1.example")
    parsed = parse("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 198.18.0.1\n", "db")
    assert what == "zone file"
    assert [(r.name, r.rtype, r.value) for r in parsed.records][-1:] == [
        ("ns.site1.example.", "A", "198.18.0.1")
    ]

"""The example files in examples/import/ import into the example site (examples/site.toml)
with nothing refused, as the README's commands show."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from ddi.cli.importing import read_files
from ddi.config import load_config
from ddi.ipam.import_plan import plan_import

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("form", "files", "added"),
    [
        ("dnsmasq", ["dnsmasq.conf", "dnsmasq.leases"], 8),
        ("kea", ["kea-dhcp4.conf", "kea-leases4.csv"], 3),
        ("csv", ["hosts.csv"], 2),
        ("zone", ["db.site1.example"], 6),
    ],
)
def test_example_files_import_into_the_example_site(
    form: str, files: list[str], added: int
) -> None:
    config = load_config(EXAMPLES / "site.toml")
    parsed, notes = read_files(form, [EXAMPLES / "import" / name for name in files])
    assert not parsed.refused, parsed.refused
    ids = itertools.count()
    plan = plan_import(
        hosts=parsed.hosts, leases=parsed.leases, records=parsed.records, stored_hosts=(),
        stored_leases=(), stored_records=(), subnets=config.subnets,
        domain=config.site.domain, now=NOW, actor="t", new_id=lambda: f"{next(ids):032x}",
    )  # fmt: skip
    assert not plan.refused, plan.refused
    assert len(plan.added) == added, [o.key for o in plan.added]
    assert len(notes) >= len(files)

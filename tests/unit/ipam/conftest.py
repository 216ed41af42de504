"""Fixtures for the IPAM store tests: a store in a temporary folder with a settable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import pytest_asyncio

from ddi.ipam.models import Pool, Subnet
from ddi.ipam.store import Store

T0 = 1_800_000_000.0
DOMAIN = "site.example"

LAN = Subnet(
    name="lan",
    cidr=IPv4Network("198.18.0.0/24"),
    gateway=IPv4Address("198.18.0.1"),
    pools=(Pool(start=IPv4Address("198.18.0.100"), end=IPv4Address("198.18.0.199")),),
)
LAB = Subnet(
    name="lab",
    cidr=IPv4Network("198.18.1.0/24"),
    gateway=IPv4Address("198.18.1.1"),
    domain="lab.site.example",
)


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ipam.db"


@pytest_asyncio.fixture
async def store(db_path: Path, clock: Clock) -> AsyncIterator[Store]:
    async with await Store.open(db_path, clock=clock, domain=DOMAIN) as opened:
        await opened.sync_subnets([LAN, LAB], actor="config", reason="start")
        yield opened

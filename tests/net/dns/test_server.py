"""The DNS service on loopback sockets, queried with real dig."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from ddi.ipam.models import Host

pytestmark = pytest.mark.asyncio


async def test_reservation_resolves_over_udp_and_tcp(tmp_path: Path, h: Any) -> None:
    h.need("dig")
    port = h.free_port()
    async with h.running(h.config(tmp_path, port), port) as r:
        await r.store.add_host(
            Host(id="", ip=IPv4Address("198.18.0.10"), hostname="web", mac="52:54:00:00:00:01"),
            actor="t",
            reason="t",
        )
        out = await h.dig(r, "web.site.example", "A", "+short")
        assert out.strip() == "198.18.0.10"
        out = await h.dig(r, "-x", "198.18.0.10", "+short", "+tcp")
        assert out.strip() == "web.site.example."
        full = await h.dig(r, "web.site.example", "A")
        assert "flags: qr aa" in full

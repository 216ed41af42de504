"""The DNS service on loopback sockets, queried with real dig."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from ddi.ipam.models import Host, Lease, Record

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


def _records(out: str, rtype: str) -> list[str]:
    return [
        line for line in out.splitlines() if not line.startswith(";") and f"\t{rtype}\t" in line
    ]


async def test_axfr_with_tsig_succeeds_and_without_is_refused(tmp_path: Path, h: Any) -> None:
    h.need("dig")
    port = h.free_port()
    async with h.running(h.config(tmp_path, port), port) as r:
        await r.store.add_host(
            Host(id="", ip=IPv4Address("198.18.0.10"), hostname="web", mac="52:54:00:00:00:01"),
            actor="t",
            reason="t",
        )
        key = f"hmac-sha256:{h.KEY}:{h.SECRET}"
        out = await h.dig(r, "-y", key, "site.example", "AXFR")
        assert len(_records(out, "SOA")) == 2, out
        assert any("198.18.0.10" in line for line in _records(out, "A")), out
        assert "tsig verify failure" not in out.lower()
        out = await h.dig(r, "site.example", "AXFR")
        assert "Transfer failed" in out, out
        assert not _records(out, "A")
        wrong = f"hmac-sha256:{h.KEY}:{'QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB'}"
        out = await h.dig(r, "-y", wrong, "site.example", "AXFR")
        assert not _records(out, "A"), out


async def test_ixfr_after_a_change_returns_the_delta(tmp_path: Path, h: Any) -> None:
    h.need("dig")
    port = h.free_port()
    async with h.running(h.config(tmp_path, port), port) as r:
        key = f"hmac-sha256:{h.KEY}:{h.SECRET}"
        serial = r.server.zones.zones["site.example"].serial
        await r.store.add_record(
            Record(id="", name="mail.site.example", rtype="A", value="198.18.0.25"),
            actor="t",
            reason="t",
        )
        new = r.server.zones.zones["site.example"].serial
        assert new > serial
        out = await h.dig(r, "-y", key, "site.example", f"IXFR={serial}")
        soas = _records(out, "SOA")
        # RFC 1995 §4: new SOA, old SOA, (removed), new SOA, added, new SOA
        assert [s.split()[6] for s in soas] == [str(new), str(serial), str(new), str(new)], out
        a = _records(out, "A")
        assert len(a) == 1, out
        assert "198.18.0.25" in a[0]


async def test_unreachable_forwarder_servfails_in_time_and_local_names_answer(
    tmp_path: Path, h: Any
) -> None:
    h.need("dig")
    port = h.free_port()
    dead = h.free_port()  # nothing listens there: the query is never answered
    cfg = h.config(tmp_path, port, forwarders=[f"127.0.0.1:{dead}"], forward_timeout=0.5)
    async with h.running(cfg, port) as r:
        loop = asyncio.get_running_loop()
        started = loop.time()
        out = await h.dig(r, "www.elsewhere.example", "A")
        took = loop.time() - started
        assert "status: SERVFAIL" in out, out
        assert took < 2.5
        out = await h.dig(r, "ns.site.example", "A", "+short")
        assert out.strip() == "127.0.0.1"


async def test_reload_rebuilds_zones_with_a_higher_serial(tmp_path: Path, h: Any) -> None:
    h.need("dig")
    port = h.free_port()
    async with h.running(h.config(tmp_path, port), port) as r:
        before = r.server.zones.zones["site.example"].serial
        await r.server.reload(h.config(tmp_path, port, ttl=60, ns_address="198.18.0.53"))
        assert r.server.zones.zones["site.example"].serial > before
        out = await h.dig(r, "ns.site.example", "A", "+noall", "+answer")
        assert "\t60\tIN\tA\t198.18.0.53" in out


async def test_multi_message_axfr_is_signed_throughout(tmp_path: Path, h: Any) -> None:
    h.need("dig")
    port = h.free_port()
    async with h.running(h.config(tmp_path, port), port) as r:
        leases = [
            Lease(
                ip=IPv4Address(f"198.19.{i // 250}.{i % 250 + 1}"),
                mac=f"52:54:00:00:{i // 256:02x}:{i % 256:02x}",
                hostname=f"c{i}",
                start=0.0,
                end=4e9,
                subnet="lab",
            )
            for i in range(450)
        ]
        await r.store.commit_leases(leases)
        key = f"hmac-sha256:{h.KEY}:{h.SECRET}"
        out = await h.dig(r, "-y", key, "site.example", "AXFR")
        assert "XFR size: 454 records (messages 3" in out, out[-400:]
        assert "failure" not in out.lower()
        assert "Transfer failed" not in out
        out = await h.dig(r, "-y", key, "0.19.198.in-addr.arpa", "AXFR")
        assert out.count("\tPTR\t") == 250

"""An object the real Nautobot refuses as invalid is logged, counted and skipped: the rest of
its page is written and the cursor moves on (it must not hold the feed back for ever)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from central import metrics
from central.nautobot import client, state
from central.nautobot.config import NautobotConfig, Placement
from central.nautobot.task import IpamSync
from central.store import open_store
from ddi.ipam.models import Change, Kind, Op
from sync import protocol
from tests.nautobot.lab import NautobotLab

KEY = protocol.generate_key()


def _lease(seq: int, n: int, hostname: str) -> dict[str, Any]:
    image = {"ip": f"198.18.7.{n}", "mac": f"02:00:00:00:07:{n:02x}", "client_id": None,
             "hostname": hostname, "state": "bound", "start": 1.0, "end": 4e9,
             "subnet": "lab", "circuit_id": None}  # fmt: skip
    return Change(epoch=1, seq=seq, kind=Kind.LEASE, object_id=image["ip"], op=Op.UPSERT,
                  image=image, actor="t", time=1.0).to_image()  # fmt: skip


@pytest.mark.asyncio
async def test_an_address_nautobot_refuses_is_skipped_and_counted(
    nautobot_running: NautobotLab, tmp_path: Path
) -> None:
    store = await open_store(f"sqlite://{tmp_path / 'central.sqlite'}")
    try:
        await store.add_site("s1", protocol.public_key_raw(KEY.public_key()))
        subnet = Change(epoch=1, seq=1, kind=Kind.SUBNET, object_id="lab", op=Op.UPSERT,
                        image={"name": "lab", "cidr": "198.18.0.0/15"}, actor="t",
                        time=1.0).to_image()  # fmt: skip
        # A name with a space: no DNS name, and Nautobot's dns_name rejects it.
        entries = [subnet, _lease(2, 1, "good1"), _lease(3, 2, "bad name"), _lease(4, 3, "good3")]
        batch = protocol.make_batch(site="s1", epoch=1, from_seq=1, to_seq=4, entries=entries,
                                    key=KEY)  # fmt: skip
        assert (await store.apply_batch("s1", batch)).applied_seq == 4
        namespace = f"ns-refused-{tmp_path.name[-30:]}"
        config = NautobotConfig(
            url=nautobot_running.url,
            token=nautobot_running.token,
            sites={"s1": Placement(location=namespace, namespace=namespace)},
        )
        before = _sample("refused")
        sync = IpamSync(store, client.factory(config), batch_size=100, interval=1.0, holder="x")
        assert await state.acquire(store, "nautobot", "x", now=0.0, ttl=1e9)
        result = await sync.round()
        assert result.cursor == 4
        assert result.writes == 3  # the prefix and the two good addresses
        assert _sample("refused") == before + 1
        found = nautobot_running.all(f"/api/ipam/ip-addresses/?namespace={namespace}&tags=ddi")
        assert sorted(a["dns_name"] for a in found) == ["good1", "good3"]
    finally:
        await store.close()


def _sample(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "ddi_central_nautobot_errors_total", {"target": "nautobot", "reason": reason}
    )
    return 0.0 if value is None else value

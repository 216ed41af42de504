"""Committed changes are counted per kind and op, and the last seq and epoch are shown."""

from __future__ import annotations

from prometheus_client import REGISTRY

from ddi.app import _count_changes
from ddi.ipam.models import Change, Kind, Op


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_batch_counts_each_kind_and_op() -> None:
    before_leases = _sample("ddi_store_changes_total", kind="lease", op="upsert")
    before_hosts = _sample("ddi_store_changes_total", kind="host", op="delete")
    batch = [
        Change(epoch=3, seq=100 + i, kind=Kind.LEASE, object_id=f"198.18.0.{i}", op=Op.UPSERT)
        for i in range(3)
    ]
    batch.append(Change(epoch=3, seq=103, kind=Kind.HOST, object_id="h1", op=Op.DELETE))
    _count_changes(batch)
    assert _sample("ddi_store_changes_total", kind="lease", op="upsert") == before_leases + 3
    assert _sample("ddi_store_changes_total", kind="host", op="delete") == before_hosts + 1
    assert _sample("ddi_store_last_seq") == 103
    assert _sample("ddi_store_epoch") == 3

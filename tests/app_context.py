"""The in-process daemon context that services and the API run on, as ``ddi.app.serve``
builds it: a store holding the config's subnets and an index that follows its commits."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from ddi.app import AppContext
from ddi.config import Config
from ddi.ipam.store import Store
from ddi.ipam.views import IpamIndex


@contextlib.asynccontextmanager
async def app_context(
    cfg: Config, *, database: Path | None = None, store_type: type[Store] = Store
) -> AsyncIterator[AppContext]:
    """Open the store (``<data_dir>/ddi.sqlite`` unless ``database``), sync the subnets, load
    and subscribe the index; close the store on the way out."""
    path = database if database is not None else cfg.site.data_dir / "ddi.sqlite"
    store = await store_type.open(path, domain=cfg.site.domain)
    try:
        await store.sync_subnets(cfg.subnets, actor="test", reason="setup")
        index = await IpamIndex.load(store)
        store.subscribe(index.apply)
        yield AppContext(config=cfg, store=store, index=index)
    finally:
        await store.close()

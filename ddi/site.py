"""What the daemon's parts share, and the one interface every service implements.

``Site`` is the opened state of one site: the running config, the store and the read index that
follows the store's commits. ``open_site`` builds it (``ddi.app.serve`` and the tests both use
it). A ``Service`` is built from a ``Site``, ``start``s its listeners and tasks in the daemon's
TaskGroup, answers ``reload`` and ``statistics``, and releases everything in ``close``;
``ddi.app`` runs them all. No module here or below imports ``ddi.app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ddi.config import Config
from ddi.errors import StoreError
from ddi.ipam.store import Store
from ddi.ipam.views import IpamIndex

STORE_FILE = "ddi.sqlite"
CONFIG_ACTOR = "config"
"""The change-log actor of changes that come from the config file (subnets)."""


@dataclass
class Site:
    """The opened site: ``config`` is replaced on a successful reload, the rest lives as long
    as the daemon."""

    config: Config
    store: Store
    index: IpamIndex
    store_path: Path
    started: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)


class SiteOpenError(StoreError):
    """The configured subnets cannot be applied to the store at start."""


@contextlib.asynccontextmanager
async def open_site(
    config: Config,
    *,
    store_path: Path | None = None,
    store_type: type[Store] = Store,
    actor: str = CONFIG_ACTOR,
) -> AsyncIterator[Site]:
    """Open the store (``<site.data_dir>/ddi.sqlite`` unless ``store_path``), apply the config's
    subnets, load the index and subscribe it to commits; close the store on the way out.

    Raises:
        SiteOpenError: the store refuses the config's subnets.
        StoreError: the store cannot be opened.
    """
    path = store_path if store_path is not None else config.site.data_dir / STORE_FILE
    store = await store_type.open(path, domain=config.site.domain)
    try:
        try:
            await store.sync_subnets(
                config.subnets, actor=actor, reason=f"start with {config.path}"
            )
            await store.sync_subnets6(
                config.subnets6, actor=actor, reason=f"start with {config.path}"
            )
        except StoreError as exc:
            raise SiteOpenError(str(exc)) from exc
        index = await IpamIndex.load(store)
        store.subscribe(index.apply)
        yield Site(config=config, store=store, index=index, store_path=path)
    finally:
        await store.close()


class Service(Protocol):
    """One of the daemon's services (DHCP, DNS, TFTP, HTTP boot, sync).

    Built from a ``Site`` without sockets or tasks; ``start`` binds (raising
    ``ddi.errors.ConfigError`` or ``OSError`` when it cannot) and spawns the service's tasks in
    ``tg``; ``close`` stops them and releases every socket and file, and is safe to call after
    a failed or no ``start``.
    """

    name: str
    """The area under which ``ddi status`` shows ``statistics()`` (``"dhcp"``, ``"dns"``...)."""

    async def start(self, tg: asyncio.TaskGroup) -> None: ...

    async def close(self) -> None: ...

    async def reload(self, config: Config) -> None:
        """Apply a new config that ``ddi.app`` has already validated and put in force."""
        ...

    def statistics(self) -> Mapping[str, Any]: ...

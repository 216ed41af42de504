"""The seam between the sync task and an IPAM product: the few idempotent operations the task
needs. Nautobot is ``central.nautobot.client``; NetBox would be one more module implementing
``Ipam`` (its REST API has the same shapes: prefixes, IP addresses, tags, custom fields; VRFs
where Nautobot has namespaces).

Every operation is keyed by natural keys (a prefix or address within the site's namespace),
never by the IPAM's own ids, and is safe to repeat: applying the same states twice leaves the
IPAM as after once, and makes no write the second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from central.nautobot.mapping import AddressState, PrefixState


class IpamError(Exception):
    """The IPAM could not be reached or refused a write; the task retries with backoff."""


class Ipam(Protocol):
    async def ensure_site(self, site: str) -> None:
        """Create what holds the site's objects (Nautobot: a Location and a Namespace) and
        the shared definitions (tag, custom fields, statuses) when missing."""

    async def upsert_prefixes(self, site: str, prefixes: Sequence[PrefixState]) -> int:
        """Create or update ``prefixes`` in the site's namespace; returns the writes made."""

    async def upsert_addresses(self, site: str, addresses: Sequence[AddressState]) -> int:
        """Create or update ``addresses`` in the site's namespace; returns the writes made."""

    async def delete(self, site: str, keys: Sequence[str]) -> int:
        """Delete the objects the task made for ``keys`` (``prefix:CIDR``, ``ip:ADDRESS``)
        in the site's namespace; a key already gone is no error. Returns the deletions."""

    async def keys(self, site: str) -> set[str]:
        """Every key (``prefix:CIDR``, ``ip:ADDRESS``) of the objects the task made in the
        site's namespace, read afresh from the IPAM (not from what the adapter remembers)."""

    async def forget(self) -> None:
        """Drop whatever the adapter remembers of the IPAM's contents (after an error, or
        when another collector may have written): the next call reads them afresh."""

    async def close(self) -> None: ...

"""Nautobot as the source of operator-made reservations (``down.ReserveSource``), through
pynautobot.

What it reads: in each site's namespace (``config.placement``), the IP addresses tagged
``ddi-reserve``, with their DNS name and the ``ddi_mac`` custom field. What it writes: Notes
(Nautobot's journal) on an address whose reservation a site cannot take, and, when missing,
the tag ``ddi-reserve`` and the custom field ``ddi_mac``; never the operator's address itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from central.nautobot import client
from central.nautobot.config import NautobotConfig
from central.nautobot.reserve import TAG, Marked

log = logging.getLogger(__name__)

MAX_FIELD = 255
"""Longest DNS name or custom field value read (Nautobot's dns_name holds 255)."""
PAGE = 1000
"""Addresses per page of the list (Nautobot's default MAX_PAGE_SIZE)."""
TIMEOUT = 60.0
"""Seconds for one HTTP request."""


class NautobotReserves:
    """``down.ReserveSource`` for Nautobot 2.x and 3.x."""

    def __init__(self, config: NautobotConfig) -> None:
        self._api = client.connect(config, timeout=TIMEOUT)
        self._tags: dict[str, str] | None = None
        self._namespaces: dict[str, str] = {}

    async def marked(self, namespaces: Mapping[str, str]) -> list[Marked]:
        """Every address tagged ``ddi-reserve`` in the namespace of each site
        (``namespaces``: site → namespace name)."""
        return await client.call(self._marked, dict(namespaces))

    async def note(self, ipam_id: str, text: str) -> None:
        await client.call(self._note, ipam_id, text)

    async def forget(self) -> None:
        self._tags = None
        self._namespaces.clear()

    async def close(self) -> None:
        self._api.http_session.close()

    # --- in a worker thread ---

    def _tag_ids(self) -> dict[str, str]:
        if self._tags is None:
            api = self._api
            ids = {}
            for name, types, what in (
                (TAG, ["ipam.ipaddress"], "an address ddi-central sends down as a reservation"),
            ):
                tag = api.extras.tags.get(name=name)
                if tag is None:
                    tag = api.extras.tags.create(name=name, content_types=types, description=what)
                ids[name] = str(tag.id)
            # (custom fields take no filter by key: Nautobot 3 answers 400)
            if client.CF_MAC not in {str(cf.key) for cf in api.extras.custom_fields.all()}:
                api.extras.custom_fields.create(
                    key=client.CF_MAC, label="ddi MAC", type="text",
                    content_types=["ipam.ipaddress"],
                )  # fmt: skip
            self._tags = ids
        return self._tags

    def _marked(self, namespaces: dict[str, str]) -> list[Marked]:
        self._tag_ids()
        sites: dict[str, str] = {}
        for site, name in sorted(namespaces.items()):
            ns = self._namespace_id(name)
            if ns is None:
                continue  # nothing of this site in Nautobot yet
            if ns in sites:
                log.warning("nautobot: sites %s and %s share namespace %s: its reservations go"
                            " to %s", sites[ns], site, name, sites[ns])  # fmt: skip
                continue
            sites[ns] = site
        if not sites:
            return []
        out: list[Marked] = []
        # One paged list over every namespace (depth 1 names each address's namespace through
        # its parent prefix): a look costs the same for one site or a thousand.
        for record in self._api.ipam.ip_addresses.filter(tags=TAG, depth=1, limit=PAGE):
            parent = record.parent
            namespace = None if parent is None else getattr(parent, "namespace", None)
            owner = None if namespace is None else sites.get(str(namespace.id))
            if owner is None:
                continue  # a namespace no enrolled site maps to
            fields = dict(record.custom_fields or {})
            mac = fields.get(client.CF_MAC)
            out.append(
                Marked(
                    ipam_id=str(record.id),
                    site=owner,
                    address=str(record.address)[:MAX_FIELD],
                    dns_name=str(record.dns_name or "")[:MAX_FIELD],
                    mac="" if mac is None else str(mac)[:MAX_FIELD],
                )
            )
        return out

    def _namespace_id(self, name: str) -> str | None:
        known = self._namespaces.get(name)
        if known is None:
            found = self._api.ipam.namespaces.get(name=name)
            if found is None:
                return None
            known = self._namespaces[name] = str(found.id)
        return known

    def _note(self, ipam_id: str, text: str) -> None:
        self._api.extras.notes.create(
            assigned_object_type="ipam.ipaddress", assigned_object_id=ipam_id, note=text
        )

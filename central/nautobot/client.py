"""Nautobot as an ``adapter.Ipam``, through pynautobot (its REST API; list POST, PATCH and
DELETE for bulk writes).

What it makes in Nautobot, when missing: a LocationType (``location_type``), per site a
Location and a Namespace (``config.placement``), the tag ``ddi``, the custom fields
``ddi_site`` and ``ddi_mac``, and the statuses Active, Reserved and DHCP on prefixes and IP
addresses. Objects it writes carry the tag; it reads back only tagged objects, so what an
operator made in the same namespace is never changed or deleted.

pynautobot is synchronous (requests): each call runs in a worker thread. The contents of each
site's namespace (tagged prefixes and addresses) are read once and then kept up to date from
the answers to our own writes, so a round reads nothing; ``forget()`` drops them after an
error or a change of leader.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pynautobot
import requests

from central import metrics
from central.nautobot.adapter import IpamError
from central.nautobot.config import NautobotConfig
from central.nautobot.mapping import AddressState, PrefixState, Status

TAG = "ddi"
CF_SITE = "ddi_site"
CF_MAC = "ddi_mac"
TIMEOUT = 120.0
"""Seconds for one HTTP request. A bulk write of ``WRITE_CHUNK`` addresses took up to 60 s on
a loaded 2-core lab Nautobot (about 10 ms to 250 ms per address, its own validation and
change log); a request cut by the timeout is redone, which Nautobot may then already hold."""
WRITE_CHUNK = 100
"""Objects per bulk request: Nautobot validates and logs each, so requests stay short."""
_T = TypeVar("_T")
log = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class _Held:
    """An object the adapter made, as Nautobot holds it."""

    id: str
    fields: dict[str, Any]


@dataclass(slots=True, kw_only=True)
class _Site:
    namespace_id: str
    prefixes: dict[str, _Held]
    addresses: dict[str, _Held]


class _TimeoutSession(requests.Session):
    """A session whose requests end after ``timeout`` seconds (requests has no default)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def connect(config: NautobotConfig, *, timeout: float) -> Any:
    """A pynautobot API for ``config`` whose requests end after ``timeout`` seconds."""
    api = pynautobot.api(config.url, token=config.token)
    session = _TimeoutSession(timeout)
    session.verify = config.verify
    api.http_session = session
    return api


async def call(fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` in a worker thread (pynautobot is synchronous), every library error
    raised as ``IpamError``."""
    try:
        return await asyncio.to_thread(fn, *args)
    except (requests.RequestException, pynautobot.RequestError, ValueError) as exc:
        raise IpamError(_describe(exc)) from exc


def _record_id(record: Any) -> str:
    return str(record["id"] if isinstance(record, dict) else record.id)


class NautobotIpam:
    """``adapter.Ipam`` for Nautobot 2.x and 3.x."""

    def __init__(self, config: NautobotConfig) -> None:
        self._config = config
        self._api = connect(config, timeout=TIMEOUT)
        self._shared: dict[str, str] | None = None
        self._sites: dict[str, _Site] = {}

    # --- the async face: each call in a thread, every library error as IpamError ---

    async def ensure_site(self, site: str) -> None:
        await call(self._site, site)

    async def upsert_prefixes(self, site: str, prefixes: Sequence[PrefixState]) -> int:
        return await call(self._upsert, site, "prefix", list(prefixes))

    async def upsert_addresses(self, site: str, addresses: Sequence[AddressState]) -> int:
        return await call(self._upsert, site, "ip", list(addresses))

    async def delete(self, site: str, keys: Sequence[str]) -> int:
        return await call(self._delete, site, list(keys))

    async def keys(self, site: str) -> set[str]:
        self._sites.pop(site, None)
        held = await call(self._site, site)
        return set(held.prefixes) | set(held.addresses)

    async def forget(self) -> None:
        self._shared = None
        self._sites.clear()

    async def close(self) -> None:
        self._api.http_session.close()

    # --- shared definitions ---

    def _shared_ids(self) -> dict[str, str]:
        if self._shared is None:
            self._shared = self._make_shared()
        return self._shared

    def _make_shared(self) -> dict[str, str]:
        api = self._api
        ids: dict[str, str] = {}
        for name in (Status.ACTIVE, Status.RESERVED, Status.DHCP):
            types = ["ipam.ipaddress"] + (
                ["ipam.prefix", "dcim.location"] if name == "Active" else []
            )
            status = api.extras.statuses.get(name=name.value)
            if status is None:
                status = api.extras.statuses.create(name=name.value, content_types=types)
            else:
                have = set(status.content_types)
                if not set(types) <= have:
                    status.update({"content_types": sorted(have | set(types))})
            ids[f"status:{name.value}"] = _record_id(status)
        tag = api.extras.tags.get(name=TAG)
        tag_types = ["ipam.prefix", "ipam.ipaddress"]
        if tag is None:
            tag = api.extras.tags.create(
                name=TAG, content_types=tag_types, description="kept in step by ddi-central"
            )
        ids["tag"] = _record_id(tag)
        have = {str(cf.key) for cf in api.extras.custom_fields.all()}
        for key, label, types in (
            (CF_SITE, "ddi site", ["ipam.prefix", "ipam.ipaddress"]),
            (CF_MAC, "ddi MAC", ["ipam.ipaddress"]),
        ):
            if key not in have:
                api.extras.custom_fields.create(
                    key=key, label=label, type="text", content_types=types
                )
        kind = api.dcim.location_types.get(name=self._config.location_type)
        if kind is None:
            kind = api.dcim.location_types.create(
                name=self._config.location_type, content_types=["ipam.prefix"], nestable=False
            )
        ids["location_type"] = _record_id(kind)
        return ids

    # --- per site ---

    def _site(self, site: str) -> _Site:
        held = self._sites.get(site)
        if held is not None:
            return held
        ids = self._shared_ids()
        api = self._api
        place = self._config.placement(site)
        location = api.dcim.locations.get(name=place.location)
        if location is None:
            location = api.dcim.locations.create(
                name=place.location, location_type=ids["location_type"], status=ids["status:Active"]
            )
        namespace = api.ipam.namespaces.get(name=place.namespace)
        if namespace is None:
            namespace = api.ipam.namespaces.create(
                name=place.namespace, location=_record_id(location),
                description=f"ddi site {site}",
            )  # fmt: skip
        ns = _record_id(namespace)
        held = _Site(namespace_id=ns, prefixes={}, addresses={})
        for record in api.ipam.prefixes.filter(namespace=ns, tags=TAG, limit=1000):
            held.prefixes[f"prefix:{record.prefix}"] = _Held(
                id=_record_id(record), fields=self._prefix_fields_of(record)
            )
        for record in api.ipam.ip_addresses.filter(namespace=ns, tags=TAG, limit=1000):
            host = str(record.address).split("/", 1)[0]
            held.addresses[f"ip:{host}"] = _Held(
                id=_record_id(record), fields=self._address_fields_of(record)
            )
        self._sites[site] = held
        return held

    # --- what an object's fields should be, and what Nautobot holds ---

    def _prefix_fields(self, site: str, state: PrefixState) -> dict[str, Any]:
        return {
            "prefix": state.prefix,
            "status": self._shared_ids()["status:Active"],
            "description": state.description,
            "custom_fields": {CF_SITE: site},
        }

    def _address_fields(self, site: str, state: AddressState) -> dict[str, Any]:
        return {
            "address": state.address,
            "status": self._shared_ids()[f"status:{state.status.value}"],
            "dns_name": state.dns_name,
            "description": " ".join(state.sources)[:255],
            "custom_fields": {CF_SITE: site, CF_MAC: state.mac or None},
        }

    @staticmethod
    def _prefix_fields_of(record: Any) -> dict[str, Any]:
        cf = dict(record.custom_fields or {})
        return {
            "prefix": str(record.prefix),
            "status": _record_id(record.status),
            "description": record.description or "",
            "custom_fields": {CF_SITE: cf.get(CF_SITE)},
        }

    @staticmethod
    def _address_fields_of(record: Any) -> dict[str, Any]:
        cf = dict(record.custom_fields or {})
        return {
            "address": str(record.address),
            "status": _record_id(record.status),
            "dns_name": record.dns_name or "",
            "description": record.description or "",
            "custom_fields": {CF_SITE: cf.get(CF_SITE), CF_MAC: cf.get(CF_MAC)},
        }

    # --- writes ---

    def _upsert(self, site: str, what: str, states: Sequence[PrefixState | AddressState]) -> int:
        held = self._site(site)
        table = held.prefixes if what == "prefix" else held.addresses
        endpoint = self._api.ipam.prefixes if what == "prefix" else self._api.ipam.ip_addresses
        creates: list[tuple[str, dict[str, Any]]] = []
        updates: list[tuple[str, dict[str, Any]]] = []
        for state in states:
            if isinstance(state, PrefixState):
                key, fields = f"prefix:{state.prefix}", self._prefix_fields(site, state)
            else:
                key = f"ip:{state.address.split('/', 1)[0]}"
                fields = self._address_fields(site, state)
            old = table.get(key)
            if old is None:
                creates.append((key, fields))
            elif old.fields != fields:
                updates.append((key, fields))
        extra: dict[str, Any] = {
            "namespace": held.namespace_id,
            "tags": [self._shared_ids()["tag"]],
        }
        if what == "prefix":
            extra["type"] = "network"
        written = 0
        for start in range(0, len(creates), WRITE_CHUNK):
            chunk = creates[start : start + WRITE_CHUNK]
            made = _one_by_one_on_refusal(
                endpoint.create, [fields | extra for _, fields in chunk], site
            )
            for (key, fields), record in zip(chunk, made, strict=True):
                if record is not None:
                    table[key] = _Held(id=_record_id(record), fields=fields)
                    written += 1
        for start in range(0, len(updates), WRITE_CHUNK):
            chunk = updates[start : start + WRITE_CHUNK]
            done = _one_by_one_on_refusal(
                endpoint.update, [{"id": table[key].id} | fields for key, fields in chunk], site
            )
            for (key, fields), record in zip(chunk, done, strict=True):
                if record is not None:
                    table[key].fields = fields
                    written += 1
        return written

    def _delete(self, site: str, keys: Sequence[str]) -> int:
        held = self._site(site)
        count = 0
        for table, endpoint in (
            (held.addresses, self._api.ipam.ip_addresses),
            (held.prefixes, self._api.ipam.prefixes),
        ):
            gone = [(k, table[k].id) for k in keys if k in table]
            for start in range(0, len(gone), WRITE_CHUNK):
                # A deletion Nautobot refuses stays in ``table``: the object is still there,
                # tagged, and the site's next upsert of the same key updates it.
                for k in _delete_one_by_one_on_refusal(
                    endpoint.delete, gone[start : start + WRITE_CHUNK], site
                ):
                    del table[k]
                    count += 1
        return count


def _one_by_one_on_refusal(
    write: Callable[[list[dict[str, Any]]], Any], payloads: list[dict[str, Any]], site: str
) -> list[Any | None]:
    """``write(payloads)`` (a bulk create or update); when Nautobot refuses the request as
    invalid (400: it validates every object before it saves any), each object alone, so one
    object it will never take (a name it refuses) cannot hold the cursor back for ever: that
    one is logged, counted (``reason="refused"``) and skipped (None)."""
    try:
        return list(write(payloads))
    except pynautobot.RequestError as exc:
        if exc.req.status_code != 400:
            raise
        if len(payloads) > 1:
            return [r for p in payloads for r in _one_by_one_on_refusal(write, [p], site)]
        metrics.IPAM_ERRORS.labels(target="nautobot", reason="refused").inc()
        shown = {k: payloads[0].get(k) for k in ("address", "prefix", "dns_name")}
        log.warning("Nautobot refused %s of site %s: %s", shown, site, str(exc.error)[:300])
        return [None]


REFUSED_DELETE = (400, 409)
"""Nautobot's answers to a deletion it will not do as things stand: 409 when other objects
depend on it (an operator's own address inside one of our prefixes), 400 when invalid."""


def _delete_one_by_one_on_refusal(
    delete: Callable[[list[str]], Any], items: list[tuple[str, str]], site: str
) -> list[str]:
    """``delete`` the ``(key, id)`` items in one request, and return the keys deleted; when
    Nautobot refuses (:data:`REFUSED_DELETE`), each alone, and one it refuses is logged,
    counted (``reason="refused"``) and left in place: it is the operator's to resolve, and it
    must not hold the cursor back for ever."""
    try:
        delete([object_id for _, object_id in items])
    except pynautobot.RequestError as exc:
        if exc.req.status_code not in REFUSED_DELETE:
            raise
        if len(items) > 1:
            return [
                k for item in items for k in _delete_one_by_one_on_refusal(delete, [item], site)
            ]
        metrics.IPAM_ERRORS.labels(target="nautobot", reason="refused").inc()
        log.warning("Nautobot refused to delete %s of site %s, left in place: %s",
                    items[0][0], site, str(exc.error)[:300])  # fmt: skip
        return []
    return [k for k, _ in items]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, pynautobot.RequestError):
        return f"Nautobot refused: {str(exc.error)[:300]}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def factory(config: NautobotConfig) -> Callable[[], NautobotIpam]:
    """A maker of adapters for ``config`` (the task makes a new one after losing the lease)."""
    return functools.partial(NautobotIpam, config)

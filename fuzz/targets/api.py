"""Admin API bodies: one request body, through the real route handlers that read a body
(``hosts.add_host``, ``hosts.update_host``, ``dns.add_record``, ``leases.release_lease``,
``sync.resolve``) with ``common.read_body``, ``WriteArgs`` and the field readers, down to the
store's own checks before a transaction (``write_checks.normalise_host``, ``store_records
.new_record``, ``store_hosts.check_update_fields``); and the first line as the
``Authorization`` header of the TCP listener's token check.

The request is a stand-in with what these handlers read (the body, the app's daemon, the match
info, no unix socket: the TCP listener's path), and the store a stand-in that runs those checks
and answers a change: no event loop, no database. A handler's coroutine never suspends here, so
it is driven by hand.

Outcomes: what the API's middleware maps to a 4xx (``BadRequest``, ``Invalid``, ``NotFound``,
``Conflict``, an ``HTTPException``), or a response. Anything else would be a 500.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine, Mapping
from ipaddress import IPv4Address
from types import SimpleNamespace
from typing import Any, TypeVar

from aiohttp import web
from multidict import CIMultiDict

from ddi.api import build_app
from ddi.api import dns as dns_api
from ddi.api import hosts as hosts_api
from ddi.api import leases as leases_api
from ddi.api import status as status_api
from ddi.api import sync as sync_api
from ddi.api.common import APP_KEY, BadRequest
from ddi.errors import Conflict, Invalid, NotFound
from ddi.ipam.models import Change, Host, Kind, Op, Record
from ddi.ipam.store_hosts import check_update_fields
from ddi.ipam.store_records import new_record
from ddi.ipam.write_checks import normalise_host, updated_host
from ddi.reloads import ReloadOutcome, ReloadResult
from fuzz.core import Target, Unexpected

T = TypeVar("T")
TOKEN = "fuzz-token"
_BEFORE = Host(
    id="h-web",
    ip=IPv4Address("198.18.0.10"),
    hostname="web",
    mac="52:54:00:00:00:01",
)


def _change(kind: Kind, object_id: str, image: Mapping[str, Any], dry_run: bool) -> Change:
    return Change(
        epoch=1,
        seq=0 if dry_run else 1,
        kind=kind,
        object_id=object_id,
        op=Op.UPSERT,
        image=dict(image),
    )


class _Store:
    """The store's checks before its transaction, and a change as its answer."""

    async def add_host(self, host: Host, *, actor: str, reason: str, dry_run: bool) -> Change:
        checked = normalise_host(dataclasses.replace(host, id=host.id or "h-new"))
        return _change(Kind.HOST, checked.id, checked.to_image(), dry_run)

    async def find_host(self, key: str) -> Host:
        if key != _BEFORE.id:
            raise NotFound("host", key)
        return _BEFORE

    async def update_host(
        self, host_id: str, fields: Mapping[str, Any], *, actor: str, reason: str, dry_run: bool
    ) -> Change | None:
        # What ``Store.update_host`` and ``store_hosts.update_host`` check before their SQL.
        check_update_fields(fields)
        checked = updated_host(_BEFORE, fields)
        return _change(Kind.HOST, checked.id, checked.to_image(), dry_run)

    async def add_record(self, record: Record, *, actor: str, reason: str, dry_run: bool) -> Change:
        checked = new_record(dataclasses.replace(record, id=record.id or "r-new"))
        return _change(Kind.RECORD, checked.id, checked.to_image(), dry_run)

    async def release_lease(
        self, ip: IPv4Address, *, actor: str, reason: str, dry_run: bool
    ) -> Change:
        return _change(Kind.LEASE, str(ip), {"ip": str(ip)}, dry_run)

    async def resolve_conflict(
        self, conflict_id: int, *, keep: object, actor: str, reason: str
    ) -> Any:
        return SimpleNamespace(to_json=lambda: {"id": conflict_id, "keep": str(keep)})


class _Daemon:
    def __init__(self) -> None:
        store = _Store()
        store_ns = SimpleNamespace(
            add_host=store.add_host,
            find_host=store.find_host,
            update_host=store.update_host,
            add_record=store.add_record,
            release_lease=store.release_lease,
            sync=SimpleNamespace(resolve_conflict=store.resolve_conflict),
        )
        config = SimpleNamespace(
            boot=SimpleNamespace(profiles={"pxe": object()}),
            site=SimpleNamespace(domain="site.example"),
        )
        self.site = SimpleNamespace(store=store_ns, config=config)
        self.services: dict[str, Any] = {}
        self.endpoints = ("tcp:127.0.0.1:0",)
        self.last_reload: ReloadResult | None = None
        self.tls_fingerprint: str | None = None

    async def reload(self, *, force: bool = False) -> ReloadResult:
        outcome = ReloadOutcome.APPLIED if force else ReloadOutcome.ORPHANS
        self.last_reload = ReloadResult(outcome=outcome, path="site.toml", at=0.0)
        return self.last_reload


class _MatchInfo(dict[str, str]):
    """A route's match info; the auth middleware reads ``route.resource`` (None: the path)."""

    route = SimpleNamespace(resource=None)


class _Request:
    """What the handlers (and the auth middleware) read off ``web.Request``."""

    def __init__(
        self, app: Mapping[Any, Any], body: bytes, match_info: dict[str, str], header: str
    ) -> None:
        self.app = app
        self._body = body
        self.match_info = _MatchInfo(match_info)
        self.transport = None
        self.cookies: dict[str, str] = {}
        self._items: dict[Any, Any] = {}
        self.path = "/v1/hosts"
        self.method = "POST"
        self.headers = CIMultiDict({"Authorization": header})
        self.query: dict[str, str] = {}

    async def read(self) -> bytes:
        return self._body

    def __getitem__(self, key: Any) -> Any:
        return self._items[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._items[key] = value


def _drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its result."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coroutine.close()
    raise Unexpected("a handler waited on something")


_DAEMON = _Daemon()
_APP = {APP_KEY: _DAEMON}
_TOKEN_CHECK = build_app(_DAEMON, token=TOKEN).middlewares[-1]  # type: ignore[arg-type]
ROUTES: tuple[tuple[Callable[[Any], Any], dict[str, str]], ...] = (
    (hosts_api.add_host, {}),
    (hosts_api.update_host, {"key": "h-web"}),
    (dns_api.add_record, {}),
    (leases_api.release_lease, {"ip": "198.18.0.100"}),
    (sync_api.resolve, {"id": "3"}),
    (status_api.reload, {}),
)
_DOCUMENTED = (BadRequest, Invalid, NotFound, Conflict, web.HTTPException)


async def _ok(request: Any) -> web.StreamResponse:
    return web.Response(text="ok")


def check(data: bytes) -> str:
    header = data.partition(b"\n")[0].decode("utf-8", "surrogateescape")
    outcomes: list[str] = []
    for handler, match_info in ROUTES:
        request = _Request(_APP, data, dict(match_info), header)
        try:
            response = _drive(handler(request))
        except _DOCUMENTED as exc:
            outcomes.append(type(exc).__name__)
            continue
        if not isinstance(response, web.StreamResponse):
            raise Unexpected(f"{handler.__name__} returned {type(response).__name__}")
        outcomes.append(str(response.status))
    request = _Request(_APP, b"", {}, header)
    checked: Coroutine[Any, Any, web.StreamResponse] = _TOKEN_CHECK(request, _ok)  # type: ignore[arg-type,assignment]
    status = _drive(checked).status
    return f"{outcomes[0]}:{status}"


def seeds() -> list[bytes]:
    return [
        b"",
        b"{}",
        b'{"ip": "198.18.0.20", "hostname": "printer", "mac": "52:54:00:aa:bb:cc", '
        b'"reason": "new printer", "actor": "alice", "dry_run": true}',
        b'{"ip": "198.18.0.21", "hostname": "pxe1", "client_id": "01:52:54:00:00:00:09", '
        b'"boot": "pxe", "dhcp": {"lease_time": 600, "gateway": "198.18.0.1", '
        b'"dns_servers": ["198.18.0.1"], "domain": "site.example", "mtu": 1400, '
        b'"routes": [{"destination": "10.0.0.0/8", "gateway": "198.18.0.1"}], '
        b'"ntp_servers": ["198.18.0.1"]}}',
        b'{"ip": "198.18.0.22", "hostname": "sw", "circuit_id": "0x657468"}',
        b'{"fields": {"hostname": "web2", "dhcp": {"mtu": null, "lease_time": 900}}, '
        b'"reason": "rename"}',
        b'{"name": "www", "rtype": "CNAME", "value": "web.site.example", "ttl": 300}',
        b'{"name": "@", "rtype": "MX", "value": "10 web.site.example"}',
        b'{"name": "_ldap._tcp", "rtype": "SRV", "value": "0 5 389 db.site.example"}',
        b'{"name": "txt", "rtype": "TXT", "value": "hello world"}',
        b'{"keep": "central", "actor": "bob", "reason": "x"}',
        b'{"force": true, "actor": "alice", "reason": "subnet lan shrunk"}',
        b"Bearer fuzz-token",
        b"[1, 2]",
        b'{"ip": 1}',
    ]


DICTIONARY = (
    b'"ip":',
    b'"hostname":',
    b'"mac":',
    b'"client_id":',
    b'"circuit_id":',
    b'"dhcp":{',
    b'"fields":{',
    b'"routes":[',
    b'"rtype":"TXT"',
    b'"value":',
    b'"actor":',
    b"NaN",
    b"1e999",
    b'"\\ud800"',
    b"[[[[[[[[[[[[",
    b"Bearer ",
    b"\xff",
)


def target() -> Target:
    return Target(
        name="api",
        doc="an admin API request body through the write handlers and the store's checks, and "
        "its first line as the Authorization header",
        check=check,
        seeds=seeds,
        allowed=(),
        max_len=16384,
        dictionary=DICTIONARY,
    )

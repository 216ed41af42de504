"""The console's read pages: overview, subnets, leases and their history, the change log, DNS
and netboot. Each answers one question an operator asks (README "Site console")."""

from __future__ import annotations

import time
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from aiohttp import web

from ddi import __version__, metrics
from ddi.api import boot as boot_api
from ddi.api import dns as dns_api
from ddi.api import sync as sync_api
from ddi.api.common import APP_KEY
from ddi.api.status import status_document
from ddi.console import history
from ddi.console.data import api_json
from ddi.console.problems import Problem, problem_of
from ddi.console.timefilter import HINT as TIME_HINT
from ddi.console.timefilter import parse_time
from ddi.console.usage6 import subnet6_usage
from ddi.errors import Invalid, NotFound
from ddi.ipam import validate
from ddi.ipam.change_query import ChangeQuery, kinds_of, subject_filter
from ddi.ipam.models import Kind, Lease, Op
from ddi.ipam.models6 import Lease6
from ddi.ipam.usage import usage_by_subnet
from ddi.web import charts, render
from ddi.web.ring import rates, series

routes = web.RouteTableDef()

MAX_QUERY = 128
"""Characters of a search or filter box: more is no name, address or MAC."""
MAX_ROWS = 500
"""Rows a listing shows; the page says when there are more."""
HISTORY_ROWS = 200


def _query(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    if len(value) > MAX_QUERY:
        raise Invalid(name, value[:32] + "...", f"at most {MAX_QUERY} characters")
    return value.strip()


async def _page(request: web.Request, template: str, heading: str, **context: Any) -> web.Response:
    status = 200
    problem = context.get("problem")
    if isinstance(problem, Problem) and problem.title == "Not found":
        status = 404
    values = {"heading": heading, "version": __version__, **context}
    return await render(request, template, values, status=status)


# --- overview ---


def _rate_charts(request: web.Request, now: float) -> list[dict[str, Any]]:
    samples = list(history.samples(request.app))
    out = []
    for key, title, unit in (
        (history.DHCP_RECEIVED, "DHCP packets received", "pkt/s"),
        (history.DNS_ANSWERED, "DNS queries answered", "q/s"),
    ):
        points = rates(samples, key)
        out.append({
            "title": title,
            "total": history.counter_total(
                metrics.DHCP_RECEIVED if key == history.DHCP_RECEIVED else metrics.DNS_QUERIES
            ),
            "latest": points[-1][1] if points else None,
            "unit": unit,
            "svg": charts.line_chart(points, now=now, span=history.SPAN, title=title, unit=unit),
        })  # fmt: skip
    return out


@routes.get("/")
async def overview(request: web.Request) -> web.Response:
    daemon = request.app[APP_KEY]
    now = time.time()
    status = await status_document(daemon)
    sync = await api_json(sync_api.status, request)
    services = []
    for name, stats in status["statistics"].items():
        services.append({"name": name, "ok": "error" not in stats, "stats": stats})
    fullest = sorted(status["pools"], key=lambda p: p["total"]["utilisation"], reverse=True)[:5]
    return await _page(
        request, "overview.html", "Overview",
        status=status, sync=sync, services=services, charts=_rate_charts(request, now),
        fullest=[{**p, "level": charts.level(p["total"]["utilisation"]),
                  "bar": charts.usage_bar(p["total"]["utilisation"], label=p["name"])}
                 for p in fullest],
    )  # fmt: skip


# --- subnets ---


@routes.get("/subnets")
async def subnets(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    index = site.index
    now = time.time()
    hosts = list(index.hosts())
    leases = list(index.leases())
    rows: list[dict[str, Any]] = []
    subnets4 = index.subnets()
    for subnet, usage in zip(subnets4, usage_by_subnet(subnets4, hosts, leases, now), strict=True):
        for pool in usage.pools:
            fraction = pool.utilisation
            rows.append({
                "family": "IPv4", "subnet": subnet.name, "cidr": str(subnet.cidr),
                "pool": f"{pool.start} - {pool.end}", "size": pool.size,
                "taken": pool.size - pool.free, "free": pool.free, "fraction": fraction,
                "level": charts.level(fraction),
                "bar": charts.usage_bar(fraction, label=f"{subnet.name} {pool.start}"),
            })  # fmt: skip
    leases6 = list(index.leases6())
    for subnet6 in index.subnets6():
        for pool6 in subnet6_usage(subnet6, hosts, leases6, now):
            fraction = pool6.utilisation
            label = (f"{pool6.start} - {pool6.end}" if pool6.kind == "na"
                     else f"{pool6.start} as {pool6.end} prefixes")  # fmt: skip
            rows.append({
                "family": "IPv6" if pool6.kind == "na" else "IPv6 PD", "subnet": subnet6.name,
                "cidr": str(subnet6.cidr), "pool": label, "size": pool6.size,
                "taken": pool6.used + pool6.reserved, "free": pool6.size - pool6.used
                - pool6.reserved, "fraction": fraction, "level": charts.level(fraction),
                "bar": charts.usage_bar(fraction, label=f"{subnet6.name} {pool6.start}"),
            })  # fmt: skip
    # Nearly full first: what the page is for.
    rows.sort(key=lambda r: (-r["fraction"], r["subnet"], r["pool"]))
    samples = list(history.samples(request.app))
    trend = [
        {
            "subnet": subnet.name,
            "svg": charts.line_chart(
                series(samples, history.POOL + subnet.name), now=now,
                span=history.SPAN, title=f"{subnet.name} utilisation", unit="", ceiling=1.0,
            ),
        }
        for subnet in index.subnets()
    ]  # fmt: skip
    return await _page(request, "subnets.html", "Subnets", rows=rows, trend=trend)


# --- leases ---


def lease_matches(query: str, leases: list[Lease], leases6: list[Lease6]) -> list[dict[str, Any]]:
    """The leases the search box's ``query`` finds: by IPv4 or IPv6 address (a delegated
    prefix holding it), MAC (any spelling ``parse_mac`` takes), else a part of the name."""
    rows: list[dict[str, Any]] = []
    needle = query.lower()
    ip4: IPv4Address | None = None
    ip6: IPv6Address | None = None
    mac: str | None = None
    try:
        ip4 = IPv4Address(query)
    except ValueError:
        try:
            ip6 = IPv6Address(query)
        except ValueError:
            try:
                mac = validate.parse_mac(query)
            except Invalid:
                mac = None
    for lease in leases:
        if (
            not query
            or lease.ip == ip4
            or (mac is not None and lease.mac == mac)
            or (ip4 is None and mac is None and needle in (lease.hostname or "").lower())
        ):
            rows.append({"family": "IPv4", "address": str(lease.ip), "mac": lease.mac,
                         "hostname": lease.hostname, "state": lease.state.value,
                         "end": lease.end, "subnet": lease.subnet})  # fmt: skip
    for lease6 in leases6:
        if (
            not query
            or (ip6 is not None and ip6 in lease6.prefix)
            or (mac is not None and lease6.mac == mac)
            or (ip4 is None and ip6 is None and mac is None
                and needle in (lease6.hostname or "").lower())
        ):  # fmt: skip
            rows.append({"family": "IPv6", "address": str(lease6.prefix), "mac": lease6.mac,
                         "hostname": lease6.hostname, "state": lease6.state.value,
                         "end": lease6.end, "subnet": lease6.subnet})  # fmt: skip
    return rows


@routes.get("/leases")
async def leases(request: web.Request) -> web.Response:
    index = request.app[APP_KEY].site.index
    problem = None
    rows: list[dict[str, Any]] = []
    try:
        query = _query(request, "q")
    except Invalid as exc:
        query, problem = "", problem_of(exc)
    if problem is None:
        rows = lease_matches(query, list(index.leases()), list(index.leases6()))
        rows.sort(key=lambda r: (r["state"] != "bound", r["family"], r["address"]))
    return await _page(
        request, "leases.html", "Leases", query=query, rows=rows[:MAX_ROWS],
        total=len(rows), problem=problem, now=time.time(),
    )  # fmt: skip


@routes.get("/leases/history")
async def lease_history(request: web.Request) -> web.Response:
    store = request.app[APP_KEY].site.store
    now = time.time()
    entries: list[dict[str, Any]] = []
    problem = None
    form = {"subject": "", "since": "", "until": ""}
    try:
        form = {name: _query(request, name) for name in form}
        since = parse_time("since", form["since"], now)
        until = parse_time("until", form["until"], now)
        if form["subject"]:
            query = ChangeQuery(
                kinds=(Kind.LEASE, Kind.HOST), subject=subject_filter(form["subject"]),
                since=since, until=until, limit=HISTORY_ROWS,
            )  # fmt: skip
            for change in await store.find_changes(query):
                image = change.image or {}
                entries.append({
                    "time": change.time, "kind": change.kind.value, "actor": change.actor,
                    "state": image.get("state")
                    or ("reserved" if change.op is Op.UPSERT else "unreserved"),
                    "ip": image.get("ip"), "mac": image.get("mac"),
                    "hostname": image.get("hostname"), "end": image.get("end"),
                })  # fmt: skip
    except (Invalid, NotFound) as exc:
        problem = problem_of(exc)
    return await _page(
        request, "history.html", "Lease history", form=form, entries=entries,
        problem=problem, time_hint=TIME_HINT,
    )  # fmt: skip


# --- change log ---

CHANGE_FILTERS = ("kind", "object", "actor", "op", "since", "until")


@routes.get("/changes")
async def changes(request: web.Request) -> web.Response:
    store = request.app[APP_KEY].site.store
    now = time.time()
    form = dict.fromkeys(CHANGE_FILTERS, "")
    problem = None
    entries: list[Any] = []
    try:
        form = {name: _query(request, name) for name in CHANGE_FILTERS}
        if form["op"] and form["op"] not in {o.value for o in Op}:
            raise Invalid("op", form["op"], "not one of upsert, delete")
        query = ChangeQuery(
            kinds=kinds_of([form["kind"]]) if form["kind"] else (),
            object_id=form["object"] or None,
            actor=form["actor"] or None,
            op=Op(form["op"]) if form["op"] else None,
            since=parse_time("since", form["since"], now),
            until=parse_time("until", form["until"], now),
            limit=HISTORY_ROWS,
        )
        entries = list(reversed(await store.find_changes(query)))
    except Invalid as exc:
        problem = problem_of(exc)
    return await _page(
        request, "changes.html", "Change log", form=form, entries=entries, problem=problem,
        kinds=[k.value for k in Kind], ops=[o.value for o in Op], time_hint=TIME_HINT,
    )  # fmt: skip


# --- DNS ---


@routes.get("/dns")
async def dns(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    zones = await api_json(dns_api.zones, request)
    records = sorted(await site.store.records(), key=lambda r: (r.name, r.rtype, r.value))
    names = sorted(
        ((h.hostname, str(h.ip) if h.ip else "", str(h.ip6) if h.ip6 else "")
         for h in site.index.hosts()),
    )  # fmt: skip
    return await _page(
        request, "dns.html", "DNS", zones=zones, records=records[:MAX_ROWS],
        records_total=len(records), names=names[:MAX_ROWS], names_total=len(names),
        domain=site.config.site.domain,
    )  # fmt: skip


# --- netboot ---


def funnel(profiles: list[str]) -> list[dict[str, Any]]:
    """Per boot profile: offers carrying its options, fetches started and completed."""
    offered = history.counter_by(metrics.BOOT_OFFERS, "profile")
    started = history.counter_by(metrics.BOOT_FETCHES_STARTED, "profile")
    completed = history.counter_by(metrics.BOOT_FETCHES_COMPLETED, "profile")
    names = sorted(set(profiles) | set(offered) | set(started) | set(completed))
    rows = []
    for name in names:
        counts = [int(c.get(name, 0)) for c in (offered, started, completed)]
        row: dict[str, Any] = {
            "profile": name, "offered": counts[0], "started": counts[1], "completed": counts[2],
        }  # fmt: skip
        # Where clients stop: offered but never fetched, or fetched but never finished.
        lost_fetch = counts[0] - counts[1]
        lost_finish = counts[1] - counts[2]
        row["note"] = (
            f"{lost_fetch} offered but no fetch" if lost_fetch > 0
            else f"{lost_finish} fetches not completed" if lost_finish > 0
            else "no loss"
        )  # fmt: skip
        rows.append(row)
    return rows


@routes.get("/boot")
async def boot(request: web.Request) -> web.Response:
    site = request.app[APP_KEY].site
    profiles = sorted(site.config.boot.profiles)
    explained = None
    problem = None
    # A fresh form asks as a PXE client would: the page is about hosts that tried to netboot.
    form = {"mac": "", "arch": "", "vendor_class": "PXEClient"}
    try:
        if "mac" in request.query:
            form = {name: _query(request, name) for name in form}
        if form["mac"]:
            validate.parse_mac(form["mac"])
            explained = await api_json(boot_api.explain, request)
    except Exception as exc:
        problem = problem_of(exc)
        if problem is None:
            raise
    return await _page(
        request, "boot.html", "Netboot", funnel=funnel(profiles), form=form,
        explained=explained, problem=problem,
    )  # fmt: skip

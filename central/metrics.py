"""Every Prometheus metric ``ddi-central`` exports, in the collector's own registry.

The edge's metrics (``ddi.metrics``) live in prometheus_client's default registry; central
never renders that one, so the edge's gauges (``ddi_sync_link_up`` and the rest) cannot show
up on central's ``/metrics`` and fire edge alerts there, whatever central happens to import.
This is the collector's one module that imports ``prometheus_client`` (as ``ddi.metrics`` is
the edge's). Naming follows the edge's: ``ddi_<area>_<what>_<unit>``, bounded label values.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

REGISTRY = CollectorRegistry()
# The same process and platform series as the edge's default registry carries.
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)


def render() -> tuple[bytes, str]:
    """The exposition text of central's metrics, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


BATCHES = Counter(
    "ddi_sync_central_batches_total",
    "Batches and snapshot pages central received, by result",
    ["result"],
    registry=REGISTRY,
)
REFUSED = Counter(
    "ddi_sync_central_refused_total",
    "Messages central refused, by reason",
    ["reason"],
    registry=REGISTRY,
)
ENTRIES = Counter(
    "ddi_sync_central_entries_applied_total",
    "Change-log entries central applied",
    registry=REGISTRY,
)
BUSY = Counter(
    "ddi_sync_central_busy_total",
    "Requests answered 503 because max_unauthenticated requests awaited authentication",
    registry=REGISTRY,
)

# The IPAM sync (central.nautobot.task); ``target`` is the IPAM ("nautobot").
IPAM_LAG = Gauge(
    "ddi_central_nautobot_lag_entries",
    "Feed entries between the IPAM sync's cursor and the feed's head",
    ["target"],
    registry=REGISTRY,
)
IPAM_APPLIED = Counter(
    "ddi_central_nautobot_applied_total",
    "Feed entries the IPAM sync applied (the IPAM confirmed every write they needed)",
    ["target"],
    registry=REGISTRY,
)
IPAM_RECONCILES = Counter(
    "ddi_central_nautobot_reconciles_total",
    "Full comparisons of the IPAM with central's objects the IPAM sync completed",
    ["target"],
    registry=REGISTRY,
)
IPAM_WRITES = Counter(
    "ddi_central_nautobot_writes_total",
    "Objects the IPAM sync created, updated or deleted in the IPAM",
    ["target"],
    registry=REGISTRY,
)
IPAM_ERRORS = Counter(
    "ddi_central_nautobot_errors_total",
    "IPAM sync failures by reason: ipam (unreachable or refused; retried), lost_lease,"
    " internal (the database or a bug; retried), unmapped (a feed image the mapping could"
    " not read; skipped), refused (an object the IPAM refuses as invalid, or a deletion it will"
    " not do; skipped)",
    ["target", "reason"],
    registry=REGISTRY,
)
IPAM_LEADER = Gauge(
    "ddi_central_nautobot_leader",
    "1 while this collector holds the IPAM sync's lease (runs the task)",
    ["target"],
    registry=REGISTRY,
)

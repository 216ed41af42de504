"""Every Prometheus metric ddi exports, defined once (STYLE.md R14).

Only this module imports ``prometheus_client``. Names are ``ddi_<area>_<what>_<unit>``;
counters end in ``_total``; durations are ``_seconds`` histograms; label values are bounded
(reason enums, message types, route templates, subnet names), never a MAC, IP or hostname.

The metrics live in the default registry, which also carries the process and platform
collectors (``process_*``, ``python_*``). ``/metrics`` on the admin API serves ``render()``.

Each area adds its metrics in its own block headed ``# --- <area> ---`` below.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "Counter", "Gauge", "Histogram", "render"]


def render() -> tuple[bytes, str]:
    """The exposition text of every registered metric, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# --- process ---
INTERNAL_ERRORS = Counter(
    "ddi_internal_errors_total",
    "Bugs caught at a per-packet/per-request boundary (logged with traceback), by area",
    ["area"],
)
BUILD = Info("ddi_build", "Version of the running daemon")
STARTED = Gauge("ddi_start_time_seconds", "Unix time the daemon started serving")
RELOADS = Counter("ddi_config_reloads_total", "SIGHUP config reloads, by result", ["result"])

# --- api ---
API_REQUESTS = Counter(
    "ddi_api_requests_total",
    "Admin API requests, by method, route template and status code",
    ["method", "route", "status"],
)
API_REQUEST_DURATION = Histogram(
    "ddi_api_request_duration_seconds",
    "Admin API request handling time, by route template",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

# --- store ---
STORE_CHANGES = Counter(
    "ddi_store_changes_total",
    "Committed change-log entries, by object kind and operation",
    ["kind", "op"],
)
STORE_LAST_SEQ = Gauge("ddi_store_last_seq", "Sequence number of the last committed change")
STORE_EPOCH = Gauge("ddi_store_epoch", "Current change-log epoch of this site")
STORE_OBJECTS = Gauge(
    "ddi_store_objects", "Objects in the store (leases: all states), by kind", ["kind"]
)

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
    disable_created_metrics,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "Counter", "Gauge", "Histogram", "render"]


def render() -> tuple[bytes, str]:
    """The exposition text of every registered metric, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# The ``*_created`` series double the output and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# --- process ---
INTERNAL_ERRORS = Counter(
    "ddi_internal_errors_total",
    "Bugs caught at a per-packet/per-request boundary (logged with traceback), by area",
    ["area"],
)
BUILD = Info("ddi_build", "Version of the running daemon")
STARTED = Gauge("ddi_start_time_seconds", "Unix time the daemon started serving")
RELOADS = Counter(
    "ddi_config_reloads_total", "Config reloads (SIGHUP, ddi reload), by result", ["result"]
)
RELOAD_SUCCESS = Gauge(
    "ddi_reload_last_success", "1 when the last config reload was applied, 0 when refused"
)
RELOAD_TIME = Gauge("ddi_reload_last_time_seconds", "Unix time of the last config reload")
RELOAD_ORPHANS = Gauge(
    "ddi_reload_last_orphans",
    "Reservations and active leases the last reload would orphan (refused) or did (forced)",
)

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
LOG_TRIMMED = Counter(
    "ddi_store_log_trimmed_total", "Change-log entries deleted by the local retention ([ipam])"
)
STORE_OBJECTS = Gauge(
    "ddi_store_objects", "Objects in the store (leases: all states), by kind", ["kind"]
)

# --- sync ---
SYNC_LINK_UP = Gauge("ddi_sync_link_up", "1 while the last exchange with central succeeded")
SYNC_LAST_SUCCESS = Gauge(
    "ddi_sync_last_success_timestamp_seconds", "Unix time of the last successful exchange"
)
SYNC_BACKLOG = Gauge(
    "ddi_sync_backlog_entries", "Change-log entries central has not acknowledged yet"
)
SYNC_OLDEST_AGE = Gauge(
    "ddi_sync_oldest_unsynced_age_seconds", "Age of the oldest unacknowledged change (0: none)"
)
SYNC_BATCHES = Counter(
    "ddi_sync_batches_total",
    "Batches and snapshot pages sent to central, by result",
    ["result"],
)
SYNC_ENTRIES = Counter("ddi_sync_entries_sent_total", "Change-log entries central acknowledged")
SYNC_HELD_BACK = Counter(
    "ddi_sync_held_back_total",
    "IPv6 entries and objects held back from a central of the previous version",
)
SYNC_CONFLICTS = Gauge(
    "ddi_sync_conflicts", "Unresolved conflicts between central-owned and edge state"
)
SYNC_DOWN_APPLIED = Counter(
    "ddi_sync_down_entries_total", "Down-log entries from central, by result", ["result"]
)
SYNC_HOUSEKEEPING = Counter(
    "ddi_sync_housekeeping_total",
    "Outbox coalescing runs, epoch roll-overs and trims of acknowledged history",
    ["action"],
)

# --- boot ---
BOOT_OFFERS = Counter(
    "ddi_boot_offers_total",
    "DHCP offers carrying boot options (the netboot funnel's first step), by profile and rule",
    ["profile", "rule"],
)
BOOT_FETCHES_STARTED = Counter(
    "ddi_boot_fetches_started_total",
    "Boot file and iPXE script fetches started, by protocol (tftp, http) and profile",
    ["protocol", "profile"],
)
BOOT_FETCHES_COMPLETED = Counter(
    "ddi_boot_fetches_completed_total",
    "Boot file and iPXE script fetches sent in full, by protocol (tftp, http) and profile",
    ["protocol", "profile"],
)
RA_EVENTS = Counter(
    "ddi_ra_events_total",
    "Router advertisement service events by interface: sent, solicit, solicit_merged, "
    "solicit_invalid, no_link_local, send_error, internal_error",
    ["interface", "event"],
)
BOOT_TFTP_REQUESTS = Counter(
    "ddi_boot_tftp_requests_total",
    "TFTP requests by outcome (completed, timeout, client_error, refusal reasons, malformed)",
    ["outcome"],
)
BOOT_TFTP_ACTIVE = Gauge("ddi_boot_tftp_active_transfers", "TFTP transfers in progress")
BOOT_TFTP_SENT_BYTES = Counter("ddi_boot_tftp_sent_bytes_total", "File bytes sent by TFTP")
BOOT_TFTP_RETRANSMISSIONS = Counter(
    "ddi_boot_tftp_retransmissions_total", "TFTP windows sent again after a timeout"
)
BOOT_HTTP_REQUESTS = Counter(
    "ddi_boot_http_requests_total",
    "HTTP boot server requests, by kind (file, script) and status code",
    ["kind", "status"],
)

# --- dns ---
DNS_QUERIES = Counter(
    "ddi_dns_queries_total",
    "DNS queries answered, by query type and response code (cache hits included)",
    ["qtype", "rcode"],
)
DNS_DECISIONS = Counter(
    "ddi_dns_decisions_total",
    "DNS engine decisions for decoded queries (cache misses), by reason",
    ["reason"],
)
DNS_CACHE_LOOKUPS = Counter(
    "ddi_dns_cache_lookups_total", "Answer-cache lookups before decode, by result", ["result"]
)
DNS_DROPPED = Counter("ddi_dns_dropped_total", "DNS messages dropped, by reason", ["reason"])
DNS_TRANSFERS = Counter(
    "ddi_dns_transfers_total", "Zone transfers served, by type and result", ["type", "result"]
)
DNS_NOTIFIES = Counter(
    "ddi_dns_notifies_total", "NOTIFY messages to secondaries, by result", ["result"]
)
DNS_FORWARDED = Counter(
    "ddi_dns_forwarded_total", "Queries forwarded upstream, by result", ["result"]
)
DNS_FORWARDER_TIMEOUTS = Counter(
    "ddi_dns_forwarder_timeouts_total", "Forwarded queries no upstream answered in time (SERVFAIL)"
)
DNS_TSIG_FAILURES = Counter(
    "ddi_dns_tsig_failures_total", "Signed messages refused, by TSIG error", ["error"]
)
DNS_NAME_COLLISIONS = Counter(
    "ddi_dns_name_collisions_total",
    "Lease hostnames given no record because a reservation or static record owns the name",
)
DNS_ZONE_SERIAL = Gauge("ddi_dns_zone_serial", "Current SOA serial, by zone", ["zone"])
DNS_TCP_CONNECTIONS = Gauge("ddi_dns_tcp_connections", "Open DNS TCP connections")

# --- dhcp ---
DHCP_RECEIVED = Counter(
    "ddi_dhcp_packets_received_total",
    "DHCP packets received, by message type (malformed ones are counted as dropped)",
    ["message_type"],
)
DHCP_SENT = Counter(
    "ddi_dhcp_packets_sent_total", "DHCP replies sent, by message type", ["message_type"]
)
DHCP_DROPPED = Counter(
    "ddi_dhcp_dropped_total",
    "DHCP packets given no reply, by reason (malformed, overload, pool exhausted, ...)",
    ["reason"],
)
DHCP_DECISIONS = Counter(
    "ddi_dhcp_decisions_total",
    "Replies and lease commits by the engine rule that made them",
    ["rule"],
)
DHCP_LEASES = Gauge("ddi_dhcp_leases", "Leases in the store, by state", ["state"])
DHCP_POOL_SIZE = Gauge("ddi_dhcp_pool_addresses", "Addresses in a subnet's pools", ["subnet"])
DHCP_POOL_USED = Gauge(
    "ddi_dhcp_pool_used_addresses",
    "Pool addresses leased, quarantined or reserved, by subnet",
    ["subnet"],
)
DHCP_POOL_UTILISATION = Gauge(
    "ddi_dhcp_pool_utilisation_ratio", "Used over total pool addresses, by subnet", ["subnet"]
)
DHCP_QUEUE_DEPTH = Gauge("ddi_dhcp_queue_depth", "Received DHCP packets waiting for the engine")
DHCP_COMMIT_PENDING = Gauge(
    "ddi_dhcp_commit_pending", "Leases waiting to be committed before their reply goes out"
)
DHCP_COMMIT_BATCH = Histogram(
    "ddi_dhcp_commit_batch_size",
    "Leases per group commit (one transaction, one fsync)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
DHCP_COMMIT_LATENCY = Histogram(
    "ddi_dhcp_lease_commit_seconds",
    "Group-commit latency, from a lease's submission to its fsync",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DHCP_EXPIRED = Counter("ddi_dhcp_leases_expired_total", "Leases reclaimed after their end")

# --- dhcp6 ---
DHCP6_RECEIVED = Counter(
    "ddi_dhcp6_packets_received_total",
    "DHCPv6 messages received, by the client's message type (malformed ones are dropped)",
    ["message_type"],
)
DHCP6_SENT = Counter(
    "ddi_dhcp6_packets_sent_total", "DHCPv6 replies sent, by message type", ["message_type"]
)
DHCP6_DROPPED = Counter(
    "ddi_dhcp6_dropped_total",
    "DHCPv6 messages given no reply, by reason (malformed, overload, no subnet, ...)",
    ["reason"],
)
DHCP6_DECISIONS = Counter(
    "ddi_dhcp6_decisions_total", "DHCPv6 replies by the engine rule that made them", ["rule"]
)
DHCP6_LEASES = Gauge("ddi_dhcp6_leases", "DHCPv6 leases in the store, by kind and state",
                     ["kind", "state"])  # fmt: skip
DHCP6_QUEUE_DEPTH = Gauge("ddi_dhcp6_queue_depth", "Received DHCPv6 messages waiting")
DHCP6_COMMIT_PENDING = Gauge(
    "ddi_dhcp6_commit_pending", "DHCPv6 leases waiting to be committed before their reply"
)
DHCP6_COMMIT_BATCH = Histogram(
    "ddi_dhcp6_commit_batch_size",
    "DHCPv6 leases per group commit (one transaction, one fsync)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
DHCP6_COMMIT_LATENCY = Histogram(
    "ddi_dhcp6_lease_commit_seconds",
    "DHCPv6 group-commit latency, from a lease's submission to its fsync",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DHCP6_EXPIRED = Counter("ddi_dhcp6_leases_expired_total", "DHCPv6 leases reclaimed after their end")

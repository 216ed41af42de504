"""The metrics of the responder's results, counted the same way by every transport."""

from __future__ import annotations

import logging

from ddi import metrics
from ddi.dns.responder import Client, Drop, Forward, Reply, Result, Transfer

log = logging.getLogger("ddi.dns.server")  # the service's logger: one name for its lines


def count(result: Result, client: Client) -> None:
    """Count one result (a cache hit included: the UDP loops count theirs in bulk instead)."""
    match result:
        case Reply(qtype=qtype, rcode=rcode, decision=decision, tsig_failure=failure):
            if decision is not None:
                metrics.DNS_DECISIONS.labels(reason=decision.value).inc()
            if qtype is not None:
                metrics.DNS_QUERIES.labels(qtype=qtype, rcode=rcode).inc()
            if failure is not None:
                metrics.DNS_TSIG_FAILURES.labels(error=failure.error.name).inc()
                log.info(
                    "TSIG %s from %s (key %s)",
                    failure.error.name,
                    client.peer,
                    failure.record.key_name,
                )
        case Drop(reason=reason, decision=decision):
            if decision is not None:
                metrics.DNS_DECISIONS.labels(reason=decision.value).inc()
            metrics.DNS_DROPPED.labels(reason=reason.value).inc()
        case Forward(decision=reason):
            metrics.DNS_DECISIONS.labels(reason=reason.value).inc()
        case Transfer(decision=transfer):
            metrics.DNS_DECISIONS.labels(reason=transfer.reason.value).inc()

"""Central's decision on each batch and snapshot page a site sends, from the message and what
central knows about the site.

Rules:
* ``admit`` decides on an upload's signed header before its body is read: an unknown site,
  another site's header, another version, a body over the limit or a bad signature is refused
  there, so nothing unauthenticated is ever read past its headers.
* ``check`` decides, from the batch and central's state for the site, one of ``Apply``,
  ``Duplicate``, ``Gap``, ``NeedSnapshot`` or ``Refuse``. It reads no clock, no database
  and no socket: the caller looks the state up and carries the decision out.

Sequencing (per site, within one epoch): central keeps ``applied_seq``, the ``to_seq`` of the
last batch it applied, and that batch's ``sha256``. The next batch must start at
``applied_seq + 1``; entries inside a batch need not be contiguous (the edge coalesces
superseded entries) but are strictly increasing and inside ``[from_seq, to_seq]``. A batch that
starts later is a gap; the exact last batch again is a duplicate (its response was lost); any
other batch wholly at or below ``applied_seq``, or from an older epoch, is a replay. A newer
epoch means the edge started over: central needs a snapshot first.
"""

from __future__ import annotations

from dataclasses import dataclass

from ddi.ipam.models import Kind, Op
from sync.protocol import (
    PROTOCOL_VERSION,
    Apply,
    Batch,
    Decision,
    Duplicate,
    Gap,
    NeedSnapshot,
    Refuse,
    RefuseReason,
    SignedHeader,
    SnapshotPage,
)
from sync.signing import digest, verify


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteState:
    """What central knows about a site when a message from it arrives."""

    site: str
    public_key: bytes
    """Raw 32-byte Ed25519 public key enrolled for the site."""
    epoch: int = 0
    """Epoch of the applied entries; 0 before the first batch or snapshot."""
    applied_seq: int = 0
    last_sha256: str = ""
    """``sha256`` of the last applied batch (a retransmission of it is a duplicate)."""
    snapshot_epoch: int = 0
    """Epoch of a snapshot being received (0: none)."""
    snapshot_as_of: int = 0
    snapshot_next_page: int = 0


def _refuse_common(
    version: int, claimed_site: str, site: str, state: SiteState | None
) -> Refuse | None:
    if state is None:
        return Refuse(reason=RefuseReason.UNKNOWN_SITE, detail=site)
    if claimed_site != site or state.site != site:
        return Refuse(reason=RefuseReason.WRONG_SITE, detail=f"{claimed_site} sent to {site}")
    if version != PROTOCOL_VERSION:
        return Refuse(reason=RefuseReason.VERSION, detail=f"version {version}")
    return None


def admit(
    signed: SignedHeader, state: SiteState | None, *, site: str, type_: str, max_body: int
) -> Refuse | None:
    """Why central refuses an upload of ``type_`` for ``site`` from its signed header alone,
    or None when its body may be read (at most ``signed.length <= max_body`` bytes)."""
    refused = _refuse_common(signed.version, signed.site, site, state)
    if refused is not None:
        return refused
    assert state is not None
    if signed.type != type_:
        return Refuse(reason=RefuseReason.MALFORMED, detail=f"type must be {type_!r}")
    if signed.length > max_body:
        detail = f"body of {signed.length} bytes over the limit of {max_body}"
        return Refuse(reason=RefuseReason.TOO_LARGE, detail=detail)
    if not verify(state.public_key, signed.fields, signed.sig):
        return Refuse(reason=RefuseReason.BAD_SIGNATURE)
    return None


def _digest_matches(value: object, sha256: str) -> bool:
    try:
        return digest(value) == sha256
    except (ValueError, TypeError, RecursionError):
        # Not canonical JSON (NaN, a lone surrogate): no digest of it can match.
        return False


def _check_entries(batch: Batch) -> str | None:
    """Why the entries do not fit the batch header, or None when they do."""
    if batch.to_seq < batch.from_seq:
        return "to_seq before from_seq"
    previous = batch.from_seq - 1
    for i, entry in enumerate(batch.entries):
        seq, epoch = entry.get("seq"), entry.get("epoch")
        if isinstance(seq, bool) or not isinstance(seq, int) or epoch != batch.epoch:
            return f"entries[{i}]: seq/epoch do not match the batch"
        if not previous < seq <= batch.to_seq:
            return f"entries[{i}]: seq {seq} out of order or outside the batch"
        if entry.get("kind") not in Kind.__members__.values():
            return f"entries[{i}]: unknown kind"
        if entry.get("op") not in Op.__members__.values():
            return f"entries[{i}]: unknown op"
        if not isinstance(entry.get("object_id"), str) or not isinstance(entry.get("image"), dict):
            return f"entries[{i}]: object_id/image missing"
        when = entry.get("time", 0.0)
        if isinstance(when, bool) or not isinstance(when, int | float) or abs(when) > 1e12:
            return f"entries[{i}]: time must be a unix time"
        previous = seq
    return None


def check(batch: Batch, state: SiteState | None, *, site: str) -> Decision:
    """Central's decision on ``batch``, posted for ``site``, given the site's state.

    Returns:
        ``Refuse`` for an unknown site, a batch of another site, a bad signature or digest,
        bad structure, or a replay; otherwise the sequencing decision.
    """
    refused = _refuse_common(batch.version, batch.site, site, state)
    if refused is not None:
        return refused
    assert state is not None
    if not verify(state.public_key, batch.header(), batch.sig):
        return Refuse(reason=RefuseReason.BAD_SIGNATURE)
    if not _digest_matches(list(batch.entries), batch.sha256):
        return Refuse(reason=RefuseReason.BAD_DIGEST)
    problem = _check_entries(batch)
    if problem is not None:
        return Refuse(reason=RefuseReason.MALFORMED, detail=problem)
    if batch.epoch < state.epoch:
        return Refuse(reason=RefuseReason.REPLAY, detail=f"epoch {batch.epoch} < {state.epoch}")
    if state.epoch == 0:
        # Nothing applied yet: only a log that starts at the beginning can be replayed here.
        return Apply() if batch.from_seq == 1 else NeedSnapshot()
    if batch.epoch > state.epoch:
        return NeedSnapshot()
    if batch.to_seq <= state.applied_seq:
        if batch.to_seq == state.applied_seq and batch.sha256 == state.last_sha256:
            return Duplicate()
        return Refuse(reason=RefuseReason.REPLAY, detail=f"to_seq {batch.to_seq} already applied")
    if batch.from_seq != state.applied_seq + 1:
        return Gap(expected=state.applied_seq + 1)
    return Apply()


def check_snapshot_page(page: SnapshotPage, state: SiteState | None, *, site: str) -> Decision:
    """Central's decision on a snapshot page.

    Returns:
        ``Apply`` for the next page (page 0 also restarts an abandoned snapshot),
        ``Duplicate`` for a page already staged or a snapshot already complete,
        ``Gap(expected=next page)`` for a page ahead, ``Refuse`` for bad input or an old epoch.
    """
    refused = _refuse_common(page.version, page.site, site, state)
    if refused is not None:
        return refused
    assert state is not None
    if not verify(state.public_key, page.header(), page.sig):
        return Refuse(reason=RefuseReason.BAD_SIGNATURE)
    if not _digest_matches([dict(o) for o in page.objects], page.sha256):
        return Refuse(reason=RefuseReason.BAD_DIGEST)
    if page.epoch < state.epoch:
        return Refuse(reason=RefuseReason.REPLAY, detail=f"epoch {page.epoch} < {state.epoch}")
    if page.epoch == state.epoch:
        # This epoch's snapshot is complete (deltas may already follow it).
        return Duplicate()
    if page.page == 0:
        same = (state.snapshot_epoch, state.snapshot_as_of) == (page.epoch, page.as_of_seq)
        return Duplicate() if same and state.snapshot_next_page > 0 else Apply()
    if (state.snapshot_epoch, state.snapshot_as_of) != (page.epoch, page.as_of_seq):
        return Gap(expected=0)
    if page.page < state.snapshot_next_page:
        return Duplicate()
    if page.page > state.snapshot_next_page:
        return Gap(expected=state.snapshot_next_page)
    return Apply()

"""The sync wire format: signed batches of change-log entries, snapshot pages, and signed
messages in either direction, plus the pure decision central takes on each batch.

Rules:
* Every message is canonical JSON: keys sorted, no insignificant whitespace, UTF-8, no NaN.
  ``decode(encode(x)) == x`` and ``encode`` is a function of the value alone, so both ends
  hash and sign the same bytes.
* A batch carries ``sha256`` (hex) of the canonical bytes of its ``entries`` and ``sig``
  (base64 Ed25519) over the canonical bytes of its header: type, version, site, epoch,
  ``from_seq``, ``to_seq`` and ``sha256``. The ``type`` field separates the signature
  domains, so a batch signature never verifies as a snapshot page or a down message.
* Sites sign what they send up with their own key; central signs what it sends down
  (the per-site down log) with its key.
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

import base64
import binascii
import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ddi.errors import SyncRefused
from ddi.ipam.models import Kind, Op

PROTOCOL_VERSION = 1
JsonObject = Mapping[str, Any]

BATCH_TYPE = "ddi-sync-batch"
SNAPSHOT_TYPE = "ddi-sync-snapshot"
DOWN_TYPE = "ddi-sync-down"
CONFLICTS_TYPE = "ddi-sync-conflicts"
REQUEST_TYPE = "ddi-sync-request"
AUTH_HEADER = "X-DDI-Site-Auth"
MAX_CLOCK_SKEW = 300.0
"""Seconds a signed request's time may differ from central's clock."""

KIND_ORDER: tuple[Kind, ...] = (Kind.SUBNET, Kind.HOST, Kind.RECORD, Kind.LEASE)
"""The order snapshot pages walk the objects in: (kind in this order, object id)."""


class RefuseReason(enum.StrEnum):
    """Why central will not apply a message (bounded: used as a metric label)."""

    UNKNOWN_SITE = "unknown_site"
    WRONG_SITE = "wrong_site"
    BAD_SIGNATURE = "bad_signature"
    BAD_DIGEST = "bad_digest"
    MALFORMED = "malformed"
    VERSION = "version"
    REPLAY = "replay"
    STALE = "stale"


# --- canonical JSON and keys ---


def canonical(value: Any) -> bytes:
    """The canonical bytes of a JSON value: sorted keys, no spaces, UTF-8, no NaN/Infinity.

    Raises:
        ValueError: ``value`` holds a float that JSON cannot carry (NaN, Infinity).
        TypeError: ``value`` holds something that is not JSON.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def digest(value: Any) -> str:
    """Hex SHA-256 of ``canonical(value)``."""
    return hashlib.sha256(canonical(value)).hexdigest()


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8).

    Raises:
        ValueError: not a PEM Ed25519 private key.
    """
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo), or 32 raw bytes in base64.

    Raises:
        ValueError: neither form, or not Ed25519.
    """
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("neither PEM nor base64") from None
    if len(raw) != 32:
        raise ValueError("a raw Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def _sign(key: Ed25519PrivateKey, header: JsonObject) -> str:
    return base64.b64encode(key.sign(canonical(header))).decode("ascii")


def _verify(public_key: bytes | Ed25519PublicKey, header: JsonObject, sig: str) -> bool:
    try:
        raw_sig = base64.b64decode(sig, validate=True)
        key = (
            public_key
            if isinstance(public_key, Ed25519PublicKey)
            else Ed25519PublicKey.from_public_bytes(public_key)
        )
        key.verify(raw_sig, canonical(header))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


# --- field readers for peer input: each failure is SyncRefused(malformed) ---


def _malformed(detail: str) -> SyncRefused:
    return SyncRefused(RefuseReason.MALFORMED.value, detail)


def _int(obj: JsonObject, name: str, lo: int = 0) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise _malformed(f"{name} must be an integer >= {lo}")
    return value


def _str(obj: JsonObject, name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise _malformed(f"{name} must be a string")
    return value


def _objects(obj: JsonObject, name: str) -> tuple[JsonObject, ...]:
    value = obj.get(name)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _malformed(f"{name} must be an array of objects")
    return tuple(value)


def _json_object(data: bytes) -> JsonObject:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _malformed(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _malformed("not a JSON object")
    return obj


def _type(obj: JsonObject, expected: str) -> None:
    if obj.get("type") != expected:
        raise _malformed(f"type must be {expected!r}")


# --- batches ---


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """Change-log entries ``from_seq..to_seq`` of one site's epoch, signed by the site."""

    version: int
    site: str
    epoch: int
    from_seq: int
    to_seq: int
    entries: tuple[JsonObject, ...]
    """``Change.to_image()`` of each entry, in seq order."""
    sha256: str
    sig: str
    entries_json: bytes = field(default=b"", compare=False, repr=False)
    """``canonical(list(entries))`` when the sender built the batch (not part of the value)."""

    def header(self) -> dict[str, Any]:
        """The signed part: everything but the entries (covered by ``sha256``) and ``sig``."""
        return {
            "type": BATCH_TYPE,
            "version": self.version,
            "site": self.site,
            "epoch": self.epoch,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "sha256": self.sha256,
        }

    def to_image(self) -> dict[str, Any]:
        return self.header() | {"entries": [dict(e) for e in self.entries], "sig": self.sig}


def make_batch(
    *,
    site: str,
    epoch: int,
    from_seq: int,
    to_seq: int,
    entries: Sequence[JsonObject],
    key: Ed25519PrivateKey,
    encoded: Sequence[bytes] | None = None,
) -> Batch:
    """A signed batch. ``entries`` are ``Change.to_image()`` values; ``encoded``, when given,
    is ``canonical(entry)`` of each (computed once by the sender and reused here)."""
    images = tuple(entries)
    parts = encoded if encoded is not None else [canonical(e) for e in images]
    entries_json = b"[" + b",".join(parts) + b"]"
    sha = hashlib.sha256(entries_json).hexdigest()
    fields: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "site": site,
        "epoch": epoch,
        "from_seq": from_seq,
        "to_seq": to_seq,
        "entries": images,
        "sha256": sha,
    }
    unsigned = Batch(**fields, sig="")
    return Batch(**fields, sig=_sign(key, unsigned.header()), entries_json=entries_json)


def encode_batch(batch: Batch) -> bytes:
    """``canonical(batch.to_image())``, reusing the entries' bytes when the batch has them."""
    if not batch.entries_json:
        return canonical(batch.to_image())
    # "entries" sorts before every other key, so the canonical form is the entries array
    # followed by the canonical header with the signature.
    rest = canonical(batch.header() | {"sig": batch.sig})
    return b'{"entries":' + batch.entries_json + b"," + rest[1:]


def decode_batch(data: bytes) -> Batch:
    """Parse a batch; its signature is checked by ``check``.

    Raises:
        SyncRefused: ``malformed`` for anything that is not a well-formed batch.
    """
    obj = _json_object(data)
    _type(obj, BATCH_TYPE)
    return Batch(
        version=_int(obj, "version"),
        site=_str(obj, "site"),
        epoch=_int(obj, "epoch"),
        from_seq=_int(obj, "from_seq", 1),
        to_seq=_int(obj, "to_seq", 1),
        entries=_objects(obj, "entries"),
        sha256=_str(obj, "sha256"),
        sig=_str(obj, "sig"),
    )


# --- central's view of a site, and the decision ---


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Apply:
    """Apply the message in one transaction."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Duplicate:
    """Already applied; answer the current cursor and change nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Gap:
    """Out of order: the sender must resume at ``expected`` (a seq, or a snapshot page)."""

    expected: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedSnapshot:
    """Central cannot continue from this batch: the site must send a snapshot."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Refuse:
    reason: RefuseReason
    detail: str = ""


Decision = Apply | Duplicate | Gap | NeedSnapshot | Refuse


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
    if not _verify(state.public_key, batch.header(), batch.sig):
        return Refuse(reason=RefuseReason.BAD_SIGNATURE)
    if digest(list(batch.entries)) != batch.sha256:
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


# --- snapshot pages ---


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotPage:
    """One page of a site's objects, walked in (``KIND_ORDER``, object id) order.

    A snapshot brings central to the site's state as of ``as_of_seq`` in ``epoch``; pages
    are numbered from 0 and ``after`` is the key the page starts after (None for page 0),
    so an interrupted snapshot resumes at central's next page and key. The last page
    (``last``) makes central replace the site's objects with the snapshot's in one
    transaction; deltas then resume at ``as_of_seq + 1``.
    """

    version: int
    site: str
    epoch: int
    as_of_seq: int
    page: int
    after: tuple[str, str] | None
    objects: tuple[JsonObject, ...]
    """``{"kind", "object_id", "image"}`` each."""
    last: bool
    sha256: str
    sig: str

    @property
    def last_key(self) -> tuple[str, str] | None:
        if not self.objects:
            return self.after
        final = self.objects[-1]
        return (str(final["kind"]), str(final["object_id"]))

    def header(self) -> dict[str, Any]:
        return {
            "type": SNAPSHOT_TYPE,
            "version": self.version,
            "site": self.site,
            "epoch": self.epoch,
            "as_of_seq": self.as_of_seq,
            "page": self.page,
            "after": None if self.after is None else list(self.after),
            "last": self.last,
            "sha256": self.sha256,
        }

    def to_image(self) -> dict[str, Any]:
        return self.header() | {"objects": [dict(o) for o in self.objects], "sig": self.sig}


def make_snapshot_page(
    *,
    site: str,
    epoch: int,
    as_of_seq: int,
    page: int,
    after: tuple[str, str] | None,
    objects: Sequence[JsonObject],
    last: bool,
    key: Ed25519PrivateKey,
) -> SnapshotPage:
    images = tuple(dict(o) for o in objects)
    fields: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "site": site,
        "epoch": epoch,
        "as_of_seq": as_of_seq,
        "page": page,
        "after": after,
        "objects": images,
        "last": last,
        "sha256": digest([dict(o) for o in images]),
    }
    unsigned = SnapshotPage(**fields, sig="")
    return SnapshotPage(**fields, sig=_sign(key, unsigned.header()))


def encode_snapshot_page(page: SnapshotPage) -> bytes:
    return canonical(page.to_image())


def decode_snapshot_page(data: bytes) -> SnapshotPage:
    """Raises: SyncRefused(malformed)."""
    obj = _json_object(data)
    _type(obj, SNAPSHOT_TYPE)
    after = obj.get("after")
    if after is not None and not (
        isinstance(after, list) and len(after) == 2 and all(isinstance(a, str) for a in after)
    ):
        raise _malformed("after must be null or [kind, object_id]")
    last = obj.get("last")
    if not isinstance(last, bool):
        raise _malformed("last must be a boolean")
    objects = _objects(obj, "objects")
    for i, o in enumerate(objects):
        if (
            o.get("kind") not in Kind.__members__.values()
            or not isinstance(o.get("object_id"), str)
            or not isinstance(o.get("image"), dict)
        ):
            raise _malformed(f"objects[{i}] must be {{kind, object_id, image}}")
    return SnapshotPage(
        version=_int(obj, "version"),
        site=_str(obj, "site"),
        epoch=_int(obj, "epoch", 1),
        as_of_seq=_int(obj, "as_of_seq"),
        page=_int(obj, "page"),
        after=None if after is None else (after[0], after[1]),
        objects=objects,
        last=last,
        sha256=_str(obj, "sha256"),
        sig=_str(obj, "sig"),
    )


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
    if not _verify(state.public_key, page.header(), page.sig):
        return Refuse(reason=RefuseReason.BAD_SIGNATURE)
    if digest([dict(o) for o in page.objects]) != page.sha256:
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


# --- signed requests: an edge proves who reads its cursor and down log ---


def sign_request(*, site: str, method: str, path: str, now: float, key: Ed25519PrivateKey) -> str:
    """The ``X-DDI-Site-Auth`` value for a request: ``<site> <unix time> <signature>``."""
    when = int(now)
    header = {"type": REQUEST_TYPE, "site": site, "method": method, "path": path, "time": when}
    return f"{site} {when} {_sign(key, header)}"


def verify_request(
    value: str | None,
    *,
    site: str,
    method: str,
    path: str,
    now: float,
    public_key: bytes | Ed25519PublicKey,
) -> Refuse | None:
    """Why a signed request is refused, or None when ``value`` proves ``site`` sent it within
    ``MAX_CLOCK_SKEW`` seconds of ``now``."""
    parts = (value or "").split(" ")
    if len(parts) != 3 or not parts[1].lstrip("-").isdigit():
        return Refuse(reason=RefuseReason.BAD_SIGNATURE, detail="missing or malformed auth")
    claimed, when, sig = parts[0], int(parts[1]), parts[2]
    if claimed != site:
        return Refuse(reason=RefuseReason.WRONG_SITE, detail=f"{claimed} asked for {site}")
    header = {"type": REQUEST_TYPE, "site": site, "method": method, "path": path, "time": when}
    if not _verify(public_key, header, sig):
        return Refuse(reason=RefuseReason.BAD_SIGNATURE)
    if abs(now - when) > MAX_CLOCK_SKEW:
        return Refuse(reason=RefuseReason.STALE, detail=f"request time {when}, now {int(now)}")
    return None


# --- signed envelopes: the down log (central → site) and conflict reports (site → central) ---


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """A signed message that is neither a batch nor a snapshot page."""

    type: str
    version: int
    site: str
    body: JsonObject
    sig: str

    def header(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "version": self.version,
            "site": self.site,
            "sha256": digest(dict(self.body)),
        }

    def to_image(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "version": self.version,
            "site": self.site,
            "body": dict(self.body),
            "sig": self.sig,
        }


def seal(type_: str, *, site: str, body: JsonObject, key: Ed25519PrivateKey) -> Envelope:
    unsigned = Envelope(type=type_, version=PROTOCOL_VERSION, site=site, body=dict(body), sig="")
    return Envelope(
        type=type_,
        version=PROTOCOL_VERSION,
        site=site,
        body=dict(body),
        sig=_sign(key, unsigned.header()),
    )


def encode_envelope(envelope: Envelope) -> bytes:
    return canonical(envelope.to_image())


def open_envelope(
    data: bytes, *, type_: str, site: str, public_key: bytes | Ed25519PublicKey
) -> JsonObject:
    """The body of a signed message of ``type_`` for ``site``.

    Raises:
        SyncRefused: malformed, wrong type or version, another site's message, bad signature.
    """
    obj = _json_object(data)
    _type(obj, type_)
    body = obj.get("body")
    if not isinstance(body, dict):
        raise _malformed("body must be an object")
    envelope = Envelope(
        type=type_,
        version=_int(obj, "version"),
        site=_str(obj, "site"),
        body=body,
        sig=_str(obj, "sig"),
    )
    if envelope.version != PROTOCOL_VERSION:
        raise SyncRefused(RefuseReason.VERSION.value, f"version {envelope.version}")
    if envelope.site != site:
        raise SyncRefused(RefuseReason.WRONG_SITE.value, f"{envelope.site} is not {site}")
    if not _verify(public_key, envelope.header(), envelope.sig):
        raise SyncRefused(RefuseReason.BAD_SIGNATURE.value)
    return body


@dataclass(frozen=True, slots=True, kw_only=True)
class DownEntry:
    """One entry of a site's down log: a central-owned reservation to upsert or delete."""

    dseq: int
    op: Op
    image: JsonObject = field(default_factory=dict)

    def to_image(self) -> dict[str, Any]:
        return {"dseq": self.dseq, "op": self.op.value, "image": dict(self.image)}

    @classmethod
    def from_image(cls, image: JsonObject) -> DownEntry:
        """Raises: SyncRefused(malformed)."""
        op = image.get("op")
        if not isinstance(op, str) or op not in Op.__members__.values():
            raise _malformed("down entry needs op")
        if not isinstance(image.get("image"), dict):
            raise _malformed("down entry needs op and image")
        return cls(dseq=_int(image, "dseq", 1), op=Op(op), image=dict(image["image"]))


def down_entries(body: JsonObject, *, after: int) -> list[DownEntry]:
    """The entries of a verified down-log body, strictly increasing and all after ``after``.

    Raises:
        SyncRefused: malformed or out of order.
    """
    entries = [DownEntry.from_image(e) for e in _objects(body, "entries")]
    previous = after
    for entry in entries:
        if entry.dseq <= previous:
            raise _malformed(f"down entry {entry.dseq} not after {previous}")
        previous = entry.dseq
    return entries

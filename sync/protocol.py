"""The sync wire format: signed batches of change-log entries, snapshot pages, signed requests
and signed messages in either direction, and the decisions central answers them with.

Rules:
* A batch carries ``sha256`` (hex) of the canonical bytes of its ``entries`` and ``sig``
  (base64 Ed25519) over the canonical bytes of its header: type, version, site, epoch,
  ``from_seq``, ``to_seq`` and ``sha256``. The ``type`` field separates the signature
  domains, so a batch signature never verifies as a snapshot page or a down message.
* Sites sign what they send up with their own key; central signs what it sends down
  (the per-site down log) with its key.
* Canonical JSON, digests, keys and signatures are ``sync.signing``'s; central's decision on a
  batch or snapshot page is ``central.admission``'s.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ddi.errors import SyncRefused
from ddi.ipam.models import Kind, Op

# The ``X as X`` names are re-exported: the agent, central, its CLI and the tests call them as
# ``protocol.<name>``.
from sync.signing import canonical as canonical
from sync.signing import digest as digest
from sync.signing import generate_key as generate_key
from sync.signing import load_private_key as load_private_key
from sync.signing import load_public_key as load_public_key
from sync.signing import private_key_pem as private_key_pem
from sync.signing import public_key_pem as public_key_pem
from sync.signing import public_key_raw as public_key_raw
from sync.signing import sign, verify

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


# --- what central answers ---


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
    return Batch(**fields, sig=sign(key, unsigned.header()), entries_json=entries_json)


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
    return SnapshotPage(**fields, sig=sign(key, unsigned.header()))


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


# --- signed requests: an edge proves who reads its cursor and down log ---


def sign_request(*, site: str, method: str, path: str, now: float, key: Ed25519PrivateKey) -> str:
    """The ``X-DDI-Site-Auth`` value for a request: ``<site> <unix time> <signature>``."""
    when = int(now)
    header = {"type": REQUEST_TYPE, "site": site, "method": method, "path": path, "time": when}
    return f"{site} {when} {sign(key, header)}"


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
    if not verify(public_key, header, sig):
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
        sig=sign(key, unsigned.header()),
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
    if not verify(public_key, envelope.header(), envelope.sig):
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

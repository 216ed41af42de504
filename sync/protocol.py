"""The sync wire format: signed batches of change-log entries, snapshot pages, signed requests
and signed messages in either direction, and the decisions central answers them with.

Rules:
* A batch carries ``sha256`` (hex) and ``length`` of the canonical bytes of its ``entries``
  and ``sig`` (base64 Ed25519) over the canonical bytes of its header: type, version, site,
  epoch, ``from_seq``, ``to_seq``, ``sha256`` and ``length``. The ``type`` field separates the
  signature domains, so a batch signature never verifies as a snapshot page or a down message.
* What a site POSTs (batch, snapshot page, conflict report) is an ``Upload``: the signed header
  travels in the ``X-DDI-Signed`` HTTP header and the body is the canonical JSON the header's
  ``sha256`` and ``length`` cover. Central checks the site and the signature before it reads a
  byte of the body, and reads no more than the signed ``length`` (protocol version 2; version
  1 sent the header inside the body, so central had to read and parse it all first).
* Peer JSON is read by ``loads`` alone: no NaN or Infinity, no lone surrogate, nesting at most
  ``MAX_DEPTH``, integers below 2**63. Whatever it returns can be hashed and stored.
* Sites sign what they send up with their own key; central signs what it sends down
  (the per-site down log) with its key.
* Canonical JSON, digests, keys and signatures are ``sync.signing``'s; central's decision on a
  batch or snapshot page is ``central.admission``'s.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
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

PROTOCOL_VERSION = 2
JsonObject = Mapping[str, Any]

BATCH_TYPE = "ddi-sync-batch"
SNAPSHOT_TYPE = "ddi-sync-snapshot"
DOWN_TYPE = "ddi-sync-down"
CONFLICTS_TYPE = "ddi-sync-conflicts"
REQUEST_TYPE = "ddi-sync-request"
AUTH_HEADER = "X-DDI-Site-Auth"
SIGNED_HEADER = "X-DDI-Signed"
"""The HTTP header an upload's signed header travels in (base64url of its canonical JSON)."""
MAX_SIGNED_HEADER = 4096
"""Characters of an ``X-DDI-Signed`` value (a header is a few hundred)."""
MAX_INT = 2**63 - 1
"""Every count or seq on the wire fits a signed 64-bit column."""
MAX_DEPTH = 32
"""Nesting of peer JSON (an entry is three levels deep): deeper is refused, never recursed."""
MAX_CLOCK_SKEW = 300.0
"""Seconds a signed request's time may differ from central's clock."""

KIND_ORDER: tuple[Kind, ...] = (
    Kind.SUBNET, Kind.HOST, Kind.RECORD, Kind.LEASE, Kind.SUBNET6, Kind.LEASE6,
)  # fmt: skip
"""The order snapshot pages walk the objects in: (kind in this order, object id)."""

IPV6 = "ipv6"
"""The capability of a central that takes IPv6 objects: the kinds ``subnet6`` and ``lease6``
and hosts without an IPv4 address. Central lists what it takes in its cursor (``accepts``);
one that lists nothing is of the previous version, and the edge holds these objects back from
it (``needs_ipv6``) until it does, then sends them in a snapshot."""
CAPABILITIES: tuple[str, ...] = (IPV6,)
"""What this version's central accepts (its cursor's ``accepts``)."""
MAX_CAPABILITIES = 16
_IPV6_KINDS = frozenset({Kind.SUBNET6.value, Kind.LEASE6.value})


def needs_ipv6(kind: str, op: str, image: JsonObject) -> bool:
    """Whether a change entry or snapshot object needs a central that accepts ``IPV6``.

    A dual-stack host's image is the previous version's with two more keys, which such a
    central keeps and ignores; an IPv6-only host (no ``ip``) it could not read. A delete is
    keyed by the object's id alone, so it always goes (central may hold an older image).
    """
    if kind in _IPV6_KINDS:
        return True
    return kind == Kind.HOST.value and op != Op.DELETE.value and image.get("ip") is None


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
    TOO_LARGE = "too_large"


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
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= MAX_INT:
        raise _malformed(f"{name} must be an integer in [{lo}, 2**63)")
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


_DIGITS = re.compile(r"[0-9]{1,18}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def parse_count(text: str | None) -> int | None:
    """The integer an ASCII decimal of at most 18 digits spells, or None.

    ``str.isdigit`` is true for "²" and "٣" and ``int`` takes them or raises, so numbers off
    the wire are matched against ASCII digits with a length cap before ``int``.
    """
    if text is None or _DIGITS.fullmatch(text) is None:
        return None
    return int(text)


def valid_site_id(site: str) -> bool:
    """Whether ``site`` is a site id as ``[site] id`` allows (letters, digits, '-', '_')."""
    bare = site.replace("-", "").replace("_", "")
    return 0 < len(site) <= 63 and bare.isalnum() and not site.startswith("-")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def loads(data: bytes | str) -> Any:
    """The JSON value of peer input ``data``, which ``canonical`` is known to encode.

    Raises:
        SyncRefused: ``malformed``: not UTF-8 JSON, NaN or Infinity, nested deeper than
            ``MAX_DEPTH``, or a string with a lone surrogate (``"\\ud800"``).
    """
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _malformed(f"not JSON: {str(exc)[:100]}") from None
    if _too_deep(value):
        raise _malformed(f"nested deeper than {MAX_DEPTH}")
    try:
        canonical(value)
    except ValueError as exc:  # UnicodeEncodeError: a lone surrogate
        raise _malformed(f"not canonical JSON: {str(exc)[:100]}") from None
    return value


def _json_object(data: bytes) -> JsonObject:
    obj = loads(data)
    if not isinstance(obj, dict):
        raise _malformed("not a JSON object")
    return obj


def _type(obj: JsonObject, expected: str) -> None:
    if obj.get("type") != expected:
        raise _malformed(f"type must be {expected!r}")


# --- uploads: what a site POSTs ---


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload:
    """A signed header (the ``X-DDI-Signed`` value) and the body bytes it covers."""

    header: str
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedHeader:
    """An upload's header as central reads it, before the body: ``fields`` is the signed part
    (everything but ``sig``)."""

    type: str
    version: int
    site: str
    sha256: str
    length: int
    fields: JsonObject
    sig: str

    def body_matches(self, body: bytes) -> bool:
        return len(body) == self.length and hashlib.sha256(body).hexdigest() == self.sha256


def _upload(header: Mapping[str, Any], sig: str, body: bytes) -> Upload:
    value = base64.urlsafe_b64encode(canonical(dict(header) | {"sig": sig}))
    return Upload(header=value.decode("ascii"), body=body)


def read_signed_header(value: str | None) -> SignedHeader:
    """Parse an ``X-DDI-Signed`` value; its signature is checked by central's admission.

    Raises:
        SyncRefused: ``malformed`` when missing, too long, or not a well-formed header (an
            upload of protocol version 1, with the header in the body, has none).
    """
    if value is None:
        raise _malformed(f"no {SIGNED_HEADER} header (protocol version {PROTOCOL_VERSION})")
    if len(value) > MAX_SIGNED_HEADER or not value.isascii():
        raise _malformed(f"{SIGNED_HEADER} is not base64url of at most {MAX_SIGNED_HEADER}")
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, ValueError):
        raise _malformed(f"{SIGNED_HEADER} is not base64url") from None
    obj = _json_object(raw)
    sha256 = _str(obj, "sha256")
    if _SHA256.fullmatch(sha256) is None:
        raise _malformed("sha256 must be 64 lowercase hex digits")
    fields = {k: v for k, v in obj.items() if k != "sig"}
    return SignedHeader(
        type=_str(obj, "type"),
        version=_int(obj, "version"),
        site=_str(obj, "site"),
        sha256=sha256,
        length=_int(obj, "length"),
        fields=fields,
        sig=_str(obj, "sig"),
    )


def make_upload(
    type_: str, *, site: str, body: bytes, key: Ed25519PrivateKey, **fields: Any
) -> Upload:
    """A signed upload of ``body`` (canonical JSON) with ``fields`` in its header."""
    header = {
        "type": type_,
        "version": PROTOCOL_VERSION,
        "site": site,
        "sha256": hashlib.sha256(body).hexdigest(),
        "length": len(body),
    } | fields
    return _upload(header, sign(key, header), body)


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
    length: int
    """Bytes of the entries' canonical JSON (the upload's body)."""
    sig: str
    entries_json: bytes = field(default=b"", compare=False, repr=False)
    """``canonical(list(entries))`` when known (not part of the value)."""

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
            "length": self.length,
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
        "length": len(entries_json),
    }
    unsigned = Batch(**fields, sig="")
    return Batch(**fields, sig=sign(key, unsigned.header()), entries_json=entries_json)


def batch_upload(batch: Batch) -> Upload:
    """What the site POSTs for ``batch``: its header and the entries' canonical JSON."""
    body = batch.entries_json or canonical([dict(e) for e in batch.entries])
    return _upload(batch.header(), batch.sig, body)


def batch_header(signed: SignedHeader) -> Batch:
    """The batch ``signed`` announces, without its entries (``with_entries`` adds them).

    Raises:
        SyncRefused: ``malformed``.
    """
    _type(signed.fields, BATCH_TYPE)
    f = signed.fields
    return Batch(
        version=signed.version,
        site=signed.site,
        epoch=_int(f, "epoch"),
        from_seq=_int(f, "from_seq", 1),
        to_seq=_int(f, "to_seq", 1),
        entries=(),
        sha256=signed.sha256,
        length=signed.length,
        sig=signed.sig,
    )


def with_entries(batch: Batch, body: bytes) -> Batch:
    """``batch`` with the entries of ``body``, the upload's body (already checked against
    the signed ``sha256``).

    Raises:
        SyncRefused: ``malformed``.
    """
    value = loads(body)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _malformed("entries must be an array of objects")
    return replace(batch, entries=tuple(value), entries_json=body)


def read_batch(upload: Upload) -> Batch:
    """The batch of an upload, as central reads it (the sender's own check, and the tests').

    Raises:
        SyncRefused: ``malformed`` or ``bad_digest``.
    """
    signed = read_signed_header(upload.header)
    if not signed.body_matches(upload.body):
        raise SyncRefused(RefuseReason.BAD_DIGEST.value, "the body is not the signed one")
    return with_entries(batch_header(signed), upload.body)


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
    length: int
    """Bytes of the objects' canonical JSON (the upload's body)."""
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
            "length": self.length,
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
    body = canonical([dict(o) for o in images])
    fields: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "site": site,
        "epoch": epoch,
        "as_of_seq": as_of_seq,
        "page": page,
        "after": after,
        "objects": images,
        "last": last,
        "sha256": hashlib.sha256(body).hexdigest(),
        "length": len(body),
    }
    unsigned = SnapshotPage(**fields, sig="")
    return SnapshotPage(**fields, sig=sign(key, unsigned.header()))


def snapshot_upload(page: SnapshotPage) -> Upload:
    return _upload(page.header(), page.sig, canonical([dict(o) for o in page.objects]))


def snapshot_header(signed: SignedHeader) -> SnapshotPage:
    """The page ``signed`` announces, without its objects (``with_objects`` adds them).

    Raises:
        SyncRefused: ``malformed``.
    """
    f = signed.fields
    _type(f, SNAPSHOT_TYPE)
    after = f.get("after")
    if after is not None and not (
        isinstance(after, list) and len(after) == 2 and all(isinstance(a, str) for a in after)
    ):
        raise _malformed("after must be null or [kind, object_id]")
    last = f.get("last")
    if not isinstance(last, bool):
        raise _malformed("last must be a boolean")
    return SnapshotPage(
        version=signed.version,
        site=signed.site,
        epoch=_int(f, "epoch", 1),
        as_of_seq=_int(f, "as_of_seq"),
        page=_int(f, "page"),
        after=None if after is None else (after[0], after[1]),
        objects=(),
        last=last,
        sha256=signed.sha256,
        length=signed.length,
        sig=signed.sig,
    )


def with_objects(page: SnapshotPage, body: bytes) -> SnapshotPage:
    """``page`` with the objects of ``body`` (already checked against the signed header).

    Raises:
        SyncRefused: ``malformed``.
    """
    value = loads(body)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _malformed("objects must be an array of objects")
    for i, o in enumerate(value):
        if (
            o.get("kind") not in Kind.__members__.values()
            or not isinstance(o.get("object_id"), str)
            or not isinstance(o.get("image"), dict)
        ):
            raise _malformed(f"objects[{i}] must be {{kind, object_id, image}}")
    return replace(page, objects=tuple(value))


def read_snapshot_page(upload: Upload) -> SnapshotPage:
    """Raises: SyncRefused(malformed, bad_digest)."""
    signed = read_signed_header(upload.header)
    if not signed.body_matches(upload.body):
        raise SyncRefused(RefuseReason.BAD_DIGEST.value, "the body is not the signed one")
    return with_objects(snapshot_header(signed), upload.body)


# --- conflict reports ---


def conflicts_upload(site: str, conflicts: Sequence[JsonObject], key: Ed25519PrivateKey) -> Upload:
    """A site's conflict report: the body is ``{"conflicts": [...]}``."""
    body = canonical({"conflicts": [dict(c) for c in conflicts]})
    return make_upload(CONFLICTS_TYPE, site=site, body=body, key=key)


def read_conflicts(body: bytes) -> list[JsonObject]:
    """The conflicts of a report's body (checked against its signed header).

    Raises:
        SyncRefused: ``malformed``: not ``{"conflicts": [{id, ...}]}`` with JSON scalars of
            the types central stores.
    """
    conflicts = _json_object(body).get("conflicts")
    if not isinstance(conflicts, list):
        raise _malformed("conflicts must be a list")
    for i, c in enumerate(conflicts):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int | str):
            raise _malformed(f"conflicts[{i}] must be an object with an id")
        for name in ("detected_at", "resolved_at"):
            value = c.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > 1e12
            ):
                raise _malformed(f"conflicts[{i}].{name} must be a unix time")
        for name in ("edge_image", "central_image"):
            if c.get(name) is not None and not isinstance(c.get(name), dict):
                raise _malformed(f"conflicts[{i}].{name} must be an object")
    return conflicts


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
    when = parse_count(parts[1]) if len(parts) == 3 else None
    if when is None:
        return Refuse(reason=RefuseReason.BAD_SIGNATURE, detail="missing or malformed auth")
    claimed, sig = parts[0], parts[2]
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

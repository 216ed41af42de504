"""Sync: an upload as central receives it from a site (a batch, a snapshot page or a conflict
report: the ``X-DDI-Signed`` header and the body it covers) and a body as an edge receives it
from central (its cursor, its answer to an upload, a page of the signed down log); the first
line also as an ``X-DDI-Site-Auth`` header.

An input is the header's value, a newline, then the body. A header line that starts with ``{``
is its JSON, base64url-encoded by the harness before central sees it (a mutation of base64
rarely decodes to JSON, so most of the fuzzing goes at the JSON). Central's side is the path of
``central.app._upload`` and the post handlers, in their order, for each upload type and three
states of the site (unknown, nothing applied, five entries applied): the header as aiohttp
hands it over (UTF-8 with surrogate escapes) and as ``_header`` filters it (printable ASCII or
absent), ``protocol.read_signed_header``, ``admission.admit`` (site, type, version, size, the
header's signature), the body's length and ``sha256`` against the signed ones, then the body's
decoder (``with_entries``/``with_objects``/``read_conflicts``) and ``admission.check`` /
``check_snapshot_page``.

A mutated header almost never carries a valid signature, so each input runs a second time as
the enrolled site itself would send it: the parsed header's fields, with the body's real
``sha256`` and ``length``, signed with the site's key. That reaches everything behind the
signature with hostile bodies and headers (an enrolled site is no more trusted than that).

The edge's side: ``protocol.verify_request`` on the first line (the ``GET`` cursor auth), and
``sync.round.read_cursor``, ``read_answer`` and ``read_down_page`` on the whole input.

Outcomes: ``SyncRefused`` from each decoder (central answers 400 ``malformed``, or the reason),
and the decision values: ``Refuse`` and the rest, ``Refused``/``Unexpected`` on the edge.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.admission import SiteState, admit, check, check_snapshot_page
from ddi.errors import SyncRefused
from ddi.ipam.models import Kind, Op
from fuzz.core import Target
from sync import protocol, round
from sync.signing import canonical, sign

NOW = 1_800_000_000.0
SITE = "edge1"
SITE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
CENTRAL_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
SITE_PUBLIC = protocol.public_key_raw(SITE_KEY.public_key())
MAX_BODY = 16384
"""``central.max_body_bytes`` here: small, so that the size refusal is reached too."""
STATES = (
    None,
    SiteState(site=SITE, public_key=SITE_PUBLIC),
    SiteState(
        site=SITE,
        public_key=SITE_PUBLIC,
        epoch=1,
        applied_seq=5,
        last_sha256="0" * 64,
        snapshot_epoch=2,
        snapshot_as_of=7,
        snapshot_next_page=1,
    ),
)
UPLOADS = (protocol.BATCH_TYPE, protocol.SNAPSHOT_TYPE, protocol.CONFLICTS_TYPE)
PATH = f"/v1/sites/{SITE}/cursor"


def as_header(raw: bytes) -> str | None:
    """A header value as central sees it: aiohttp decodes the bytes as UTF-8 with surrogate
    escapes, and ``central.app._header`` keeps printable ASCII only."""
    value = raw.decode("utf-8", "surrogateescape")
    return value if value.isascii() and value.isprintable() else None


def central(header: str | None, body: bytes, type_: str, state: SiteState | None) -> str:
    """Central's answer to an upload of ``type_``, in the order ``central.app`` takes it."""
    if state is None:
        return "Refuse:unknown_site"  # before the header is parsed: a lookup, no row
    signed = protocol.read_signed_header(header)
    refused = admit(signed, state, site=SITE, type_=type_, max_body=MAX_BODY)
    if refused is not None:
        return _label(refused)
    if not signed.body_matches(body):
        return "Refuse:body_not_signed"
    if type_ == protocol.BATCH_TYPE:
        batch = protocol.with_entries(protocol.batch_header(signed), body)
        return _label(check(batch, state, site=SITE))
    if type_ == protocol.SNAPSHOT_TYPE:
        page = protocol.with_objects(protocol.snapshot_header(signed), body)
        return _label(check_snapshot_page(page, state, site=SITE))
    return f"recorded:{len(protocol.read_conflicts(body))}"


def signed_by_site(header: str | None, body: bytes) -> str | None:
    """``header``'s fields for ``body`` as the enrolled site signs them, or None when the header
    does not parse."""
    try:
        fields = protocol.read_signed_header(header).fields
    except SyncRefused:
        return None
    digest = {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}
    fields = dict(fields) | digest
    value = canonical(fields | {"sig": sign(SITE_KEY, fields)})
    return base64.urlsafe_b64encode(value).decode("ascii")


def check_input(data: bytes) -> str:
    raw, _, body = data.partition(b"\n")
    if raw.startswith(b"{"):
        raw = base64.urlsafe_b64encode(raw)
    header = as_header(raw)
    outcomes: list[str] = []
    for value in (header, signed_by_site(header, body)):
        for type_ in UPLOADS:
            for state in STATES:
                try:
                    outcomes.append(central(value, body, type_, state))
                except SyncRefused as exc:
                    outcomes.append(f"refused:{exc.reason}")
    refused = protocol.verify_request(
        header, site=SITE, method="GET", path=PATH, now=NOW, public_key=SITE_PUBLIC
    )
    outcomes.append("auth-ok" if refused is None else f"auth-{refused.reason.value}")
    outcomes.append(type(round.read_cursor(200, data)).__name__)
    outcomes.append(type(round.read_answer(200, data)).__name__)
    down = round.read_down_page(200, data, site=SITE, after=0, central_key=CENTRAL_KEY.public_key())
    outcomes.append(type(down).__name__)
    # The full list has 24 entries: the label is the set, so that outcomes stay few kinds.
    return ",".join(sorted(set(outcomes)))


def _label(decision: protocol.Decision) -> str:
    if isinstance(decision, protocol.Refuse):
        return f"Refuse:{decision.reason.value}"
    return type(decision).__name__


def _entry(seq: int, epoch: int = 1) -> dict[str, object]:
    return {
        "epoch": epoch,
        "seq": seq,
        "kind": Kind.HOST.value,
        "object_id": f"h-{seq}",
        "op": Op.UPSERT.value,
        "image": {"id": f"h-{seq}", "ip": f"198.18.0.{seq}", "hostname": f"h{seq}"},
    }


def upload_input(upload: protocol.Upload, *, as_json: bool = False) -> bytes:
    """An upload as one input: its header line (base64url, or the JSON it encodes), then its
    body."""
    header = upload.header.encode("ascii")
    if as_json:
        header = base64.urlsafe_b64decode(header)
    return header + b"\n" + upload.body


def seeds() -> list[bytes]:
    batches = [
        protocol.make_batch(
            site=SITE,
            epoch=epoch,
            from_seq=first,
            to_seq=last,
            entries=[_entry(s, epoch) for s in range(first, last + 1)],
            key=SITE_KEY,
        )
        for epoch, first, last in ((1, 1, 3), (1, 6, 8), (1, 4, 5), (2, 1, 1), (1, 9, 12))
    ]
    pages = [
        protocol.make_snapshot_page(
            site=SITE,
            epoch=2,
            as_of_seq=7,
            page=page,
            after=None if page == 0 else ("host", "h-1"),
            objects=[{"kind": "host", "object_id": "h-2", "image": {"id": "h-2"}}],
            last=page == 2,
            key=SITE_KEY,
        )
        for page in (0, 1, 2)
    ]
    conflicts = protocol.conflicts_upload(
        SITE, [{"id": 1, "detected_at": NOW, "edge_image": {"id": "h-1"}}], SITE_KEY
    )
    down = protocol.seal(
        protocol.DOWN_TYPE,
        site=SITE,
        body={"after": 0, "entries": [{"dseq": 1, "op": "upsert", "image": {"id": "h-9"}}]},
        key=CENTRAL_KEY,
    )
    auth = protocol.sign_request(site=SITE, method="GET", path=PATH, now=NOW, key=SITE_KEY)
    first = upload_input(protocol.batch_upload(batches[0]))
    uploads = [
        *(protocol.batch_upload(b) for b in batches),
        *(protocol.snapshot_upload(p) for p in pages),
        conflicts,
    ]
    return [
        *(upload_input(u) for u in uploads),
        *(upload_input(u, as_json=True) for u in uploads),
        first[:-1] + b"]]",  # the body is not the signed one
        b"\n" + first.partition(b"\n")[2],  # no header: a protocol version 1 sender
        protocol.encode_envelope(down),
        auth.encode(),
        f"{SITE} {int(NOW) - 1000} {base64.b64encode(bytes(64)).decode()}".encode(),
        b'{"epoch": 1, "applied_seq": 5, "snapshot": {"epoch": 2, "as_of_seq": 7, '
        b'"next_page": 1, "after": ["host", "h-1"]}}',
        b'{"result": "applied", "epoch": 1, "applied_seq": 8}',
        b'{"result": "gap", "expected": 6}',
        b'{"result": "refused", "reason": "bad_signature", "detail": "x"}',
    ]


DICTIONARY = (
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e999",
    b'"\\ud800"',
    b"\\u0000",
    b"[[[[[[[[",
    b"\xc2\xb2",  # superscript two: isdigit() but not int()
    b"\xd9\xa3",  # Arabic-Indic three
    b'"seq":',
    b'"epoch":',
    b'"object_id":',
    b'"image":{',
    b'"conflicts":[',
    b'"kind":"host"',
    b'"op":"delete"',
    b"99999999999999999999999",
    b"true",
    b"null",
    b"\n",
    b"eyJ",  # base64url of '{"': the start of every signed header
)


def target() -> Target:
    return Target(
        name="sync",
        doc="an upload (X-DDI-Signed header line and body) through central's admission as "
        "sent and as signed by the site, and the edge's readers of central's answers",
        check=check_input,
        seeds=seeds,
        allowed=(SyncRefused,),
        max_len=16384,
        dictionary=DICTIONARY,
    )

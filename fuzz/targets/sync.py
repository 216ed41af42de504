"""Sync: a message body as central receives it from a site (a batch, a snapshot page, a signed
conflict report) and as an edge receives it from central (its cursor, its answer to a batch,
a page of the signed down log), and the first line as an ``X-DDI-Site-Auth`` header.

Central's side: ``sync.protocol.decode_batch`` / ``decode_snapshot_page`` then
``central.admission.check`` / ``check_snapshot_page`` against three states of the site
(unknown, nothing applied, five entries applied), and ``protocol.verify_request`` on the header
(decoded as aiohttp decodes header bytes: UTF-8 with surrogate escapes). The edge's side:
``sync.round.read_cursor``, ``read_answer`` and ``read_down_page``.

Outcomes: ``SyncRefused`` from each decoder (central answers 400 ``malformed``, or the reason),
and the decision values: ``Refuse`` and the rest, ``Refused``/``Unexpected`` on the edge.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.admission import SiteState, check, check_snapshot_page
from ddi.errors import SyncRefused
from ddi.ipam.models import Kind, Op
from fuzz.core import Target
from sync import protocol, round

NOW = 1_800_000_000.0
SITE = "edge1"
SITE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
CENTRAL_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
SITE_PUBLIC = protocol.public_key_raw(SITE_KEY.public_key())
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
PATH = f"/v1/sites/{SITE}/cursor"


def check_input(data: bytes) -> str:
    outcomes: list[str] = []
    try:
        batch = protocol.decode_batch(data)
    except SyncRefused as exc:
        outcomes.append(f"batch-refused:{exc.reason}")
    else:
        for state in STATES:
            outcomes.append(_label(check(batch, state, site=SITE)))
    try:
        page = protocol.decode_snapshot_page(data)
    except SyncRefused as exc:
        outcomes.append(f"page-refused:{exc.reason}")
    else:
        for state in STATES:
            outcomes.append(_label(check_snapshot_page(page, state, site=SITE)))
    try:
        protocol.open_envelope(
            data, type_=protocol.CONFLICTS_TYPE, site=SITE, public_key=SITE_PUBLIC
        )
    except SyncRefused as exc:
        outcomes.append(f"conflicts-refused:{exc.reason}")
    header = data.partition(b"\n")[0].decode("utf-8", "surrogateescape")
    refused = protocol.verify_request(
        header, site=SITE, method="GET", path=PATH, now=NOW, public_key=SITE_PUBLIC
    )
    outcomes.append("auth-ok" if refused is None else f"auth-{refused.reason.value}")
    outcomes.append(type(round.read_cursor(200, data)).__name__)
    outcomes.append(type(round.read_answer(200, data)).__name__)
    down = round.read_down_page(200, data, site=SITE, after=0, central_key=CENTRAL_KEY.public_key())
    outcomes.append(type(down).__name__)
    return ",".join(outcomes)


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
    down = protocol.seal(
        protocol.DOWN_TYPE,
        site=SITE,
        body={"after": 0, "entries": [{"dseq": 1, "op": "upsert", "image": {"id": "h-9"}}]},
        key=CENTRAL_KEY,
    )
    conflicts = protocol.seal(
        protocol.CONFLICTS_TYPE, site=SITE, body={"conflicts": []}, key=SITE_KEY
    )
    auth = protocol.sign_request(site=SITE, method="GET", path=PATH, now=NOW, key=SITE_KEY)
    return [
        *(protocol.encode_batch(b) for b in batches),
        *(protocol.encode_snapshot_page(p) for p in pages),
        protocol.encode_envelope(down),
        protocol.encode_envelope(conflicts),
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
    b'"entries":[',
    b'"type":"ddi-sync-batch"',
    b'"type":"ddi-sync-snapshot"',
    b"99999999999999999999999",
    b"true",
    b"null",
)


def target() -> Target:
    return Target(
        name="sync",
        doc="a sync message body (batch, snapshot page, signed envelope, central's answers) "
        "and a request auth header: the protocol decoders and central.admission",
        check=check_input,
        seeds=seeds,
        allowed=(SyncRefused,),
        max_len=16384,
        dictionary=DICTIONARY,
    )

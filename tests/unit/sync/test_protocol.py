"""sync.protocol: canonical JSON, signatures, batches, snapshot pages and envelopes (central's
decision on them is tested with central.admission)."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddi.errors import SyncRefused
from ddi.ipam.models import Change, Kind, Op
from sync import protocol
from sync.protocol import (
    Batch,
    Refuse,
    RefuseReason,
)

KEY = protocol.generate_key()
OTHER_KEY = protocol.generate_key()
PUBLIC = protocol.public_key_raw(KEY.public_key())

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def change(seq: int, *, epoch: int = 1, object_id: str = "", kind: Kind = Kind.HOST) -> Change:
    oid = object_id or f"{seq:032x}"
    return Change(
        epoch=epoch,
        seq=seq,
        kind=kind,
        object_id=oid,
        op=Op.UPSERT,
        image={"id": oid, "hostname": f"h{seq}", "ip": "198.18.0.10"},
        actor="test",
        reason="",
        time=1_700_000_000.5,
    )


def batch(from_seq: int, to_seq: int, *, epoch: int = 1, site: str = "s1", key: Any = KEY) -> Batch:
    entries = [change(s, epoch=epoch).to_image() for s in range(from_seq, to_seq + 1)]
    return protocol.make_batch(
        site=site, epoch=epoch, from_seq=from_seq, to_seq=to_seq, entries=entries, key=key
    )


@given(json_values)
def test_canonical_round_trips(value: Any) -> None:
    data = protocol.canonical(value)
    assert protocol.canonical(json.loads(data)) == data


def test_canonical_sorts_keys_without_spaces_in_utf8() -> None:
    assert protocol.canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


@given(st.integers(1, 50), st.integers(0, 50), st.integers(1, 5), st.text(min_size=1, max_size=8))
@settings(max_examples=30)
def test_batch_round_trips(from_seq: int, n: int, epoch: int, site: str) -> None:
    b = batch(from_seq, from_seq + n, epoch=epoch, site=site)
    upload = protocol.batch_upload(b)
    assert protocol.read_batch(upload) == b
    assert upload.body == protocol.canonical([dict(e) for e in b.entries])
    assert upload.header.isascii()


@given(st.text(max_size=300), st.binary(max_size=300))
def test_decode_raises_only_sync_refused(header: str, data: bytes) -> None:
    with contextlib.suppress(SyncRefused):
        protocol.read_batch(protocol.Upload(header=header, body=data))
    with contextlib.suppress(SyncRefused):
        protocol.read_signed_header(base64.urlsafe_b64encode(data).decode())
    with contextlib.suppress(SyncRefused):
        protocol.loads(data)


def header_of(obj: Any) -> str:
    return base64.urlsafe_b64encode(protocol.canonical(obj)).decode()


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"type": "other"},
        {"type": protocol.BATCH_TYPE, "version": "1"},
        {"type": protocol.BATCH_TYPE, "version": 1, "site": "s", "epoch": 1, "from_seq": 0},
    ],
)
def test_malformed_batches_are_refused(obj: Any) -> None:
    with pytest.raises(SyncRefused, match="malformed"):
        protocol.read_batch(protocol.Upload(header=header_of(obj), body=b"[]"))
    with pytest.raises(SyncRefused, match="malformed"):
        protocol.read_batch(protocol.Upload(header="", body=json.dumps(obj).encode()))


def test_an_upload_needs_its_signed_header_and_exactly_the_signed_body() -> None:
    upload = protocol.batch_upload(batch(1, 2))
    with pytest.raises(SyncRefused, match="malformed"):  # a version-1 client sends no header
        protocol.read_signed_header(None)
    with pytest.raises(SyncRefused, match="malformed"):
        protocol.read_signed_header("A" * (protocol.MAX_SIGNED_HEADER + 1))
    with pytest.raises(SyncRefused, match="bad_digest"):
        protocol.read_batch(dataclasses.replace(upload, body=upload.body + b" "))
    signed = protocol.read_signed_header(upload.header)
    assert (signed.length, signed.sha256) == (
        len(upload.body),
        hashlib.sha256(upload.body).hexdigest(),
    )
    assert signed.fields == batch(1, 2).header()


def _page(page: int, *, epoch: int = 2, as_of: int = 100, last: bool = False) -> Any:
    objects = [{"kind": "host", "object_id": f"{page:04d}", "image": {"id": f"{page:04d}"}}]
    after = None if page == 0 else ("host", f"{page - 1:04d}")
    return protocol.make_snapshot_page(
        site="s1",
        epoch=epoch,
        as_of_seq=as_of,
        page=page,
        after=after,
        objects=objects,
        last=last,
        key=KEY,
    )


def test_snapshot_page_round_trips() -> None:
    p = _page(3, last=True)
    assert protocol.read_snapshot_page(protocol.snapshot_upload(p)) == p
    assert p.last_key == ("host", "0003")


def test_envelope_verifies_and_refuses_tampering() -> None:
    env = protocol.seal(protocol.DOWN_TYPE, site="s1", body={"after": 0, "entries": []}, key=KEY)
    data = protocol.encode_envelope(env)
    body = protocol.open_envelope(data, type_=protocol.DOWN_TYPE, site="s1", public_key=PUBLIC)
    assert body == {"after": 0, "entries": []}
    with pytest.raises(SyncRefused, match="wrong_site"):
        protocol.open_envelope(data, type_=protocol.DOWN_TYPE, site="s2", public_key=PUBLIC)
    tampered = data.replace(b'"after":0', b'"after":5')
    with pytest.raises(SyncRefused, match="bad_signature"):
        protocol.open_envelope(tampered, type_=protocol.DOWN_TYPE, site="s1", public_key=PUBLIC)
    with pytest.raises(SyncRefused, match="malformed"):
        protocol.open_envelope(data, type_=protocol.BATCH_TYPE, site="s1", public_key=PUBLIC)


def test_down_entries_must_increase_past_the_cursor() -> None:
    body = {
        "entries": [
            {"dseq": 3, "op": "upsert", "image": {}},
            {"dseq": 4, "op": "delete", "image": {}},
        ]
    }
    assert [e.dseq for e in protocol.down_entries(body, after=2)] == [3, 4]
    assert [e.to_image() for e in protocol.down_entries(body, after=2)] == body["entries"]
    with pytest.raises(SyncRefused):
        protocol.down_entries(body, after=3)


def test_keys_load_from_pem_and_raw_base64() -> None:
    pem = protocol.public_key_pem(KEY.public_key())
    assert protocol.public_key_raw(protocol.load_public_key(pem)) == PUBLIC
    import base64

    assert protocol.public_key_raw(protocol.load_public_key(base64.b64encode(PUBLIC))) == PUBLIC
    loaded = protocol.load_private_key(protocol.private_key_pem(KEY))
    assert protocol.public_key_raw(loaded.public_key()) == PUBLIC
    with pytest.raises(ValueError, match="32 bytes"):
        protocol.load_public_key(b"bm90IGEga2V5")


def test_signed_request_verifies_only_for_its_site_path_and_time() -> None:
    auth = protocol.sign_request(site="s1", method="GET", path="/v1/sites/s1/down?after=0",
                                 now=1000.0, key=KEY)  # fmt: skip
    ok = {"site": "s1", "method": "GET", "path": "/v1/sites/s1/down?after=0", "public_key": PUBLIC}
    assert protocol.verify_request(auth, now=1100.0, **ok) is None  # type: ignore[arg-type]
    stale = protocol.verify_request(auth, now=1000.0 + 301, **ok)  # type: ignore[arg-type]
    assert stale is not None
    assert stale.reason is RefuseReason.STALE
    moved = ok | {"path": "/v1/sites/s1/down?after=5"}
    refused = protocol.verify_request(auth, now=1000.0, **moved)  # type: ignore[arg-type]
    assert refused == Refuse(reason=RefuseReason.BAD_SIGNATURE)
    other = ok | {"site": "s2"}
    wrong = protocol.verify_request(auth, now=1000.0, **other)  # type: ignore[arg-type]
    assert wrong is not None
    assert wrong.reason is RefuseReason.WRONG_SITE
    for bad in (None, "", "s1 x sig", "s1 1000"):
        missing = protocol.verify_request(bad, now=1000.0, **ok)  # type: ignore[arg-type]
        assert missing is not None
        assert missing.reason is RefuseReason.BAD_SIGNATURE


def test_decoded_batch_encodes_canonically_without_cached_entries() -> None:
    b = protocol.read_batch(protocol.batch_upload(batch(1, 3)))
    bare = dataclasses.replace(b, entries_json=b"")
    assert not bare.entries_json
    assert protocol.batch_upload(bare) == protocol.batch_upload(batch(1, 3))


def test_key_loaders_refuse_other_key_types() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    private = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())  # fmt: skip
    public = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="Ed25519"):
        protocol.load_private_key(private)
    with pytest.raises(ValueError, match="Ed25519"):
        protocol.load_public_key(public)
    with pytest.raises(ValueError, match="neither"):
        protocol.load_public_key(b"!!not base64!!")


@pytest.mark.parametrize(
    "changes",
    [
        {"after": "x"},
        {"after": ["host"]},
        {"last": "yes"},
        {"objects": [{"kind": "host"}]},
        {"objects": "x"},
        {"site": 5},
    ],
)
def test_malformed_snapshot_pages_are_refused(changes: dict[str, Any]) -> None:
    upload = protocol.snapshot_upload(_page(1))
    header = json.loads(base64.urlsafe_b64decode(upload.header))
    body = upload.body
    if "objects" in changes:
        body = protocol.canonical(changes.pop("objects"))
        header |= {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}
    bad = protocol.Upload(header=header_of(header | changes), body=body)
    with pytest.raises(SyncRefused, match="malformed"):
        protocol.read_snapshot_page(bad)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"type": protocol.DOWN_TYPE, "version": 1, "site": "s1", "body": [], "sig": ""},
            "malformed",
        ),
        (
            {"type": protocol.DOWN_TYPE, "version": 3, "site": "s1", "body": {}, "sig": ""},
            "version",
        ),
    ],
)
def test_envelopes_need_an_object_body_and_our_version(body: dict[str, Any], error: str) -> None:
    with pytest.raises(SyncRefused, match=error):
        protocol.open_envelope(protocol.canonical(body), type_=protocol.DOWN_TYPE, site="s1",
                               public_key=PUBLIC)  # fmt: skip


@pytest.mark.parametrize(
    "entry",
    [{"dseq": 1, "op": 3, "image": {}}, {"dseq": 1, "op": "upsert", "image": []}, {"op": "upsert"}],
)
def test_malformed_down_entries_are_refused(entry: dict[str, Any]) -> None:
    with pytest.raises(SyncRefused, match="malformed"):
        protocol.down_entries({"entries": [entry]}, after=0)


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": NaN}',
        b'{"a": -Infinity}',
        b'{"a": 1e400}',
        b'{"a": "\\ud800"}',
        b'{"a": "\\udfff x"}',
        b"[" * (protocol.MAX_DEPTH + 1) + b"]" * (protocol.MAX_DEPTH + 1),
        b"[" * 100_000,
        b'{"a": "\xff"}',
    ],
)
def test_peer_json_that_cannot_be_hashed_is_refused(data: bytes) -> None:
    # NaN and lone surrogates parse with json.loads but make canonical() (and so every
    # digest) raise: the reader refuses them, so nothing downstream sees one.
    with pytest.raises(SyncRefused, match="malformed"):
        protocol.loads(data)
    nested = b"[" * protocol.MAX_DEPTH + b"]" * protocol.MAX_DEPTH
    assert protocol.loads(nested) is not None


def test_numbers_are_ascii_digits_with_a_length_cap() -> None:
    assert protocol.parse_count("120") == 120
    for bad in ("\u00b2", "\u0663", "1\u00b2", "-1", "+1", " 1", "", "9" * 19, "1_000"):
        assert protocol.parse_count(bad) is None, bad
    ok = {"site": "s1", "method": "GET", "path": "/p", "public_key": PUBLIC}
    for when in ("\u00b2", "9" * 5000):
        refused = protocol.verify_request(f"s1 {when} sig", now=1.0, **ok)  # type: ignore[arg-type]
        assert refused is not None
        assert refused.reason is RefuseReason.BAD_SIGNATURE

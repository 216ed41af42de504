"""central.admission: central's decision on each batch and snapshot page a site sends."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central import admission
from central.admission import SiteState
from sync import protocol
from sync.protocol import Apply, Batch, Duplicate, Gap, NeedSnapshot, Refuse, RefuseReason
from tests.unit.sync.test_protocol import KEY, OTHER_KEY, PUBLIC, _page, batch, change


def state(**kw: Any) -> SiteState:
    return SiteState(site="s1", public_key=PUBLIC, **kw)


def test_next_batch_applies() -> None:
    assert admission.check(batch(1, 10), state(), site="s1") == Apply()
    assert admission.check(batch(11, 20), state(epoch=1, applied_seq=10), site="s1") == Apply()


def test_retransmitted_last_batch_is_duplicate() -> None:
    b = batch(11, 20)
    st_ = state(epoch=1, applied_seq=20, last_sha256=b.sha256)
    assert admission.check(b, st_, site="s1") == Duplicate()


def test_older_batch_is_replay() -> None:
    b = batch(1, 10)
    st_ = state(epoch=1, applied_seq=20, last_sha256="x")
    decision = admission.check(b, st_, site="s1")
    assert isinstance(decision, Refuse)
    assert decision.reason is RefuseReason.REPLAY


def test_older_epoch_is_replay() -> None:
    decision = admission.check(batch(21, 30, epoch=1), state(epoch=2, applied_seq=20), site="s1")
    assert isinstance(decision, Refuse)
    assert decision.reason is RefuseReason.REPLAY


def test_batch_after_a_hole_is_gap() -> None:
    assert admission.check(batch(15, 20), state(epoch=1, applied_seq=10), site="s1") == Gap(
        expected=11
    )


def test_overlapping_batch_is_gap() -> None:
    assert admission.check(batch(5, 20), state(epoch=1, applied_seq=10), site="s1") == Gap(
        expected=11
    )


def test_newer_epoch_needs_snapshot() -> None:
    assert admission.check(batch(11, 20, epoch=2), state(epoch=1, applied_seq=10), site="s1") == (
        NeedSnapshot()
    )


def test_fresh_site_needs_snapshot_unless_log_starts_at_one() -> None:
    assert admission.check(batch(7, 9), state(), site="s1") == NeedSnapshot()


def test_unknown_site_is_refused() -> None:
    decision = admission.check(batch(1, 2), None, site="s9")
    assert decision == Refuse(reason=RefuseReason.UNKNOWN_SITE, detail="s9")


def test_other_sites_batch_is_refused() -> None:
    decision = admission.check(batch(1, 2, site="s2"), state(), site="s1")
    assert isinstance(decision, Refuse)
    assert decision.reason is RefuseReason.WRONG_SITE


def test_batch_signed_by_another_key_is_refused() -> None:
    decision = admission.check(batch(1, 2, key=OTHER_KEY), state(), site="s1")
    assert decision == Refuse(reason=RefuseReason.BAD_SIGNATURE)


def _reason(b: Batch) -> RefuseReason | None:
    decision = admission.check(b, state(epoch=1, applied_seq=10), site="s1")
    return decision.reason if isinstance(decision, Refuse) else None


@given(st.data())
@settings(max_examples=60)
def test_any_tampering_is_refused(data: st.DataObject) -> None:
    b = batch(11, 15)
    what = data.draw(st.sampled_from(["entry", "entry_resigned_digest", "site", "seq", "epoch"]))
    if what.startswith("entry"):
        i = data.draw(st.integers(0, len(b.entries) - 1))
        field = data.draw(st.sampled_from(["hostname", "ip", "id"]))
        entries = [dict(e) for e in b.entries]
        image = dict(entries[i]["image"])
        image[field] = image[field] + "x"
        entries[i] = entries[i] | {"image": image}
        sha = b.sha256 if what == "entry" else protocol.digest(entries)
        forged = dataclasses.replace(b, entries=tuple(entries), sha256=sha)
        expected = RefuseReason.BAD_DIGEST if what == "entry" else RefuseReason.BAD_SIGNATURE
        assert _reason(forged) is expected
    elif what == "site":
        forged = dataclasses.replace(
            b, site=data.draw(st.text(min_size=1).filter(lambda s: s != "s1"))
        )
        assert _reason(forged) is RefuseReason.WRONG_SITE
    elif what == "seq":
        delta = data.draw(st.integers(1, 5))
        forged = dataclasses.replace(b, from_seq=b.from_seq + delta, to_seq=b.to_seq + delta)
        assert _reason(forged) is RefuseReason.BAD_SIGNATURE
    else:
        forged = dataclasses.replace(b, epoch=2)
        assert _reason(forged) is RefuseReason.BAD_SIGNATURE


def test_entries_out_of_order_are_malformed() -> None:
    entries = [change(12).to_image(), change(11).to_image()]
    b = protocol.make_batch(site="s1", epoch=1, from_seq=11, to_seq=12, entries=entries, key=KEY)
    assert _reason(b) is RefuseReason.MALFORMED


def test_entry_from_another_epoch_is_malformed() -> None:
    entries = [change(11, epoch=3).to_image()]
    b = protocol.make_batch(site="s1", epoch=1, from_seq=11, to_seq=11, entries=entries, key=KEY)
    assert _reason(b) is RefuseReason.MALFORMED


def test_unsupported_version_is_refused() -> None:
    b = dataclasses.replace(batch(11, 12), version=99)
    assert _reason(b) is RefuseReason.VERSION


def test_snapshot_pages_are_sequenced() -> None:
    fresh = state(epoch=1, applied_seq=10)
    assert admission.check_snapshot_page(_page(0), fresh, site="s1") == Apply()
    assert admission.check_snapshot_page(_page(1), fresh, site="s1") == Gap(expected=0)
    staged = state(
        epoch=1, applied_seq=10, snapshot_epoch=2, snapshot_as_of=100, snapshot_next_page=2
    )
    assert admission.check_snapshot_page(_page(2), staged, site="s1") == Apply()
    assert admission.check_snapshot_page(_page(1), staged, site="s1") == Duplicate()
    assert admission.check_snapshot_page(_page(0), staged, site="s1") == Duplicate()
    assert admission.check_snapshot_page(_page(4), staged, site="s1") == Gap(expected=2)
    done = state(epoch=2, applied_seq=100)
    assert admission.check_snapshot_page(_page(5), done, site="s1") == Duplicate()
    old = admission.check_snapshot_page(_page(0, epoch=1), done, site="s1")
    assert isinstance(old, Refuse)
    assert old.reason is RefuseReason.REPLAY


def test_snapshot_page_with_forged_object_is_refused() -> None:
    p = _page(0)
    forged = dataclasses.replace(p, objects=({"kind": "host", "object_id": "x", "image": {}},))
    decision = admission.check_snapshot_page(forged, state(), site="s1")
    assert decision == Refuse(reason=RefuseReason.BAD_DIGEST)


@pytest.mark.parametrize(
    ("image", "detail"),
    [
        ({"kind": "nope"}, "unknown kind"),
        ({"op": "merge"}, "unknown op"),
        ({"object_id": 5}, "object_id/image"),
        ({"seq": True}, "seq/epoch"),
    ],
)
def test_entries_with_bad_fields_are_malformed(image: dict[str, Any], detail: str) -> None:
    entry = change(11).to_image() | image
    b = protocol.make_batch(site="s1", epoch=1, from_seq=11, to_seq=11, entries=[entry], key=KEY)
    decision = admission.check(b, state(epoch=1, applied_seq=10), site="s1")
    assert isinstance(decision, Refuse)
    assert decision.reason is RefuseReason.MALFORMED
    assert detail in decision.detail


def test_batch_ending_before_it_starts_is_malformed() -> None:
    b = protocol.make_batch(site="s1", epoch=1, from_seq=11, to_seq=10, entries=[], key=KEY)
    assert _reason(b) is RefuseReason.MALFORMED


def test_snapshot_page_checks_site_and_signature_first() -> None:
    assert admission.check_snapshot_page(_page(0), None, site="s1") == Refuse(
        reason=RefuseReason.UNKNOWN_SITE, detail="s1"
    )
    forged = dataclasses.replace(_page(0), sig=protocol.make_snapshot_page(
        site="s1", epoch=9, as_of_seq=1, page=0, after=None, objects=[], last=True, key=KEY
    ).sig)  # fmt: skip
    assert admission.check_snapshot_page(forged, state(), site="s1") == Refuse(
        reason=RefuseReason.BAD_SIGNATURE
    )
    empty = protocol.make_snapshot_page(
        site="s1", epoch=2, as_of_seq=5, page=3, after=("host", "x"), objects=[], last=True,
        key=KEY,
    )  # fmt: skip
    assert empty.last_key == ("host", "x")


def _signed(b: Batch) -> protocol.SignedHeader:
    return protocol.read_signed_header(protocol.batch_upload(b).header)


def test_an_upload_header_is_admitted_before_its_body_only_when_signed_by_the_site() -> None:
    b = batch(1, 3)

    known = state()

    def decide(signed: protocol.SignedHeader, st_: SiteState | None = known, **kw: Any) -> Any:
        args = {"site": "s1", "type_": protocol.BATCH_TYPE, "max_body": 1 << 20} | kw
        refused = admission.admit(signed, st_, **args)
        return None if refused is None else refused.reason

    assert decide(_signed(b)) is None
    assert decide(_signed(b), None) is RefuseReason.UNKNOWN_SITE
    assert decide(_signed(b), site="s2") is RefuseReason.WRONG_SITE
    assert decide(_signed(batch(1, 3, key=OTHER_KEY))) is RefuseReason.BAD_SIGNATURE
    assert decide(_signed(b), max_body=b.length - 1) is RefuseReason.TOO_LARGE
    assert decide(_signed(b), type_=protocol.SNAPSHOT_TYPE) is RefuseReason.MALFORMED
    # The length is signed: a header claiming a smaller body does not verify.
    forged = dataclasses.replace(
        _signed(b), length=10, fields=dict(_signed(b).fields) | {"length": 10}
    )
    assert decide(forged) is RefuseReason.BAD_SIGNATURE


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "\ud800"])
def test_entries_that_no_digest_can_cover_are_refused_not_raised(bad: Any) -> None:
    # Central used to compute the digest of what it was sent and raise (a 500) on NaN or a
    # lone surrogate; such entries are refused like any other that does not match.
    good = batch(1, 1)
    entries = (dict(good.entries[0]) | {"actor": bad},)
    decision = admission.check(dataclasses.replace(good, entries=entries), state(), site="s1")
    assert decision == Refuse(reason=RefuseReason.BAD_DIGEST)
    page = _page(0)
    objects = (dict(page.objects[0]) | {"image": {"x": bad}},)
    decision = admission.check_snapshot_page(
        dataclasses.replace(page, objects=objects), state(), site="s1"
    )
    assert decision == Refuse(reason=RefuseReason.BAD_DIGEST)


def test_an_entry_time_that_is_not_a_unix_time_is_malformed() -> None:
    for when in ("x", True, 1e300):
        good = batch(1, 1)
        entry = dict(good.entries[0]) | {"time": when}
        b = protocol.make_batch(site="s1", epoch=1, from_seq=1, to_seq=1, entries=[entry], key=KEY)
        decision = admission.check(b, state(), site="s1")
        assert isinstance(decision, Refuse)
        assert decision.reason is RefuseReason.MALFORMED, when

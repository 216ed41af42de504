"""CI's short run of every fuzzing harness (fuzz/): a few thousand hypothesis-driven inputs
each, from the same seed every time. Every input must end in a reply, a counted drop or the
entry point's documented error; a crash fails the test unless ``fuzz.pending_regressions``
lists it (reported to its module's owner, its regression test waiting there)."""

from __future__ import annotations

import pytest

from fuzz.core import Tally
from fuzz.engines import run_hypothesis
from fuzz.pending_regressions import is_known
from fuzz.targets import TARGETS

RUNS = 2000


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_harness_finds_no_new_crash(name: str) -> None:
    tally = run_hypothesis(TARGETS[name](), RUNS, seed=1)
    assert tally.runs == RUNS
    report = tally.report()
    new = [c for c in report["found"] if not is_known(name, c)]  # type: ignore[union-attr]
    assert not new, "\n".join(f"{c['signature']}: {c['error']}\n{c['input']}" for c in new)
    # The harness reaches past its decoder: more than one kind of outcome.
    assert len(tally.outcomes) > 2, tally.outcomes


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_seed_is_bytes_and_ends_allowed_or_known(name: str) -> None:
    target = TARGETS[name]()
    tally = Tally(target)
    for seed in target.seeds():
        assert type(seed) is bytes, f"{name}: a seed of type {type(seed).__name__}"
        tally.run(seed)
    new = [c for c in tally.report()["found"] if not is_known(name, c)]  # type: ignore[union-attr]
    assert not new, new

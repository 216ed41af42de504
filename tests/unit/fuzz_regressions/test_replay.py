"""Inputs the fuzzers found, replayed through their harness (fuzz/targets): each must end in a
reply, a counted drop or the entry point's documented error.

``corpus/<target>/<name>`` holds them: crash inputs once their fix has landed (a pending one
waits in ``fuzz/pending_regressions.py``), and the slowest input of each ``make fuzz`` target,
which must still finish."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.core import Tally
from fuzz.seeds import VECTORS, udp_payloads
from fuzz.targets import TARGETS

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = sorted(p for p in CORPUS.glob("*/*") if p.is_file())


def test_the_corpus_has_an_input_for_every_target() -> None:
    assert {p.parent.name for p in CASES} == set(TARGETS)


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_replayed_input_ends_allowed(path: Path) -> None:
    tally = Tally(TARGETS[path.parent.name]())
    tally.run(path.read_bytes())
    assert not tally.crashes, next(iter(tally.crashes.values())).traceback


def test_every_capture_is_read_pcapng_included() -> None:
    """The seed reader once refused dhcp-udhcpc-dora.pcap, which is pcapng."""
    captures = sorted(VECTORS.glob("*.pcap"))
    assert captures
    for path in captures:
        assert any(dport == 67 for _, dport, _ in udp_payloads(path)), path.name

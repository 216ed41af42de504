"""The two ways inputs are made.

* ``atheris``: libFuzzer's coverage-guided mutation over the instrumented ``ddi``, ``sync`` and
  ``central`` packages, started from the target's seeds and dictionary. libFuzzer ends the
  process when its runs are done, so each target runs in a child process
  (``python -m fuzz --child``) that writes its tally to a JSON file as it goes.
* ``hypothesis`` (where atheris does not install): hypothesis draws, for each example, either
  fresh random bytes or a seed (or an input that produced an outcome not seen before) and a
  random state from which ``fuzz.mutate`` makes a batch of ``BATCH`` inputs; no coverage
  feedback beyond that outcome novelty. Examples run in rounds of ``ROUND`` with their own
  ``@seed``, so hypothesis's memory of what it tried stays bounded over a million.

Both feed every input through ``Tally.run``: crashes are recorded and fuzzing goes on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fuzz.core import Tally, Target
from fuzz.mutate import mutate, random_input

ROUND = 500
"""Examples per hypothesis run."""
BATCH = 16
"""Inputs made from one example's draws."""
MAX_NOVEL = 512
"""Inputs with a new outcome label kept for mutation at most (the fallback's feedback)."""


def atheris_available() -> bool:
    return importlib.util.find_spec("atheris") is not None


def run_hypothesis(
    target: Target,
    runs: int,
    *,
    seed: int = 0,
    progress: Callable[[Tally], None] | None = None,
) -> Tally:
    """Run ``runs`` inputs through ``target``: its seeds first, then hypothesis's."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    tally = Tally(target)
    seeds = [bytes(s) for s in target.seeds()]
    pool = list(seeds)
    seen: set[str] = set()

    def feed(data: bytes) -> None:
        before = len(tally.outcomes)
        tally.run(data)
        if len(tally.outcomes) > before and len(pool) < len(seeds) + MAX_NOVEL:
            pool.append(data)

    for data in seeds[:runs]:
        feed(data)
    seen.update(tally.outcomes)
    while tally.runs < runs:
        count = min(ROUND, -(-(runs - tally.runs) // BATCH))

        @hypothesis_seed(seed * 1_000_003 + tally.runs)
        @settings(
            max_examples=count,
            database=None,
            deadline=None,
            derandomize=False,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(
            fresh=st.binary(max_size=min(target.max_len, 512)),
            which=st.integers(min_value=0, max_value=2**31),
            state=st.integers(min_value=0, max_value=2**63),
            kind=st.integers(min_value=0, max_value=15),
        )
        def example(fresh: bytes, which: int, state: int, kind: int) -> None:
            # One example drives a batch: hypothesis's cost per example is far above a
            # harness's per input.
            rng = random.Random(state)
            for i in range(BATCH):
                if tally.runs >= runs:
                    return
                if i == 0 and kind == 0:
                    data = fresh
                elif kind == 1:
                    data = random_input(rng, target.max_len)
                else:
                    data = mutate(
                        pool[(which + i) % len(pool)],
                        rng,
                        max_len=target.max_len,
                        others=pool,
                        dictionary=(*target.dictionary, fresh),
                    )
                feed(data)

        before = tally.runs
        example()
        if tally.runs == before:  # hypothesis found nothing left to generate
            break
        if progress is not None:
            progress(tally)
    return tally


def run_atheris_child(target: Target, runs: int, report: Path, *, seed: int = 0) -> None:
    """Fuzz ``target`` with atheris in this process; libFuzzer exits the process at the end.

    The target must have been built inside ``atheris.instrument_imports`` (``fuzz.__main__``
    does) for coverage to guide it.
    """
    import atheris

    tally = Tally(target)
    every = max(1, min(20_000, runs // 20))

    def write() -> None:
        payload = tally.report() | {"engine": "atheris"}
        tmp = report.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, report)

    def one(data: bytes) -> None:
        tally.run(data)
        if tally.runs % every == 0 or tally.runs >= runs:
            write()

    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{target.name}-"))
    for i, data in enumerate(target.seeds()):
        (corpus / f"seed-{i:04d}").write_bytes(bytes(data))
    args = [
        sys.argv[0],
        f"-runs={runs}",
        f"-max_len={target.max_len}",
        f"-seed={seed or int(time.time()) % 2**31}",
        "-timeout=120",
        "-rss_limit_mb=3072",
        "-print_final_stats=1",
    ]
    if target.dictionary:
        dictionary = corpus.with_suffix(".dict")
        dictionary.write_text("".join(_dict_entry(token) for token in target.dictionary))
        args.append(f"-dict={dictionary}")
    args.append(str(corpus))
    write()
    atheris.Setup(args, one)
    atheris.Fuzz()


def _dict_entry(token: bytes) -> str:
    """One line of a libFuzzer dictionary: the token, every byte hex-escaped."""
    escaped = "".join(f"\\x{b:02x}" for b in token)
    return f'"{escaped}"\n'

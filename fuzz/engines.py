"""The two ways inputs are made.

* ``atheris``: libFuzzer's coverage-guided mutation over the instrumented ``ddi``, ``sync`` and
  ``central`` packages, started from the target's seeds and dictionary; a share of the
  mutations is ``fuzz.mutate``'s. libFuzzer ends the
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
"""Inputs made from one example's draws: its own bytes, then mutations."""
RANDOM_SHARE = 0.05
"""Share of the fallback's inputs that are plain random bytes rather than mutations."""
OWN_MUTATIONS = 0.2
"""Share of atheris's mutations made by ``fuzz.mutate`` instead of libFuzzer."""
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

    def feed(data: bytes) -> None:
        before = len(tally.outcomes)
        tally.run(data)
        if len(tally.outcomes) > before and len(pool) < len(seeds) + MAX_NOVEL:
            pool.append(data)

    for data in seeds[:runs]:
        feed(data)
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
            state=st.integers(min_value=0, max_value=2**63),
        )
        def example(fresh: bytes, state: int) -> None:
            # One example drives a batch: hypothesis's cost per example is far above a
            # harness's per input. Hypothesis repeats small integers often, so the random
            # state also takes the input count: no two batches alike, and still a replay.
            rng = random.Random(f"{seed}:{tally.runs}:{state}")
            feed(fresh)
            for _ in range(BATCH - 1):
                if tally.runs >= runs:
                    return
                if rng.random() < RANDOM_SHARE:
                    data = random_input(rng, target.max_len)
                else:
                    data = mutate(
                        pool[rng.randrange(len(pool))],
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

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        # libFuzzer's own mutations, and now and then fuzz.mutate's, which libFuzzer lacks: a
        # block repeated hundreds of times (a 5,000-digit number, JSON nested past the
        # recursion limit) is out of its reach.
        rng = random.Random(seed)
        if rng.random() < OWN_MUTATIONS:
            return mutate(data, rng, max_len=max_size, dictionary=target.dictionary)
        mutated: bytes = atheris.Mutate(data, max_size)
        return mutated

    write()
    atheris.Setup(args, one, custom_mutator=mutator)
    atheris.Fuzz()


def _dict_entry(token: bytes) -> str:
    """One line of a libFuzzer dictionary: the token, every byte hex-escaped."""
    escaped = "".join(f"\\x{b:02x}" for b in token)
    return f'"{escaped}"\n'

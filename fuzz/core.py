"""What every harness shares: the ``Target`` a harness exposes, and ``Tally``, which runs inputs
through one and records the outcome of each.

An input may end in exactly three ways (the issue's contract for every wire entry point):

* a reply (bytes to send, an HTTP status, a transfer that runs to its end);
* a counted drop (the entry point's own drop value with its reason);
* the documented error type of that entry point (``DhcpFormatError`` from the DHCP decoder,
  ``SyncRefused`` from the sync decoders, ``BadRequest``/``Invalid`` from the API readers...).

A harness returns a short label for the first two and lets the third propagate; it raises
``Unexpected`` when the entry point returned something outside its documented result type.
``Tally.run`` turns anything raised that is not in the target's ``allowed`` errors into a crash,
keyed by exception type and the innermost frame inside the repository, so one fault found a
thousand times is one crash with its smallest input.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SLOW_KEPT = 8
REPO = Path(__file__).resolve().parent.parent
"""The repository root: crash locations are given relative to it."""


class Unexpected(Exception):
    """The entry point returned a value outside its documented result type."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One wire entry point under fuzzing."""

    name: str
    doc: str
    """What one input is and what the harness feeds it to."""
    check: Callable[[bytes], str]
    """Feed one input; return the outcome label (reply/drop reason), or raise."""
    seeds: Callable[[], Sequence[bytes]]
    """Valid (and a few deliberately broken) inputs to start mutating from."""
    allowed: tuple[type[BaseException], ...] = ()
    """The documented error types: raising one of these is an allowed outcome."""
    max_len: int = 4096
    """Largest input the fuzzers generate."""
    dictionary: tuple[bytes, ...] = ()
    """Tokens worth inserting (libFuzzer's -dict; the fallback mutator uses them too)."""
    reset: Callable[[], None] = lambda: None
    """Start the target's state over (the engine's offer table, the answer cache...)."""


@dataclass(slots=True)
class Crash:
    signature: str
    """``ExceptionType at path:line`` (innermost repository frame)."""
    error: str
    where: str
    function: str
    traceback: str
    data: bytes
    """The smallest input seen for this signature."""
    count: int = 1


@dataclass(slots=True)
class Tally:
    """Runs inputs through one target and keeps what the report needs."""

    target: Target
    runs: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    crashes: dict[str, Crash] = field(default_factory=dict)
    slowest: float = 0.0
    slowest_input: bytes = b""
    elapsed: float = 0.0
    slow: list[tuple[float, bytes]] = field(default_factory=list)
    """The ``SLOW_KEPT`` slowest inputs as (seconds, input), a heap: on a busy machine the
    slowest run is often a scheduling pause, so the report times these again."""

    def run(self, data: bytes) -> None:
        started = time.perf_counter()
        try:
            label = self.target.check(data)
        except self.target.allowed as exc:
            label = f"error:{type(exc).__name__}"
        except RecursionError as exc:
            # Caught apart: the traceback is thousands of frames deep.
            self._crash(data, exc)
            label = "crash"
        except Exception as exc:  # noqa: BLE001 (every other exception is what is looked for)
            self._crash(data, exc)
            label = "crash"
        took = time.perf_counter() - started
        self.elapsed += took
        self.runs += 1
        self.outcomes[label] = self.outcomes.get(label, 0) + 1
        if took > self.slowest:
            self.slowest = took
            self.slowest_input = data
        if len(self.slow) < SLOW_KEPT:
            heapq.heappush(self.slow, (took, data))
        elif took > self.slow[0][0]:
            heapq.heapreplace(self.slow, (took, data))

    def _crash(self, data: bytes, exc: BaseException) -> None:
        where, function = location(exc)
        signature = f"{type(exc).__name__} at {where}"
        found = self.crashes.get(signature)
        if found is not None:
            found.count += 1
            if len(data) < len(found.data):
                found.data = data
            return
        lines = traceback.format_exception(exc)
        text = "".join(lines[:1] + lines[-12:]) if len(lines) > 13 else "".join(lines)
        self.crashes[signature] = Crash(
            signature=signature,
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
            where=where,
            function=function,
            traceback=text,
            data=data,
        )

    def retime(self, repeats: int = 3) -> tuple[float, bytes]:
        """The slowest of the kept slow inputs when each is run again ``repeats`` times and
        its fastest time counted: (seconds, input)."""
        return retime(self.target, [data for _, data in self.slow], repeats)

    def report(self) -> dict[str, object]:
        return {
            "target": self.target.name,
            "runs": self.runs,
            "crashes": len(self.crashes),
            "slowest_ms": round(self.slowest * 1000, 3),
            "slowest_input": self.slowest_input.hex(),
            "slow_inputs": [data.hex() for _, data in sorted(self.slow, reverse=True)],
            "mean_us": round(self.elapsed / self.runs * 1e6, 1) if self.runs else 0.0,
            "outcomes": dict(sorted(self.outcomes.items(), key=lambda kv: -kv[1])[:20]),
            "found": [
                {
                    "signature": c.signature,
                    "error": c.error,
                    "where": c.where,
                    "function": c.function,
                    "count": c.count,
                    "input": c.data.hex(),
                    "sha1": hashlib.sha1(c.data).hexdigest(),
                    "traceback": c.traceback,
                }
                for c in self.crashes.values()
            ],
        }


_NOT_OURS = ("fuzz", ".venv")


def location(exc: BaseException) -> tuple[str, str]:
    """``path:line`` and function of the innermost frame of ``exc`` in the repository (outside
    fuzz/), else of the innermost frame at all."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        path = Path(frame.filename)
        if path.is_relative_to(REPO) and not any(path.is_relative_to(REPO / d) for d in _NOT_OURS):
            return f"{path.relative_to(REPO)}:{frame.lineno}", frame.name
    if frames:
        return f"{frames[-1].filename}:{frames[-1].lineno}", frames[-1].name
    return "?", "?"


def retime(target: Target, inputs: list[bytes], repeats: int = 3) -> tuple[float, bytes]:
    """Run each input ``repeats`` times, each from the target's reset state (crashes included:
    they are timed too), and return the input whose fastest run is slowest, with that time."""
    worst, worst_input = 0.0, b""
    for data in inputs:
        best = float("inf")
        for _ in range(repeats):
            # From a fresh state each time: a repeat would otherwise be an answer-cache hit.
            target.reset()
            started = time.perf_counter()
            # Timing only: Tally.run recorded the verdict.
            with contextlib.suppress(Exception):
                target.check(data)
            best = min(best, time.perf_counter() - started)
        if best > worst:
            worst, worst_input = best, data
    return worst, worst_input

"""Crashes the fuzzers found in modules other work owns at the moment: each with its regression
test below, its input, exception and location, so the owner can fix it and move the test in.

pytest does not collect this file (its name does not start with ``test_``, and ``fuzz/`` is not
among the test paths); every test here fails on the code as it is. Once the fix lands, move the
test into ``tests/unit/fuzz_regressions/`` and drop its line from ``KNOWN``. ``KNOWN`` lets the
runner and the CI smoke tell these from new crashes: (target, exception type, file, function),
without the line, which moves with edits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KNOWN: frozenset[tuple[str, str, str, str]] = frozenset()
"""Empty: every crash found so far is fixed, its test in tests/unit/fuzz_regressions/."""


def is_known(target: str, crash: Mapping[str, Any]) -> bool:
    kind = str(crash["signature"]).split(" ", 1)[0]
    path = str(crash["where"]).rsplit(":", 1)[0]
    return (target, kind, path, str(crash["function"])) in KNOWN

"""What a test needs from the machine (a tool, root, a kernel feature), asked for in one way.

Outside CI a missing prerequisite skips the test with the reason. Under ``CI=true`` it fails:
``make test`` installs every Debian tool (``make debian-tools``) and CI runs as root, so a lack
there is a broken set-up, never a reason for a test to pass quietly. This is the only place the
suite reads ``CI``.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
"""Whether the suite runs under CI (``CI=true``, as the CI runner sets it)."""


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test for ``reason``; under CI fail it instead."""
    if IN_CI:
        pytest.fail(f"prerequisite missing under CI: {reason}")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """The path of the program ``name`` on PATH (skip or fail when there is none)."""
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} is not installed")
    return path


def require_tools(*names: str) -> None:
    """Every program in ``names`` on PATH (skip or fail naming all that are missing)."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        skip_or_fail(f"missing tools: {', '.join(missing)}")


def require_root(why: str = "needs root") -> None:
    """Running as root (skip or fail with ``why``)."""
    if os.geteuid() != 0:
        skip_or_fail(why)


def unless(available: bool, reason: str) -> pytest.MarkDecorator:
    """A mark for a test that needs what ``available`` says the platform has: skipped with
    ``reason`` outside CI; under CI the test runs (and fails) instead."""
    return pytest.mark.skipif(not available and not IN_CI, reason=reason)

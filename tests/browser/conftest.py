"""The browser test lab: Playwright for Python driving Debian's ``chromium``, headless.

Playwright's own browser download is not reachable here, so the fixture launches the system
binary (``CHROMIUM``) with a fresh profile per context and everything that would phone home
turned off. A context may run the browser inside a network namespace of the lab (through
``ip netns exec``: Playwright talks to the browser over a pipe, not the network), so it reaches
a daemon listening on a lab address.

Screenshots are taken by the tests themselves at ``VIEWPORT``. They land in a temporary folder,
so a test run leaves the work tree clean; ``make screenshots`` sets ``DDI_SCREENSHOTS`` to
``docs/screenshots`` to refresh the pictures the README shows.

Under CI=true a missing chromium or playwright fails the test instead of skipping it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.ci import require_root, require_tool, skip_or_fail

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
VIEWPORT = {"width": 1000, "height": 700}
SCREENSHOTS = Path(
    os.environ.get("DDI_SCREENSHOTS") or tempfile.mkdtemp(prefix="ddi-screenshots-")
).resolve()
TIMEOUT_MS = 15_000
"""How long a browser action or expectation may take before the test fails."""


def _chromium() -> str:
    found = require_tool("chromium")
    return CHROMIUM if Path(CHROMIUM).exists() else found


@dataclass
class BrowserLab:
    """Opens browser contexts (each a fresh profile) and closes them all at the end."""

    playwright: Playwright
    folder: Path
    contexts: list[BrowserContext] = field(default_factory=list)

    def open(
        self,
        *,
        ns: str | None = None,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        pins: Sequence[str] = (),
    ) -> BrowserContext:
        """A new context (its own cookies and profile); inside namespace ``ns`` when given.
        ``pins`` (from :func:`spki_pin`) are the certificates it trusts besides the system's:
        a daemon's self-signed one, pinned rather than every error ignored."""
        executable = _chromium()
        if ns is not None:
            require_root("the browser runs inside a lab namespace")
            wrapper = self.folder / f"chromium-{ns}"
            wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns} {executable} "$@"\n')
            wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
            executable = str(wrapper)
        profile = self.folder / f"profile{len(self.contexts)}"
        profile.mkdir()
        options: dict[str, Any] = {}
        if base_url is not None:
            options["base_url"] = base_url
        if headers:
            options["extra_http_headers"] = dict(headers)
        args = list(CHROMIUM_ARGS)
        if pins:
            args.append("--ignore-certificate-errors-spki-list=" + ",".join(pins))
        context = self.playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, args=args, headless=True,
            viewport=VIEWPORT, device_scale_factor=1, reduced_motion="reduce", **options,
        )  # fmt: skip
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        return context

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()


@pytest.fixture
def browser_lab(tmp_path: Path) -> Iterator[BrowserLab]:
    """A :class:`BrowserLab`; every context it opened is closed after the test."""
    _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -e '.[test]')")
    folder = tmp_path / "browser"
    folder.mkdir()
    with sync_playwright() as playwright:
        lab = BrowserLab(playwright=playwright, folder=folder)
        try:
            yield lab
        finally:
            lab.close()


def spki_pin(pem: bytes) -> str:
    """Chromium's pin of a PEM certificate: base64 of the SHA-256 of its public key (SPKI)."""
    cert = x509.load_pem_x509_certificate(pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def screenshot(page: Page, name: str) -> Path:
    """The page's viewport as ``SCREENSHOTS/NAME.png``, made smaller when ``optipng``
    is installed (lossless)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), type="png", scale="css", animations="disabled",
                    caret="hide")  # fmt: skip
    if shutil.which("optipng"):
        subprocess.run(["optipng", "-quiet", "-o2", "-strip", "all", str(path)], check=False,
                       timeout=60)  # fmt: skip
    assert path.stat().st_size > 1000, f"{path}: an empty screenshot"
    return path


def tab_to(page: Page, element_id: str, *, most: int = 40) -> int:
    """Press Tab until the element with ``element_id`` has the focus; the number of presses.
    Fails when it is not reached in ``most`` presses (not reachable by keyboard)."""
    for presses in range(1, most + 1):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return presses
    raise AssertionError(f"#{element_id} not reached with {most} presses of Tab")


# The namespace lab and `ddi serve` in it, for tests against a real daemon.
from tests.integration.conftest import ddi_daemon, lab  # noqa: E402

__all__ = [
    "BrowserLab", "browser_lab", "ddi_daemon", "lab", "screenshot", "spki_pin", "tab_to",
]  # fmt: skip

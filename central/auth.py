"""Who may read what at central: the edge's token model (``ddi.tokens``) plus the legacy
``read_token``.

Scopes at central: ``metrics`` reads ``/metrics`` alone; ``read`` reads the pull feed, the
objects, the conflicts and the fleet console; ``write`` is ``read`` plus the console's actions.
A token whose ``sites`` is a list sees those sites only: lists are filtered, another site's
pages and feeds answer 403. The edges' signed uploads and cursor reads do not pass through here
(a site's key is no read credential, and a token is no site credential).

The legacy ``read_token`` keeps working as a ``read`` token for every site, named
``read-token``. With neither a tokens file nor a read token, reads are open (central then listens
on loopback only, see ``central.config.load_central_config``).
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

from ddi.errors import ConfigError
from ddi.tokens import Token, TokenFile, digest

log = logging.getLogger(__name__)

LEGACY_NAME = "read-token"
"""The name the legacy ``read_token`` goes by (in the console and the logs)."""

OPEN = Token(name="anonymous", scopes=frozenset({"read"}), sha256="", created="", sites=None)
"""Who a request is when reads are open (loopback, no credentials configured)."""

MAX_BEARER = 256
"""Characters of an ``Authorization`` value looked at; a token is under 64."""


class Readers:
    """The credentials central accepts for reads: a tokens file, a legacy read token, both,
    or neither (open reads)."""

    def __init__(self, *, tokens_file: Path | None = None, read_token: str | None = None) -> None:
        self._file = None if tokens_file is None else TokenFile(tokens_file)
        self._legacy = read_token or ""
        self._legacy_token = Token(
            name=LEGACY_NAME,
            scopes=frozenset({"read"}),
            sha256=digest(self._legacy) if self._legacy else "",
            created="",
            sites=None,
        )

    @property
    def open(self) -> bool:
        """No credential is configured: every read is allowed (loopback only)."""
        return self._file is None and not self._legacy

    def verify(self, secret: str) -> Token | None:
        """The token this secret is, or None."""
        if not secret or len(secret) > MAX_BEARER:
            return None
        if self._legacy and hmac.compare_digest(
            secret.encode("utf-8", "surrogateescape"), self._legacy.encode("ascii")
        ):
            return self._legacy_token
        if self._file is None:
            return None
        self._refresh()
        return self._file.verify(secret)

    def bearer(self, header: str | None) -> Token | None:
        """The token of an ``Authorization: Bearer <secret>`` value, or None."""
        if header is None or len(header) > MAX_BEARER:
            return None
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.verify(secret.strip())

    def current(self, token: Token) -> Token | None:
        """``token`` as the credentials hold it now (its scopes or sites may have changed), or
        None once it was removed: a console session ends with its token."""
        if token is OPEN:
            return OPEN if self.open else None
        if token is self._legacy_token:
            return token
        if self._file is None:
            return None
        self._refresh()
        return self._file.by_digest(token.sha256)

    def _refresh(self) -> None:
        """Pick up ``ddi-central token add|rm`` made while central runs (one stat per call);
        a broken file keeps the tokens read last."""
        assert self._file is not None
        try:
            self._file.reload_if_changed()
        except ConfigError as exc:
            log.warning("tokens file not reloaded, keeping the previous tokens: %s", exc)


def site_visible(token: Token, site: str) -> bool:
    """Whether ``token`` (already known to hold ``read``) may see ``site``."""
    return token.sites is None or site in token.sites


def visible_sites(token: Token, sites: list[str]) -> list[str]:
    return [site for site in sites if site_visible(token, site)]

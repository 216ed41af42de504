"""Browser sessions for the consoles: a token's secret is given once on the login form and the
browser then holds a random session id in a cookie.

A session is bound to the token it was opened with (by the token's hash): when that token leaves
the tokens file (``ddi token rm``) or is replaced, the session ends on its next use. A session
lives at most ``ABSOLUTE`` seconds, and ``IDLE`` seconds after its last use; at most
``MAX_SESSIONS`` exist, the oldest going first, so a flood of logins costs bounded memory.

Every unsafe request made with a session carries its CSRF secret (a form field or a header),
compared in constant time (``check_csrf``); the cookie is also ``SameSite=Strict``, so a
cross-site form does not even send it.

Sessions live in memory only: a restart logs everyone out, which is the safe direction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ddi.tokens import Token

COOKIE = "ddi_session"
"""The session cookie's name."""
CSRF_FIELD = "csrf"
"""The form field that carries a session's CSRF secret."""
CSRF_HEADER = "X-CSRF-Token"
"""The header that carries it (scripts)."""
IDLE = 3600.0
"""Seconds a session survives without a request."""
ABSOLUTE = 12 * 3600.0
"""Seconds a session lives at most, used or not."""
MAX_SESSIONS = 10_000
MAX_ID = 128
"""Characters of a session id or CSRF value read from a request; longer is no session."""


class Session:
    """One browser's login: its id (only in the cookie), CSRF secret and lifetime.

    Not a value: ``last_used`` moves with each request (the idle limit)."""

    __slots__ = ("created", "csrf", "id", "last_used", "token")

    def __init__(self, *, id: str, csrf: str, token: Token, created: float) -> None:
        self.id = id
        self.csrf = csrf
        self.token = token
        """The token as it was at login; ``Sessions.get`` refreshes it from the tokens file."""
        self.created = created
        self.last_used = created

    @property
    def expires(self) -> float:
        """When the session ends unless used again (monotonic seconds)."""
        return min(self.last_used + IDLE, self.created + ABSOLUTE)


@dataclass(frozen=True, slots=True, kw_only=True)
class CookieAttributes:
    """What ``Set-Cookie`` says besides the value: the browser sends it back only to this
    server (``Path=/``), never to scripts (``HttpOnly``), never on a cross-site request
    (``SameSite=Strict``), and only over TLS when the listener has it (``Secure``)."""

    secure: bool

    def as_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of aiohttp's ``StreamResponse.set_cookie``."""
        return {
            "httponly": True,
            "samesite": "Strict",
            "secure": self.secure,
            "path": "/",
            "max_age": int(ABSOLUTE),
        }


def _key(session_id: str) -> str:
    # Looked up by a hash of the id, so the dict's string comparisons say nothing about ids.
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


class Sessions:
    """The open sessions of one listener.

    Args:
        current: the token a session's token is now (looked up by its ``sha256``), or None
            when it was removed; called on every ``get``, so a removed token ends its sessions.
        clock: monotonic seconds (tests pass their own).
        limit: sessions kept at most; opening one more drops the oldest.
    """

    def __init__(
        self,
        current: Callable[[Token], Token | None],
        *,
        clock: Callable[[], float] = time.monotonic,
        limit: int = MAX_SESSIONS,
    ) -> None:
        self._current = current
        self._clock = clock
        self._limit = limit
        self._by_key: dict[str, Session] = {}
        """In creation order (dicts keep it): the first is the oldest."""

    def __len__(self) -> int:
        return len(self._by_key)

    def open(self, token: Token) -> Session:
        """A new session for ``token``; its id goes in the cookie."""
        now = self._clock()
        self._drop_expired(now)
        while len(self._by_key) >= self._limit:
            del self._by_key[next(iter(self._by_key))]
        session = Session(
            id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32), token=token, created=now
        )
        self._by_key[_key(session.id)] = session
        return session

    def get(self, session_id: str) -> Session | None:
        """The live session with this id (its idle clock restarted), or None: unknown,
        expired, or its token no longer in the tokens file."""
        if not session_id or len(session_id) > MAX_ID:
            return None
        key = _key(session_id)
        session = self._by_key.get(key)
        if session is None:
            return None
        now = self._clock()
        token = self._current(session.token)
        if now >= session.expires or token is None:
            del self._by_key[key]
            return None
        session.token = token
        session.last_used = now
        return session

    def close(self, session_id: str) -> None:
        """End the session (logout); unknown ids are ignored."""
        if session_id and len(session_id) <= MAX_ID:
            self._by_key.pop(_key(session_id), None)

    def _drop_expired(self, now: float) -> None:
        # Creation order is absolute-expiry order: only the front can have reached ABSOLUTE.
        while self._by_key:
            key, oldest = next(iter(self._by_key.items()))
            if now < oldest.created + ABSOLUTE:
                break
            del self._by_key[key]


def check_csrf(session: Session, value: str | None) -> bool:
    """Whether ``value`` (the form field or header) is this session's CSRF secret."""
    if not value or len(value) > MAX_ID:
        return False
    return hmac.compare_digest(session.csrf.encode(), value.encode("utf-8", "surrogateescape"))

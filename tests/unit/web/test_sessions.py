"""Console sessions: lifetime (idle and absolute), the bound on their number, the token they
stand on leaving the tokens file, and the CSRF check."""

from __future__ import annotations

from dataclasses import replace

from ddi.tokens import Token
from ddi.web.sessions import (
    ABSOLUTE,
    IDLE,
    CookieAttributes,
    Session,
    Sessions,
    check_csrf,
)

TOKEN = Token(name="alice", scopes=frozenset({"read"}), sha256="a" * 64, created="")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(limit: int = 100) -> tuple[Sessions, Clock, dict[str, Token]]:
    clock = Clock()
    live = {TOKEN.sha256: TOKEN}
    return Sessions(lambda t: live.get(t.sha256), clock=clock, limit=limit), clock, live


def test_open_get_close() -> None:
    sessions, _, _ = make()
    session = sessions.open(TOKEN)
    assert len(session.id) >= 43
    assert len(session.csrf) >= 43
    assert session.id != session.csrf
    assert sessions.get(session.id) is session
    assert sessions.get(session.id + "x") is None
    assert sessions.get("") is None
    assert sessions.get("a" * 10_000) is None
    sessions.close(session.id)
    assert sessions.get(session.id) is None
    sessions.close("never")  # unknown: ignored


def test_idle_expiry_restarts_on_use_and_absolute_expiry_does_not() -> None:
    sessions, clock, _ = make()
    session = sessions.open(TOKEN)
    for _ in range(int(ABSOLUTE // (IDLE - 1))):
        clock.now += IDLE - 1
        if clock.now >= session.created + ABSOLUTE:
            break
        assert sessions.get(session.id) is session, "used within the idle limit: alive"
    clock.now = session.created + ABSOLUTE
    assert sessions.get(session.id) is None, "past 12 h: ended however busy"

    idle = sessions.open(TOKEN)
    clock.now += IDLE
    assert sessions.get(idle.id) is None


def test_the_oldest_goes_when_the_bound_is_reached() -> None:
    sessions, clock, _ = make(limit=3)
    opened: list[Session] = []
    for _ in range(4):
        clock.now += 1
        opened.append(sessions.open(TOKEN))
    assert len(sessions) == 3
    assert sessions.get(opened[0].id) is None
    assert all(sessions.get(s.id) is s for s in opened[1:])


def test_expired_sessions_are_dropped_when_a_new_one_opens() -> None:
    sessions, clock, _ = make()
    for _ in range(5):
        sessions.open(TOKEN)
    clock.now += ABSOLUTE
    sessions.open(TOKEN)
    assert len(sessions) == 1


def test_a_removed_token_ends_its_sessions_and_a_changed_one_is_followed() -> None:
    sessions, _, live = make()
    session = sessions.open(TOKEN)
    live[TOKEN.sha256] = replace(TOKEN, scopes=frozenset({"write"}))
    got = sessions.get(session.id)
    assert got is not None
    assert got.token.scopes == {"write"}
    del live[TOKEN.sha256]
    assert sessions.get(session.id) is None
    live[TOKEN.sha256] = TOKEN
    assert sessions.get(session.id) is None, "ended for good, not suspended"


def test_csrf() -> None:
    sessions, _, _ = make()
    session = sessions.open(TOKEN)
    other = sessions.open(TOKEN)
    assert check_csrf(session, session.csrf)
    assert not check_csrf(session, other.csrf)
    assert not check_csrf(session, None)
    assert not check_csrf(session, "")
    assert not check_csrf(session, session.csrf + "\udcff")
    assert not check_csrf(session, "x" * 100_000)


def test_cookie_attributes() -> None:
    assert CookieAttributes(secure=True).as_kwargs() == {
        "httponly": True,
        "samesite": "Strict",
        "secure": True,
        "path": "/",
        "max_age": int(ABSOLUTE),
    }
    assert CookieAttributes(secure=False).as_kwargs()["secure"] is False

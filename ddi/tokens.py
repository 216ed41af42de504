"""Named API tokens with scopes, kept hashed in a tokens file.

A token is ``ddi_`` and 32 random bytes in URL-safe base64: shown once when made, stored only as
its SHA-256. A slow password hash would buy nothing here: the secret has 256 bits of entropy, so
a stolen file cannot be brute-forced, and verifying on every request must stay cheap.

Scopes nest: ``write`` may also read, ``read`` may also scrape metrics, ``metrics`` reads
``/metrics`` alone (what Prometheus gets). ``sites`` narrows a token to some sites (the fleet
console at central); ``None`` is every site, and an edge ignores it.

The file is JSON, mode 0600, replaced atomically (write, fsync, rename), so a reader never sees
half a file and a crash leaves the old one::

    {"version": 1, "tokens": [{"name": "grafana", "scopes": ["metrics"],
      "sha256": "<hex>", "created": "2026-12-05T00:00:00Z", "sites": null}]}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ddi.errors import ConfigError, Conflict, Invalid, NotFound

SCOPES = ("metrics", "read", "write")
"""From least to most: each scope grants those before it."""
PREFIX = "ddi_"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
"""A token's name: it is recorded as the actor of its writes, so no ':' or spaces."""
MAX_TOKENS = 10_000
MAX_FILE_BYTES = 4 * 1024 * 1024


def granted(scopes: Iterable[str]) -> frozenset[str]:
    """Every scope that ``scopes`` grant: ``write`` brings ``read`` and ``metrics``."""
    top = max((SCOPES.index(scope) for scope in scopes), default=-1)
    return frozenset(SCOPES[: top + 1])


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    name: str
    scopes: frozenset[str]
    """As given; ``allows`` applies the nesting."""
    sha256: str
    created: str
    sites: tuple[str, ...] | None = None

    def allows(self, scope: str, site: str | None = None) -> bool:
        if scope not in granted(self.scopes):
            return False
        return site is None or self.sites is None or site in self.sites

    def public(self) -> dict[str, Any]:
        """What ``token list`` shows: everything but the hash."""
        return {
            "name": self.name,
            "scopes": sorted(self.scopes, key=SCOPES.index),
            "created": self.created,
            "sites": None if self.sites is None else list(self.sites),
        }


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def check_scopes(scopes: Sequence[str]) -> frozenset[str]:
    if not scopes:
        raise Invalid("scopes", "", f"a token needs at least one of {', '.join(SCOPES)}")
    for scope in scopes:
        if scope not in SCOPES:
            raise Invalid("scope", scope, f"unknown scope; one of {', '.join(SCOPES)}")
    return frozenset(scopes)


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise Invalid(
            "name", name, "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


class TokenFile:
    """The tokens file: load, look up by secret, add and remove (each a whole-file rewrite).

    Lookups are by hash in a dict, so a request costs one SHA-256 whatever the number of
    tokens; ``reload_if_changed`` picks up edits made by another process (``ddi token add``
    while the daemon runs) by the file's mtime and size.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_hash: dict[str, Token] = {}
        self._stamp: tuple[int, int] | None = None
        self.reload_if_changed()

    def tokens(self) -> list[Token]:
        return sorted(self._by_hash.values(), key=lambda token: token.name)

    def verify(self, secret: str) -> Token | None:
        """The token whose secret this is, or None."""
        if not secret.startswith(PREFIX) or len(secret) > 128:
            return None
        return self._by_hash.get(digest(secret))

    def by_digest(self, sha256: str) -> Token | None:
        """The token whose hash this is (a browser session holds its token's hash), or None."""
        return self._by_hash.get(sha256)

    def reload_if_changed(self) -> bool:
        """Read the file again if it changed on disk; True when it did.

        Raises:
            ConfigError: the file exists and is not a valid tokens file (the old tokens stay).
        """
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            changed = self._stamp is not None or bool(self._by_hash)
            self._by_hash, self._stamp = {}, None
            return changed
        except OSError as exc:
            raise ConfigError(str(self.path), f"cannot read the tokens file: {exc}") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return False
        self._by_hash = {token.sha256: token for token in _read(self.path)}
        self._stamp = stamp
        return True

    def add(
        self, name: str, scopes: Sequence[str], *, sites: Sequence[str] | None = None
    ) -> tuple[Token, str]:
        """Make a token; returns it and its secret (the only time the secret exists).

        Raises:
            Invalid: bad name or scope.
            Conflict: a token of that name exists.
        """
        self.reload_if_changed()
        check_name(name)
        granted_scopes = check_scopes(scopes)
        if any(token.name == name for token in self._by_hash.values()):
            raise Conflict("token name", name, "an existing token (remove it first)")
        if len(self._by_hash) >= MAX_TOKENS:
            raise Invalid("name", name, f"the file holds {MAX_TOKENS} tokens already")
        secret = new_secret()
        token = Token(
            name=name,
            scopes=granted_scopes,
            sha256=digest(secret),
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            sites=None if sites is None else tuple(sites),
        )
        self._write([*self._by_hash.values(), token])
        return token, secret

    def remove(self, name: str) -> Token:
        """Remove the token named ``name``.

        Raises:
            NotFound: there is none.
        """
        self.reload_if_changed()
        for token in self._by_hash.values():
            if token.name == name:
                self._write([other for other in self._by_hash.values() if other is not token])
                return token
        raise NotFound("token", name)

    def _write(self, tokens: list[Token]) -> None:
        body = {
            "version": 1,
            "tokens": [
                {**token.public(), "sha256": token.sha256}
                for token in sorted(tokens, key=lambda t: t.name)
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(body, out, indent=1)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        self._stamp = None
        self.reload_if_changed()


def _read(path: Path) -> list[Token]:
    where = str(path)
    try:
        with path.open("rb") as source:
            raw = source.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(where, f"cannot read the tokens file: {exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(where, f"tokens file is over {MAX_FILE_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(where, f"tokens file is not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("version") != 1:
        raise ConfigError(where, 'tokens file must be {"version": 1, "tokens": [...]}')
    entries = body.get("tokens")
    if not isinstance(entries, list):
        raise ConfigError(where, "tokens file: 'tokens' must be a list")
    tokens: list[Token] = []
    names: set[str] = set()
    for number, entry in enumerate(entries[:MAX_TOKENS]):
        tokens.append(_entry(f"{where}: tokens[{number}]", entry))
        if tokens[-1].name in names:
            raise ConfigError(f"{where}: tokens[{number}]", f"name {tokens[-1].name!r} twice")
        names.add(tokens[-1].name)
    return tokens


def _entry(where: str, entry: object) -> Token:
    if not isinstance(entry, dict):
        raise ConfigError(where, "must be an object")
    name, scopes, sha, created = (entry.get(k) for k in ("name", "scopes", "sha256", "created"))
    sites = entry.get("sites")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(where, "name must be 1-63 letters, digits, '.', '_' or '-'")
    if not isinstance(scopes, list) or not scopes or any(s not in SCOPES for s in scopes):
        raise ConfigError(where, f"scopes must be a non-empty list of {', '.join(SCOPES)}")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ConfigError(where, "sha256 must be 64 lowercase hex digits")
    if sites is not None and (
        not isinstance(sites, list) or not all(isinstance(s, str) and s for s in sites)
    ):
        raise ConfigError(where, "sites must be null or a list of site names")
    return Token(
        name=name,
        scopes=frozenset(scopes),
        sha256=sha,
        created=created if isinstance(created, str) else "",
        sites=None if sites is None else tuple(sites),
    )

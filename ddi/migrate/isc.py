"""ISC dhcpd's files: ``host {}`` blocks of ``dhcpd.conf`` (at any depth: inside ``subnet``,
``group`` and ``shared-network`` blocks too) and the lease database ``dhcpd.leases``.

Both share one syntax (dhcpd.conf(5)): statements end with ``;``, blocks are ``words { ... }``,
``#`` starts a comment, strings are double-quoted with C escapes (``\\001`` is octal).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address

from ddi.migrate.dnsmasq import unnamed_host
from ddi.migrate.items import HostItem, LeaseItem, Parsed, Problem
from ddi.migrate.limits import MAX_LINE, number

__all__ = ["parse_conf", "parse_leases"]

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[{};]|[^\s{};"#]+|#[^\n]*|\n|[ \t\r\f\v]+')
_MAX_DEPTH = 32
_TIME = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{1,2}):(\d{1,2})$")


class _SyntaxError(Exception):
    def __init__(self, line: int, why: str) -> None:
        super().__init__(why)
        self.line = line


@dataclass(frozen=True, slots=True, kw_only=True)
class _Statement:
    line: int
    words: tuple[str, ...]
    block: tuple[_Statement, ...] | None = None


def _tokens(text: str) -> Iterator[tuple[int, str]]:
    line = 1
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:
            raise _SyntaxError(line, f"cannot read {text[position : match.start()][:20]!r}")
        position = match.end()
        token = match.group()
        if token == "\n":
            line += 1
        elif not token.isspace() and not token.startswith("#"):
            yield line, token
    if position != len(text):
        raise _SyntaxError(line, f"cannot read {text[position:][:20]!r} (an unclosed string?)")


def _parse(text: str) -> tuple[_Statement, ...]:
    """The statements of ``text`` as a tree (a block nests at most :data:`_MAX_DEPTH` deep)."""
    stack: list[tuple[int, tuple[str, ...], list[_Statement]]] = [(0, (), [])]
    words: list[str] = []
    first = 0
    for line, token in _tokens(text):
        if token == ";":
            if words:
                stack[-1][2].append(_Statement(line=first, words=tuple(words)))
            words = []
        elif token == "{":
            if len(stack) > _MAX_DEPTH:
                raise _SyntaxError(line, f"blocks nested deeper than {_MAX_DEPTH}")
            stack.append((first or line, tuple(words), []))
            words = []
        elif token == "}":
            if len(stack) == 1 or words:
                raise _SyntaxError(line, "unexpected '}'" if len(stack) == 1 else "missing ';'")
            start, head, body = stack.pop()
            stack[-1][2].append(_Statement(line=start, words=head, block=tuple(body)))
        else:
            if not words:
                first = line
            words.append(token)
    if len(stack) != 1:
        raise _SyntaxError(stack[-1][0], "block not closed")
    if words:
        raise _SyntaxError(first, "missing ';' at the end")
    return tuple(stack[0][2])


def _unquote(token: str) -> bytes:
    """A quoted string's bytes (C escapes: ``\\NNN`` octal, ``\\xHH``, ``\\"``, ``\\\\``)."""
    body = token[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\" or i + 1 == len(body):
            out += c.encode("utf-8")
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[i + 1 :])
            assert digits is not None
            out.append(int(digits.group(), 8) & 0xFF)
            i += 1 + len(digits.group())
        elif nxt == "x" and re.match(r"[0-9a-fA-F]{2}", body[i + 2 : i + 4]):
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        else:
            out += {"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt).encode("utf-8")
            i += 2
    return bytes(out)


def _identifier(words: tuple[str, ...]) -> str | None:
    """A client identifier written as a quoted string or colon hex, as colon hex."""
    if not words:
        return None
    value = words[0]
    if value.startswith('"'):
        data = _unquote(value)
        return data.hex(":") if data else None
    return value


def _text(words: tuple[str, ...]) -> str | None:
    if not words:
        return None
    value = words[0]
    return _unquote(value).decode("utf-8", "replace") if value.startswith('"') else value


def _walk(statements: tuple[_Statement, ...]) -> Iterator[_Statement]:
    """Every statement with words, depth first (a bare ``{ }`` block is entered, not given)."""
    for statement in statements:
        if statement.words:
            yield statement
        if statement.block is not None:
            yield from _walk(statement.block)


def _checked_parse(text: str, name: str, parsed: Parsed) -> tuple[_Statement, ...] | None:
    for number_, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE:
            parsed.refused.append(
                Problem(source=f"{name}:{number_}", why=f"longer than {MAX_LINE} characters")
            )
            return None
    try:
        return _parse(text)
    except _SyntaxError as exc:
        parsed.refused.append(Problem(source=f"{name}:{exc.line}", why=str(exc)))
        return None


def parse_conf(text: str, name: str) -> Parsed:
    """The ``host`` blocks of a ``dhcpd.conf``."""
    parsed = Parsed()
    statements = _checked_parse(text, name, parsed)
    if statements is None:
        return parsed
    for statement in _walk(statements):
        source = f"{name}:{statement.line}"
        if statement.block is None:
            if statement.words[0] == "include":
                parsed.skipped.append(
                    Problem(source=source, why="include: name the included file too")
                )
            continue
        if statement.words[0] != "host":
            continue
        label = statement.words[1] if len(statement.words) > 1 else ""
        mac = client_id = hostname = ip = None
        for inner in _walk(statement.block):
            words = inner.words
            if words[:2] == ("hardware", "ethernet") and len(words) > 2:
                mac = words[2]
            elif words[0] == "fixed-address" and len(words) > 1:
                addresses = " ".join(words[1:]).replace(",", " ").split()
                ip = addresses[0]
                if len(addresses) > 1:
                    parsed.skipped.append(
                        Problem(source=source, why=f"several addresses: {ip} is reserved")
                    )
            elif words[:2] == ("option", "dhcp-client-identifier"):
                client_id = _identifier(words[2:])
            elif words[:2] == ("option", "host-name") or words[0] == "ddns-hostname":
                hostname = _text(words[2:] if words[0] == "option" else words[1:])
        if ip is None:
            parsed.skipped.append(
                Problem(source=source, why=f"host {label}: no fixed-address, not reserved")
            )
            continue
        try:
            ip = str(IPv4Address(ip))
        except ValueError:
            parsed.refused.append(
                Problem(source=source, why=f"host {label}: fixed-address {ip} is not an address")
            )
            continue
        if mac is None and client_id is None:
            parsed.refused.append(
                Problem(source=source, why=f"host {label}: no hardware ethernet, no client-id")
            )
            continue
        chosen = (hostname or label.strip('"') or unnamed_host(ip)).rstrip(".").split(".")[0]
        parsed.hosts.append(
            HostItem(source=source, ip=ip, hostname=chosen, mac=mac, client_id=client_id)
        )
    return parsed


def _when(words: tuple[str, ...]) -> float | None:
    """``starts``/``ends`` values: ``W YYYY/MM/DD HH:MM:SS`` (UTC), ``epoch N`` or ``never``
    (None)."""
    if not words or words[0] == "never":
        return None
    if words[0] == "epoch" and len(words) > 1:
        seconds = number(words[1])
        if seconds is None:
            raise ValueError(f"bad time {' '.join(words)!r}")
        return float(seconds)
    if len(words) >= 3:
        date, clock = _TIME.match(words[1]), _CLOCK.match(words[2])
        if date is not None and clock is not None:
            parts = [int(g) for g in date.groups() + clock.groups()]
            return float(calendar.timegm((*parts, 0, 0, 0)))
    raise ValueError(f"bad time {' '.join(words)!r}")


def parse_leases(text: str, name: str) -> Parsed:
    """``dhcpd.leases``: a log of lease blocks; the last block for an address is its state.
    Only leases whose binding state is ``active`` are carried."""
    parsed = Parsed()
    statements = _checked_parse(text, name, parsed)
    if statements is None:
        return parsed
    latest: dict[str, LeaseItem | None] = {}
    for statement in statements:
        if statement.block is None or statement.words[:1] != ("lease",) or len(statement.words) < 2:
            continue
        source = f"{name}:{statement.line}"
        try:
            ip = str(IPv4Address(statement.words[1]))
        except ValueError:
            parsed.skipped.append(Problem(source=source, why="not an IPv4 lease"))
            continue
        values: dict[str, tuple[str, ...]] = {}
        for inner in _walk(statement.block):
            words = inner.words
            if words[:2] == ("binding", "state"):
                values["state"] = words[2:]
            elif words[:2] == ("hardware", "ethernet"):
                values["mac"] = words[2:]
            elif words[0] in ("starts", "ends", "uid", "client-hostname"):
                values[words[0]] = words[1:]
        state = " ".join(values.get("state", ("free",)))
        if state != "active":
            latest[ip] = None
            continue
        try:
            start, end = _when(values.get("starts", ())), _when(values.get("ends", ()))
        except ValueError as exc:
            parsed.refused.append(Problem(source=source, why=str(exc)))
            continue
        if end is None:
            parsed.skipped.append(Problem(source=source, why=f"{ip}: never ends; reserve it"))
            continue
        latest[ip] = LeaseItem(
            source=source,
            ip=ip,
            mac=values["mac"][0] if values.get("mac") else None,
            client_id=_identifier(values.get("uid", ())),
            hostname=_text(values.get("client-hostname", ())),
            start=start or 0.0,
            end=end,
        )
    parsed.leases += [lease for lease in latest.values() if lease is not None]
    return parsed

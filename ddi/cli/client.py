"""ApiClient: JSON requests to the daemon's admin API over its unix socket, or over HTTPS to
its TCP listener with a bearer token (``--url``, ``Remote``); stdlib only.

Over HTTPS the server's certificate is checked before the token is sent: against a pinned
SHA-256 fingerprint (``--fingerprint``: the one ``ddi status`` prints on the site), a CA file
(``--ca``), or else the system's trust store; a certificate none of these vouch for is refused
with the fingerprint seen and how to pin it.

The CLI speaks to the daemon through this client and nothing else. Failures arrive as
``CliError`` subclasses that carry the process exit code and print one line on stderr:

* ``Unreachable`` (exit 3): the socket is missing, refuses, or the daemon hung up; over HTTPS
  also a certificate that is not trusted or does not match the pin (nothing was sent).
* ``Refused`` (exit 1) on 401/403: the token is unknown or lacks the scope (the message names
  it).
* ``Refused`` (exit 1): the daemon refused the change or does not know the object (409/404).
* ``InvalidValue`` (exit 2): a flag's value is malformed or not allowed (422); the message
  names the flag that gave it (``--router``, not the API's ``gateway``). A 422 on an argument
  (``lease release IP`` of a lease not bound) is a refusal, exit 1.
* ``UsageRefused`` (exit 2): the daemon says the request itself is malformed (400).
* ``Unavailable`` (exit 1): the daemon cannot write now (503: the disk is full); nothing was
  written; retry once there is space.
* ``ServerFailed`` (exit 1): the daemon failed (other 5xx); its log has the traceback.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import click

EXIT_DONE = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class CliError(click.ClickException):
    """An error the CLI reports as one line on stderr, with its own exit code."""

    exit_code = EXIT_REFUSED

    def show(self, file: Any = None) -> None:
        click.echo(self.format_message(), err=True)


class Unreachable(CliError):
    exit_code = EXIT_UNREACHABLE

    def __init__(self, socket_path: str, why: str) -> None:
        super().__init__(f"cannot reach ddi at {socket_path}: {why}")
        self.socket_path = socket_path
        self.why = why


class Refused(CliError):
    """The daemon refused; ``body`` is its JSON error object."""

    exit_code = EXIT_REFUSED

    prefix = "refused"

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        message = str(body.get("message") or body.get("error") or f"HTTP {status}")
        super().__init__(f"{self.prefix}: {message}")
        self.status = status
        self.body = body


class UsageRefused(Refused):
    exit_code = EXIT_USAGE


FIELD_FLAGS = {
    "gateway": "--router",
    "dns_servers": "--dns-server",
    "ntp_servers": "--ntp-server",
    "routes": "--route",
}
"""The API's field names that differ from the flag (or argument) that sets them."""


def flag_for(field: str) -> str:
    """The CLI flag that sets the API's ``field`` (``gateway`` → ``--router``)."""
    return FIELD_FLAGS.get(field, "--" + field.replace("_", "-"))


def _a_flag_of_this_command(field: Any) -> bool:
    """Whether the API's ``field`` is set by a flag of the running command (True outside a
    command): a 422 on an argument (``lease release IP``: not bound) stays a refusal, exit 1."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return True
    if not isinstance(field, str):
        return False
    flag = flag_for(field)
    return any(isinstance(p, click.Option) and flag in p.opts for p in ctx.command.params)


class InvalidValue(Refused):
    """A 422: the value of one flag is malformed or not allowed; exit 2 naming the flag."""

    exit_code = EXIT_USAGE
    prefix = "invalid value"

    def format_message(self) -> str:
        field, value, reason = (self.body.get(k) for k in ("field", "value", "reason"))
        if isinstance(field, str) and isinstance(reason, str):
            return f"{self.prefix} for {flag_for(field)} {value!r}: {reason}"
        return super().format_message()


class ServerFailed(Refused):
    prefix = "ddi failed"


class Unavailable(Refused):
    prefix = "not written"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


API_PORT = 8053
"""The TCP listener's port when ``--url`` names none (``ddi.config.site.API_PORT``)."""
MAX_TOKEN_FILE = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class Remote:
    """The daemon's TCP listener: where, the token, and how its certificate is trusted."""

    url: str
    """As given, for messages."""
    https: bool
    host: str
    port: int
    token: str | None = None
    fingerprint: bytes | None = None
    """The pinned SHA-256 of the server's certificate (DER)."""
    ca: Path | None = None


def _fingerprint_text(digest: bytes) -> str:
    return ":".join(f"{byte:02X}" for byte in digest)


def parse_fingerprint(text: str) -> bytes:
    """A pinned fingerprint: 64 hex digits, colons and a ``sha256:`` prefix allowed.

    Raises:
        click.BadParameter: anything else.
    """
    value = text.strip()
    if value.lower().startswith(("sha256:", "sha256=")):
        value = value[7:]
    digits = value.replace(":", "")
    if len(digits) != 64:
        raise click.BadParameter("a SHA-256 fingerprint is 64 hex digits (colons allowed)")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise click.BadParameter("a SHA-256 fingerprint is 64 hex digits") from None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def remote(
    url: str, *, token_file: Path | None, fingerprint: str | None, ca: Path | None
) -> Remote:
    """The ``Remote`` the global options describe.

    Raises:
        click.BadParameter / click.UsageError: a malformed URL, an unreadable token file,
            a pin on a plain-HTTP URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise click.BadParameter("must be https://HOST[:PORT]", param_hint="--url")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise click.BadParameter("must be https://HOST[:PORT] alone", param_hint="--url")
    try:
        port = parts.port or API_PORT
    except ValueError:
        raise click.BadParameter("bad port", param_hint="--url") from None
    https = parts.scheme == "https"
    if not https and not _loopback(parts.hostname):
        # The daemon refuses a plain listener off loopback; a token must not cross in the clear.
        raise click.BadParameter("plain http only to a loopback address", param_hint="--url")
    if not https and (fingerprint or ca):
        raise click.UsageError("--fingerprint and --ca need an https:// --url")
    token = None
    if token_file is not None:
        try:
            with token_file.open("rb") as source:
                raw = source.read(MAX_TOKEN_FILE + 1)
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {token_file}: {exc.strerror or exc}", param_hint="--token-file"
            ) from None
        token = raw.decode("utf-8", "replace").strip().partition("\n")[0].strip()
        if not token or len(raw) > MAX_TOKEN_FILE:
            raise click.BadParameter(f"{token_file} holds no token", param_hint="--token-file")
    return Remote(
        url=url,
        https=https,
        host=parts.hostname,
        port=port,
        token=token,
        fingerprint=None if fingerprint is None else parse_fingerprint(fingerprint),
        ca=ca,
    )


class CertificateRefused(Exception):
    """The server's certificate is not the pinned one, or nothing trusts it; the token was
    not sent."""


class _PinnedConnection(http.client.HTTPSConnection):
    """HTTPS whose certificate is checked by its SHA-256 after the handshake, before the
    request (and its token) is written."""

    def __init__(self, host: str, port: int, *, timeout: float, pin: bytes) -> None:
        context = ssl.create_default_context()
        # The pin replaces chain and name checks: a self-signed certificate has no chain.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        super().__init__(host, port, timeout=timeout, context=context)
        self._pin = pin

    def connect(self) -> None:
        super().connect()
        assert isinstance(self.sock, ssl.SSLSocket)
        der = self.sock.getpeercert(binary_form=True) or b""
        seen = hashlib.sha256(der).digest()
        if not hmac.compare_digest(seen, self._pin):
            self.sock.close()
            raise CertificateRefused(
                f"its certificate's SHA-256 is {_fingerprint_text(seen)}, "
                f"not the pinned {_fingerprint_text(self._pin)}; nothing was sent"
            )


def _connection(remote: Remote, timeout: float) -> http.client.HTTPConnection:
    if not remote.https:
        return http.client.HTTPConnection(remote.host, remote.port, timeout=timeout)
    if remote.fingerprint is not None:
        return _PinnedConnection(remote.host, remote.port, timeout=timeout, pin=remote.fingerprint)
    context = ssl.create_default_context(cafile=None if remote.ca is None else str(remote.ca))
    return http.client.HTTPSConnection(remote.host, remote.port, timeout=timeout, context=context)


def _untrusted(remote: Remote, exc: ssl.SSLCertVerificationError, timeout: float) -> str:
    """What to say when the certificate is not trusted: the fingerprint seen, to pin."""
    how = f"--ca {remote.ca}" if remote.ca is not None else "the system's trust store"
    message = f"its certificate is not trusted by {how} ({exc.verify_message or exc.reason})"
    try:
        pem = ssl.get_server_certificate((remote.host, remote.port), timeout=timeout)
    except (OSError, ValueError):
        return message
    seen = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest()
    return (
        f"{message}; nothing was sent. The server showed SHA-256 {_fingerprint_text(seen)}: "
        "if `ddi status` on the site prints the same, pin it with --fingerprint "
        f"{_fingerprint_text(seen)} (or DDI_FINGERPRINT), or give its CA with --ca FILE"
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such socket (is the daemon running?)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the daemon running?)"
    if isinstance(exc, PermissionError):
        return "permission denied (are you in the ddi group?)"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


class ApiClient:
    """One JSON request per call, each on a fresh connection to ``socket_path``, or to
    ``remote`` when given."""

    def __init__(
        self, socket_path: str, *, timeout: float = 30.0, remote: Remote | None = None
    ) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.remote = remote
        self.where = socket_path if remote is None else remote.url

    def get(self, path: str, **query: Any) -> Any:
        params = {k: v for k, v in query.items() if v is not None}
        if params:
            path = f"{path}?{urlencode(params)}"
        return self.request("GET", path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PATCH", path, body)

    def delete(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, body)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request and return the decoded JSON body of a 2xx answer.

        Raises:
            Unreachable: the socket cannot be reached or the daemon hung up.
            Refused: the daemon answered 4xx (UsageRefused for 400).
            ServerFailed: the daemon answered 5xx.
        """
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        connection: http.client.HTTPConnection
        if self.remote is None:
            connection = _UnixConnection(self.socket_path, self.timeout)
        else:
            connection = _connection(self.remote, self.timeout)
            if self.remote.token is not None:
                headers["Authorization"] = f"Bearer {self.remote.token}"
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except CertificateRefused as exc:
            raise Unreachable(self.where, str(exc)) from None
        except ssl.SSLCertVerificationError as exc:
            assert self.remote is not None
            raise Unreachable(self.where, _untrusted(self.remote, exc, self.timeout)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(self.where, _why(exc)) from exc
        finally:
            connection.close()
        try:
            decoded: Any = json.loads(raw) if raw else {}
        except ValueError:
            decoded = {"error": "bad_response", "message": raw[:200].decode(errors="replace")}
        status = response.status
        if 200 <= status < 300:
            return decoded
        error = decoded if isinstance(decoded, dict) else {"message": str(decoded)}
        if status == 401:
            given = self.remote is not None and self.remote.token is not None
            raise Refused(
                status,
                {
                    "message": "the token was not accepted (unknown, or removed with "
                    "`ddi token rm`); check --token-file"
                    if given
                    else "this listener needs a token: --token-file FILE (or DDI_TOKEN_FILE)"
                },
            )
        if status == 400:
            raise UsageRefused(status, error)
        if status == 422 and _a_flag_of_this_command(error.get("field")):
            raise InvalidValue(status, error)
        if status == 503:
            raise Unavailable(status, error)
        if status >= 500:
            raise ServerFailed(status, error)
        raise Refused(status, error)


def api(ctx: click.Context | None = None) -> ApiClient:
    """The client the global options choose: ``--url`` (with ``--token-file``,
    ``--fingerprint``, ``--ca``) when given, else the unix ``--socket``."""
    root = (ctx or click.get_current_context()).find_root()
    params = root.params
    url = params.get("url")
    target = None
    if url:
        target = remote(
            url,
            token_file=params.get("token_file"),
            fingerprint=params.get("fingerprint"),
            ca=params.get("ca"),
        )
    return ApiClient(str(params["socket"]), remote=target)


def is_remote(ctx: click.Context | None = None) -> bool:
    """Whether the CLI talks to a TCP listener (``--url``) rather than the unix socket."""
    root = (ctx or click.get_current_context()).find_root()
    return bool(root.params.get("url"))


def actor() -> str:
    """Who the CLI says it acts for: the user who ran sudo when running as root through it,
    else the operating-system user. The daemon records the socket peer's own account and
    takes this name only from root (``root as alice``), see ``ddi.api.common``."""
    sudo_user = os.environ.get("SUDO_USER")
    if os.geteuid() == 0 and sudo_user:
        return sudo_user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def write_body(reason: str | None, dry_run: bool, **fields: Any) -> dict[str, Any]:
    """The JSON body of a write: its fields plus actor, reason and dry_run."""
    return {**fields, "actor": actor(), "reason": reason or "", "dry_run": dry_run}


def quote_key(key: str) -> str:
    """A key (id, MAC, client-id, IP, hostname) as one URL path segment."""
    return quote(key, safe="")


def write_options(f: Any) -> Any:
    """``--reason TEXT`` and ``--dry-run`` for every command that changes something."""
    f = click.option(
        "--dry-run",
        is_flag=True,
        help="Validate and show what would change; write nothing.",
    )(f)
    return click.option(
        "--reason",
        metavar="TEXT",
        callback=_reason,
        help=f"Why; recorded in the change log (at most {MAX_REASON} characters).",
    )(f)


MAX_REASON = 500
"""The daemon's limit on a write's reason (``ddi.api.common.MAX_REASON``)."""


def _reason(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and len(value) > MAX_REASON:
        raise click.BadParameter(f"at most {MAX_REASON} characters, got {len(value)}")
    return value

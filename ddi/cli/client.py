"""ApiClient: JSON requests to the daemon's admin API over its unix socket (stdlib only).

The CLI speaks to the daemon through this client and nothing else. Failures arrive as
``CliError`` subclasses that carry the process exit code and print one line on stderr:

* ``Unreachable`` (exit 3): the socket is missing, refuses, or the daemon hung up.
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
import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import quote, urlencode

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
    """One JSON request per call, each on a fresh connection to ``socket_path``."""

    def __init__(self, socket_path: str, *, timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

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
        connection = _UnixConnection(self.socket_path, self.timeout)
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(self.socket_path, _why(exc)) from exc
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
    """The client for the socket chosen by the global ``--socket`` option."""
    root = (ctx or click.get_current_context()).find_root()
    return ApiClient(str(root.params["socket"]))


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

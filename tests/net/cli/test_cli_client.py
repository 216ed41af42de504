"""The CLI's ApiClient against a small HTTP server on a real unix socket (how each kind of
answer becomes an exit code), and the table output."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ddi.cli.client import (
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    ApiClient,
    InvalidValue,
    Refused,
    ServerFailed,
    Unreachable,
    UsageRefused,
)
from ddi.cli.output import cell, format_table


class _Handler(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, tuple[int, bytes]]] = {}
    seen: ClassVar[list[tuple[str, str, Any]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.seen.append((self.command, self.path, body))
        if self.path == "/hangup":
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, payload = self.answers.get(self.path, (404, b'{"error": "not_found"}'))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> tuple[Any, Any]:
        request, _ = super().get_request()
        return request, ("local", 0)  # BaseHTTPRequestHandler wants an address tuple


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "api.sock"
    _Handler.answers = {}
    _Handler.seen = []
    srv = _Server(str(path), _Handler)
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield path
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def test_2xx_returns_the_decoded_body_and_sends_json(server: Path) -> None:
    _Handler.answers["/v1/hosts"] = (201, b'{"change": {"seq": 7}}')
    client = ApiClient(str(server))
    assert client.post("/v1/hosts", {"ip": "198.18.0.5"}) == {"change": {"seq": 7}}
    assert _Handler.seen == [("POST", "/v1/hosts", {"ip": "198.18.0.5"})]


def test_query_parameters_skip_none(server: Path) -> None:
    _Handler.answers["/v1/changes?after=3"] = (200, b"{}")
    ApiClient(str(server)).get("/v1/changes", after=3, limit=None)
    assert _Handler.seen[0][1] == "/v1/changes?after=3"


@pytest.mark.parametrize(
    ("status", "error", "exit_code"),
    [
        (409, Refused, EXIT_REFUSED),
        (404, Refused, EXIT_REFUSED),
        (422, InvalidValue, EXIT_USAGE),
        (400, UsageRefused, EXIT_USAGE),
        (500, ServerFailed, EXIT_REFUSED),
    ],
)
def test_error_statuses_map_to_exit_codes(
    server: Path, status: int, error: type[Refused], exit_code: int
) -> None:
    _Handler.answers["/x"] = (status, b'{"error": "e", "message": "ip 198.18.0.5 is taken"}')
    with pytest.raises(error) as caught:
        ApiClient(str(server)).get("/x")
    assert type(caught.value) is error
    assert caught.value.exit_code == exit_code
    assert "ip 198.18.0.5 is taken" in caught.value.format_message()


def test_a_non_json_error_body_is_still_reported(server: Path) -> None:
    _Handler.answers["/x"] = (500, b"<html>oops</html>")
    with pytest.raises(ServerFailed) as caught:
        ApiClient(str(server)).get("/x")
    assert "oops" in caught.value.format_message()


def test_hang_up_is_unreachable(server: Path) -> None:
    with pytest.raises(Unreachable) as caught:
        ApiClient(str(server)).get("/hangup")
    assert caught.value.exit_code == EXIT_UNREACHABLE
    assert caught.value.format_message().startswith(f"cannot reach ddi at {server}: ")


def test_a_silent_daemon_times_out_as_unreachable(tmp_path: Path) -> None:
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(path))
        silent.listen()
        with pytest.raises(Unreachable) as caught:
            ApiClient(str(path), timeout=0.2).get("/v1/status")
    assert "timed out" in caught.value.format_message()


def test_table_aligns_columns_and_marks_empty_cells() -> None:
    rows = [
        {"hostname": "web1", "ip": "198.18.0.10", "mac": None},
        {"hostname": "database-01", "ip": "198.18.0.9", "mac": "52:54:00:00:00:01"},
    ]
    assert format_table(rows, ["hostname", ("ip", "ADDRESS"), "mac"]).splitlines() == [
        "HOSTNAME     ADDRESS      MAC",
        "web1         198.18.0.10  -",
        "database-01  198.18.0.9   52:54:00:00:00:01",
    ]


def test_cells() -> None:
    assert cell(None) == "-"
    assert cell("") == "-"
    assert cell([]) == "-"
    assert cell(True) == "yes"
    assert cell(["198.18.0.1", "198.18.0.2"]) == "198.18.0.1,198.18.0.2"
    assert cell(3600) == "3600"

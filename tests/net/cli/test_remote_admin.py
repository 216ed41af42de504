"""Remote admin against a real ``ddi serve``: TLS on the TCP listener (its self-signed
certificate made at first start, or the config's own pair), named tokens made with
``ddi token add``, checked by curl (``--cacert``, ``--pinnedpubkey``) and by the CLI over
``--url`` with a pinned fingerprint or a CA file, scope by scope."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.ci import require_tool
from tests.net.cli.test_cli import Daemon, ddi
from tests.waiting import wait_until

TLS_API = 'listen = "127.0.0.1:0"'


class Remote:
    """The daemon plus what a remote operator holds: the URL, token files, the pin."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        [tcp] = [a for a in daemon.json("status")["api"] if a.startswith("tcp:")]
        self.url = "https://" + tcp.removeprefix("tcp:")
        self.cert = daemon.workdir / "data" / "api-cert.pem"
        self.files: dict[str, Path] = {}

    def add_token(self, name: str, *scopes: str) -> str:
        args = [a for scope in scopes for a in ("--scope", scope)]
        made = self.daemon.cli("token", "add", name, *args)
        assert made.returncode == 0, made.stderr
        secret = made.stdout.strip()
        path = self.daemon.workdir / f"{name}.token"
        path.write_text(secret + "\n")
        self.files[name] = path
        return secret

    def curl(self, path: str, *args: str, token: str | None = None) -> tuple[int, str]:
        headers = [] if token is None else ["-H", f"Authorization: Bearer {token}"]
        done = subprocess.run(
            ["curl", "-sS", "--cacert", str(self.cert), "-w", "\n%{http_code}",
             *headers, *args, self.url + path],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        body, _, code = done.stdout.rpartition("\n")
        return int(code), body

    def cli(self, token: str | None, *args: str, pin: str | None = None) -> Any:
        options = ["--url", self.url]
        if token is not None:
            options += ["--token-file", str(self.files[token])]
        if pin is not None:
            options += ["--fingerprint", pin]
        return ddi(*options, *args)


def openssl_fingerprint(cert: Path) -> str:
    done = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip().partition("=")[2]


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    require_tool("curl")
    require_tool("openssl")
    d = Daemon(tmp_path_factory.mktemp("remote"), api_extra=TLS_API)
    d.start()
    r = Remote(d)
    r.secrets = {  # type: ignore[attr-defined]
        scope: r.add_token(f"{scope}-token", scope) for scope in ("metrics", "read", "write")
    }
    yield r
    assert d.stop() == 0, d.log.read_text()


def secret(r: Remote, scope: str) -> str:
    value: str = r.secrets[scope]  # type: ignore[attr-defined]
    return value


def test_the_fingerprint_is_printed_logged_and_the_one_served(remote: Remote) -> None:
    expected = openssl_fingerprint(remote.cert)
    assert remote.daemon.json("status")["tls_fingerprint"] == expected
    status = remote.daemon.cli("status")
    assert f"tls sha256: {expected}" in " ".join(status.stdout.split()), status.stdout
    assert expected in remote.daemon.log.read_text()
    key = remote.daemon.workdir / "data" / "api-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_tokens_are_listed_without_secrets_and_kept_hashed(remote: Remote) -> None:
    listed = remote.daemon.json("token", "list")
    assert [(t["name"], t["scopes"]) for t in listed] == [
        ("metrics-token", ["metrics"]),
        ("read-token", ["read"]),
        ("write-token", ["write"]),
    ]
    tokens_file = remote.daemon.workdir / "data" / "tokens.json"
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    text = tokens_file.read_text()
    for scope in ("metrics", "read", "write"):
        assert secret(remote, scope) not in text
        assert hashlib.sha256(secret(remote, scope).encode()).hexdigest() in text


def test_each_scope_over_tls_with_curl(remote: Remote) -> None:
    assert remote.curl("/healthz")[0] == 200
    assert remote.curl("/v1/hosts")[0] == 401
    # Prometheus' token: /metrics and nothing else.
    code, body = remote.curl("/metrics", token=secret(remote, "metrics"))
    assert code == 200
    assert "ddi_api_requests_total" in body
    code, body = remote.curl("/v1/hosts", token=secret(remote, "metrics"))
    assert code == 403
    assert json.loads(body)["scope"] == "read"
    assert remote.curl("/v1/hosts", token=secret(remote, "read"))[0] == 200
    assert remote.curl("/metrics", token=secret(remote, "read"))[0] == 200
    # A read token cannot write, and nothing is written.
    host = json.dumps({"mac": "52:54:00:00:0c:01", "ip": "198.18.0.41", "hostname": "ro"})
    post = ("-X", "POST", "-H", "Content-Type: application/json", "-d", host)
    code, body = remote.curl("/v1/hosts", *post, token=secret(remote, "read"))
    assert code == 403
    assert json.loads(body)["scope"] == "write"
    assert "ro" not in {h["hostname"] for h in remote.daemon.json("reserve", "list")}
    # No token can manage tokens, not even a write token.
    code, body = remote.curl("/v1/tokens", token=secret(remote, "write"))
    assert code == 403
    assert json.loads(body)["scope"] == "local"


def test_curl_pinning_the_public_key(remote: Remote) -> None:
    cert = x509.load_pem_x509_certificate(remote.cert.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pin = "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()
    base = ["curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}"]
    auth = ["-H", f"Authorization: Bearer {secret(remote, 'read')}"]
    done = subprocess.run(
        [*base, "--pinnedpubkey", pin, *auth, remote.url + "/v1/hosts"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "200"), done.stderr
    wrong = "sha256//" + base64.b64encode(bytes(32)).decode()
    done = subprocess.run(
        [*base, "--pinnedpubkey", wrong, *auth, remote.url + "/v1/hosts"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert done.returncode == 90, "curl: SSL public key does not match pinned public key"


def test_remote_cli_with_a_pinned_fingerprint_records_the_token_as_actor(remote: Remote) -> None:
    pin = openssl_fingerprint(remote.cert)
    added = remote.cli(
        "write-token", "reserve", "add", "--mac", "52:54:00:00:0c:02", "--ip", "198.18.0.42",
        "--hostname", "remote1", "--reason", "from the laptop", pin=pin,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    changes = remote.daemon.json("changes", "list")
    mine = [c for c in changes if c.get("reason") == "from the laptop"]
    assert [c["actor"] for c in mine] == ["token:write-token"]
    listed = remote.cli("read-token", "reserve", "list", "--json", pin=pin.replace(":", "").lower())
    assert listed.returncode == 0, listed.stderr
    assert "remote1" in {h["hostname"] for h in json.loads(listed.stdout)}


def test_remote_cli_refusals(remote: Remote) -> None:
    pin = openssl_fingerprint(remote.cert)
    write = ("reserve", "add", "--mac", "52:54:00:00:0c:03", "--ip", "198.18.0.43",
             "--hostname", "nope")  # fmt: skip
    denied = remote.cli("read-token", *write, pin=pin)
    assert denied.returncode == 1
    assert "'write' scope" in denied.stderr
    assert "read-token" in denied.stderr
    no_token = remote.cli(None, "reserve", "list", pin=pin)
    assert no_token.returncode == 1
    assert "--token-file" in no_token.stderr

    wrong = remote.cli("write-token", *write, pin="AB" * 32)
    assert wrong.returncode == 3
    assert "not the pinned" in wrong.stderr
    assert pin in wrong.stderr
    unpinned = remote.cli("write-token", *write)
    assert unpinned.returncode == 3
    assert "not trusted" in unpinned.stderr
    assert f"--fingerprint {pin}" in unpinned.stderr
    assert "nope" not in {h["hostname"] for h in remote.daemon.json("reserve", "list")}

    with_ca = ddi("--url", remote.url, "--token-file", str(remote.files["read-token"]),
                  "--ca", str(remote.cert), "reserve", "list")  # fmt: skip
    assert with_ca.returncode == 0, with_ca.stderr
    over_url = remote.cli("write-token", "token", "list", pin=pin)
    assert over_url.returncode == 2
    assert "unix socket" in over_url.stderr
    unreachable = ddi("--url", "https://127.0.0.1:1", "--fingerprint", pin, "status")
    assert unreachable.returncode == 3


def test_a_removed_token_stops_working_without_a_restart(remote: Remote) -> None:
    doomed = remote.add_token("doomed", "read")
    assert remote.curl("/v1/hosts", token=doomed)[0] == 200
    removed = remote.daemon.cli("token", "rm", "doomed")
    assert removed.returncode == 0, removed.stderr
    wait_until(lambda: remote.curl("/v1/hosts", token=doomed)[0] == 401, "doomed refused", 5)
    assert remote.daemon.cli("token", "rm", "doomed").returncode == 1


def test_the_certificate_is_kept_across_restarts_and_a_configured_pair_is_used(
    tmp_path: Path,
) -> None:
    require_tool("openssl")
    d = Daemon(tmp_path / "d", api_extra=TLS_API)
    d.start()
    first = d.json("status")["tls_fingerprint"]
    assert d.stop() == 0
    d.start()
    assert d.json("status")["tls_fingerprint"] == first
    assert d.stop() == 0
    cert, key = tmp_path / "own.pem", tmp_path / "own.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=site1", "-days", "2", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, check=True,
    )  # fmt: skip
    d.write_config(api_extra=f'{TLS_API}\ntls_cert = "{cert}"\ntls_key = "{key}"')
    d.start()
    assert d.json("status")["tls_fingerprint"] == openssl_fingerprint(cert)
    assert d.stop() == 0

"""The ``ddi`` CLI against a real ``python -m ddi serve`` process on a temporary socket and data
dir (DHCP and DNS off, loopback only), every exit code included."""

from __future__ import annotations

import getpass
import http.client
import importlib.util
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ci import require_root

ROOT = Path(__file__).resolve().parents[3]
USER = getpass.getuser()

CONFIG = """\
[site]
id = "clitest"
domain = "site.example"
data_dir = "data"

[api]
socket = "ddi.sock"
{api_extra}

[[subnets]]
name = "lan"
cidr = "198.18.0.0/24"
gateway = "198.18.0.1"

[[subnets.pools]]
start = "198.18.0.100"
end = "198.18.0.199"
{subnets_extra}

[dhcp]
enabled = false
"""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=5)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self._path))


def http_get(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str] | None = None
) -> tuple[int, str, bytes]:
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


class Daemon:
    """A ``ddi serve`` subprocess with its own folder, config, socket and log."""

    def __init__(self, workdir: Path, *, api_extra: str = "", subnets_extra: str = "") -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "site.toml"
        self.socket = workdir / "ddi.sock"
        self.log = workdir / "daemon.log"
        self.write_config(api_extra=api_extra, subnets_extra=subnets_extra)
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self, *, api_extra: str = "", subnets_extra: str = "") -> None:
        self.config.write_text(CONFIG.format(api_extra=api_extra, subnets_extra=subnets_extra))

    def start(self, env: dict[str, str] | None = None) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ddi", "serve", "--config", str(self.config)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"ddi serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if http_get(_UnixConnection(self.socket), "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        pytest.fail(f"ddi serve not healthy within 20s:\n{self.log.read_text()}")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"ddi serve ignored SIGTERM:\n{self.log.read_text()}")
        code = self.proc.returncode
        self.proc = None
        return code

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return ddi("--socket", str(self.socket), *args)

    def json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def get(self, path: str) -> tuple[int, str, bytes]:
        return http_get(_UnixConnection(self.socket), path)


def ddi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ddi", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("ddi"))
    d.start()
    yield d
    assert d.stop() == 0, d.log.read_text()


@pytest.fixture
def own_daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "ddi")
    yield d
    if d.proc is not None:
        d.stop()


def add(d: Daemon, n: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return d.cli(
        "reserve",
        "add",
        "--mac",
        f"52:54:00:00:01:{n:02x}",
        "--ip",
        f"198.18.0.{n}",
        "--hostname",
        f"host{n}",
        *extra,
    )


def hosts_by_name(d: Daemon) -> dict[str, Any]:
    return {h["hostname"]: h for h in d.json("reserve", "list")}


def test_add_then_list_json_shows_the_host(daemon: Daemon) -> None:
    result = add(daemon, 10, "--boot-file", "undionly.kpxe", "--reason", "rack 4")
    assert result.returncode == 0, result.stderr
    assert "added host host10 198.18.0.10" in result.stdout
    host = hosts_by_name(daemon)["host10"]
    assert host["ip"] == "198.18.0.10"
    assert host["mac"] == "52:54:00:00:01:0a"
    assert host["boot_file"] == "undionly.kpxe"
    assert host["owner"] == "edge"
    assert host["version"] == 1
    table = daemon.cli("reserve", "list")
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["HOSTNAME", "IP", "MAC"]
    row = next(r for r in rows if r.startswith("host10 "))
    assert row.split()[:3] == ["host10", "198.18.0.10", "52:54:00:00:01:0a"]
    # columns are aligned: every row's IP starts where the header's does
    assert row.index("198.18.0.10") == header.index("IP")


def test_mac_is_normalised_and_show_finds_by_any_key(daemon: Daemon) -> None:
    result = daemon.cli(
        "reserve", "add", "--mac", "52-54-00-00-01-0B", "--ip", "198.18.0.11",
        "--hostname", "host11",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for key in ("host11", "198.18.0.11", "52:54:00:00:01:0b"):
        assert daemon.json("reserve", "show", key)["hostname"] == "host11"
    shown = daemon.cli("reserve", "show", "host11")
    assert "mac:" in shown.stdout
    assert "52:54:00:00:01:0b" in shown.stdout


def test_conflicting_add_exits_1_naming_the_holder_and_changes_nothing(daemon: Daemon) -> None:
    assert add(daemon, 20).returncode == 0
    before_hosts = daemon.json("reserve", "list")
    before_changes = daemon.json("changes", "list", "--limit", "10000")
    clash = daemon.cli(
        "reserve", "add", "--mac", "52:54:00:00:01:99", "--ip", "198.18.0.20",
        "--hostname", "other20",
    )  # fmt: skip
    assert clash.returncode == 1
    assert clash.stdout == ""
    assert len(clash.stderr.strip().splitlines()) == 1
    assert "198.18.0.20" in clash.stderr
    assert "host20" in clash.stderr  # the holder
    name_clash = daemon.cli(
        "reserve", "add", "--mac", "52:54:00:00:01:98", "--ip", "198.18.0.21",
        "--hostname", "host20",
    )  # fmt: skip
    assert name_clash.returncode == 1
    assert "host20" in name_clash.stderr
    assert daemon.json("reserve", "list") == before_hosts
    assert daemon.json("changes", "list", "--limit", "10000") == before_changes


def test_invalid_values_exit_2_naming_the_flag(daemon: Daemon) -> None:
    outside = daemon.cli(
        "reserve", "add", "--mac", "52:54:00:00:01:97", "--ip", "203.0.113.5",
        "--hostname", "outside",
    )  # fmt: skip
    assert outside.returncode == 2
    assert outside.stderr.startswith("invalid value for --ip '203.0.113.5': outside every")
    bad_mac = daemon.cli(
        "reserve", "add", "--mac", "not-a-mac", "--ip", "198.18.0.30", "--hostname", "x30"
    )
    assert bad_mac.returncode == 2
    assert "--mac 'not-a-mac'" in bad_mac.stderr
    assert "x30" not in hosts_by_name(daemon)


def test_dry_run_writes_nothing(daemon: Daemon) -> None:
    seq = daemon.json("status")["store"]["last_seq"]
    preview = add(daemon, 40, "--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert "dry run" in preview.stdout
    assert "nothing written" in preview.stdout
    assert "host40" not in hosts_by_name(daemon)
    assert add(daemon, 40).returncode == 0
    seq = daemon.json("status")["store"]["last_seq"]
    for args in (("rm", "host40"), ("set", "host40", "--hostname", "renamed40")):
        result = daemon.cli("reserve", *args, "--dry-run")
        assert result.returncode == 0, result.stderr
        assert "nothing written" in result.stdout
    assert hosts_by_name(daemon)["host40"]["version"] == 1
    assert daemon.json("status")["store"]["last_seq"] == seq
    conflict_preview = daemon.cli(
        "reserve", "add", "--mac", "52:54:00:00:01:96", "--ip", "198.18.0.40",
        "--hostname", "dup40", "--dry-run",
    )  # fmt: skip
    assert conflict_preview.returncode == 1


def test_rm_removes_the_host(daemon: Daemon) -> None:
    assert add(daemon, 50).returncode == 0
    result = daemon.cli("reserve", "rm", "52:54:00:00:01:32", "--reason", "decommissioned")
    assert result.returncode == 0, result.stderr
    assert "removed host host50" in result.stdout
    assert "host50" not in hosts_by_name(daemon)
    again = daemon.cli("reserve", "rm", "host50")
    assert again.returncode == 1
    assert "host50" in again.stderr


def test_set_changes_fields_and_bumps_the_version(daemon: Daemon) -> None:
    unknown_profile = add(daemon, 60, "--boot", "nosuch")
    assert unknown_profile.returncode == 2
    assert "--boot 'nosuch'" in unknown_profile.stderr
    assert add(daemon, 60).returncode == 0
    result = daemon.cli(
        "reserve", "set", "host60", "--ip", "198.18.0.61", "--boot-script",
        "http://198.18.0.1/h.ipxe", "--reason", "moved",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "198.18.0.60 -> 198.18.0.61" in result.stdout
    host = daemon.json("reserve", "show", "host60")
    assert host["ip"] == "198.18.0.61"
    assert host["boot_script"] == "http://198.18.0.1/h.ipxe"
    assert host["version"] == 2
    cleared = daemon.cli("reserve", "set", "host60", "--clear", "boot-script")
    assert cleared.returncode == 0, cleared.stderr
    assert daemon.json("reserve", "show", "host60")["boot_script"] is None
    nothing = daemon.cli("reserve", "set", "host60")
    assert nothing.returncode == 2


def test_changes_list_shows_rising_seq_with_the_user_and_reason(daemon: Daemon) -> None:
    assert add(daemon, 70, "--reason", "ticket 70").returncode == 0
    assert daemon.cli("reserve", "rm", "host70", "--reason", "ticket 71").returncode == 0
    entries = daemon.json("changes", "list", "--limit", "10000")
    seqs = [c["seq"] for c in entries]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    mine = [c for c in entries if c["object_id"] and c["image"].get("hostname") == "host70"]
    assert [(c["op"], c["actor"], c["reason"]) for c in mine] == [
        ("upsert", USER, "ticket 70"),
        ("delete", USER, "ticket 71"),
    ]
    assert mine[0]["seq"] < mine[1]["seq"]
    after = daemon.json("changes", "list", "--after", str(mine[0]["seq"]))
    assert after[0]["seq"] == mine[1]["seq"]
    latest = daemon.json("changes", "list", "--limit", "1")  # without --after: the newest
    assert [c["seq"] for c in latest] == [daemon.json("status")["store"]["last_seq"]]
    table = daemon.cli("changes", "list")
    assert table.stdout.splitlines()[0].split() == [
        "SEQ", "TIME", "KIND", "OP", "OBJECT", "ACTOR", "REASON",
    ]  # fmt: skip
    assert "ticket 71" in table.stdout


def test_subnet_lease_and_status_commands(daemon: Daemon) -> None:
    subnets = daemon.json("subnet", "list")
    assert [(s["name"], s["cidr"]) for s in subnets] == [("lan", "198.18.0.0/24")]
    assert "198.18.0.100-198.18.0.199" in daemon.cli("subnet", "list").stdout
    assert daemon.json("lease", "list") == []
    assert daemon.cli("lease", "list").stdout.split()[:2] == ["IP", "MAC"]
    status = daemon.json("status")
    assert status["site"] == "clitest"
    assert status["version"]
    assert status["uptime"] >= 0
    assert status["event_loop"] == ("uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
    assert status["store"]["path"].endswith("ddi.sqlite")
    assert status["store"]["subnets"] == 1
    assert status["store"]["last_seq"] >= 1
    assert status["store"]["epoch"] >= 1
    human = daemon.cli("status")
    assert human.returncode == 0
    assert "last seq:" in human.stdout


def test_metrics_and_healthz(daemon: Daemon) -> None:
    status, content_type, body = daemon.get("/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    daemon.cli("reserve", "list")
    status, content_type, body = daemon.get("/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    text = body.decode()
    assert 'ddi_api_requests_total{method="GET",route="/v1/hosts",status="200"}' in text
    assert "ddi_store_last_seq" in text
    assert "ddi_internal_errors_total" in text
    assert 'ddi_store_objects{kind="subnet"} 1.0' in text


def test_api_errors_are_json(daemon: Daemon) -> None:
    status, _, body = daemon.get("/v1/nothing-here")
    assert status == 404
    assert json.loads(body)["error"] == "not_found"


def test_usage_errors_exit_2() -> None:
    for args in (
        ("reserve", "add", "--mac", "52:54:00:00:00:01", "--ip", "198.18.0.5"),  # no --hostname
        ("reserve", "add", "--ip", "198.18.0.5", "--hostname", "h"),  # no client key
        ("reserve", "frobnicate"),
        ("changes", "list", "--limit", "zero"),
    ):
        result = ddi("--socket", "/nonexistent/ddi.sock", *args)
        assert result.returncode == 2, (args, result.stderr)


def test_unreachable_daemon_exits_3_naming_the_socket(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sock"
    result = ddi("--socket", str(missing), "reserve", "list")
    assert result.returncode == 3
    assert result.stderr.startswith(f"cannot reach ddi at {missing}: ")
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(stale))  # bound, never listening: connection refused
        refused = ddi("--socket", str(stale), "status")
    assert refused.returncode == 3
    assert str(stale) in refused.stderr
    env_result = subprocess.run(
        [sys.executable, "-m", "ddi", "status"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "DDI_SOCKET": str(missing)},
    )
    assert env_result.returncode == 3
    assert str(missing) in env_result.stderr


def test_invalid_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        CONFIG.format(api_extra="", subnets_extra="").replace(
            'gateway = "198.18.0.1"', 'gateway = "198.18.9.1"'
        )
    )
    result = ddi("serve", "--config", str(config))
    assert result.returncode == 2
    assert "config error: subnets[0].gateway: " in result.stderr
    config.write_text(CONFIG.format(api_extra="socket_mode = 1", subnets_extra=""))
    result = ddi("serve", "--config", str(config))
    assert result.returncode == 2
    assert "config error: api.socket_mode: unknown key" in result.stderr
    checked = ddi("serve", "--check", "--config", str(config))
    assert checked.returncode == 2
    assert "config error: api.socket_mode" in checked.stderr
    config.write_text(CONFIG.format(api_extra="", subnets_extra=""))
    checked = ddi("serve", "--check", "--config", str(config))
    assert (checked.returncode, checked.stdout) == (0, f"config ok: {config.resolve()}\n")
    missing = ddi("serve", "--config", str(tmp_path / "none.toml"))
    assert missing.returncode == 2
    assert "config error:" in missing.stderr


def test_restart_keeps_everything(own_daemon: Daemon) -> None:
    own_daemon.start()
    assert add(own_daemon, 80, "--reason", "before restart").returncode == 0
    hosts = own_daemon.json("reserve", "list")
    changes = own_daemon.json("changes", "list")
    assert own_daemon.stop() == 0
    assert not own_daemon.socket.exists()
    own_daemon.start()
    assert own_daemon.json("reserve", "list") == hosts
    assert own_daemon.json("changes", "list") == changes  # the same subnets write nothing new
    assert add(own_daemon, 81).returncode == 0
    assert own_daemon.json("changes", "list")[-1]["seq"] == changes[-1]["seq"] + 1


def test_socket_is_group_accessible_only(own_daemon: Daemon) -> None:
    own_daemon.start()
    assert own_daemon.socket.stat().st_mode & 0o777 == 0o660


def test_second_daemon_on_the_same_socket_refuses(own_daemon: Daemon, tmp_path: Path) -> None:
    own_daemon.start()
    # Its own data dir: the socket, not the data dir's lock, is what refuses it.
    other = tmp_path / "other.toml"
    other.write_text(
        own_daemon.config.read_text()
        .replace('data_dir = "data"', f'data_dir = "{tmp_path / "other-data"}"')
        .replace('socket = "ddi.sock"', f'socket = "{own_daemon.socket}"')
    )
    result = ddi("serve", "--config", str(other))
    assert result.returncode == 1
    assert f"another process is serving at {own_daemon.socket}" in result.stderr
    assert own_daemon.get("/healthz")[0] == 200


def test_second_daemon_on_the_same_data_dir_refuses_naming_the_first(
    own_daemon: Daemon, tmp_path: Path
) -> None:
    own_daemon.start()
    assert own_daemon.proc is not None
    data_dir = own_daemon.workdir / "data"
    second = Daemon(tmp_path / "second")
    second.config.write_text(
        second.config.read_text().replace('data_dir = "data"', f'data_dir = "{data_dir}"')
    )
    result = ddi("serve", "--config", str(second.config))
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"cannot start: site.data_dir: {data_dir} is in use by another ddi process "
        f"(pid {own_daemon.proc.pid}); stop it first, or give this one another data_dir"
    ), result.stderr
    assert not second.socket.exists()  # refused before it listened anywhere
    assert own_daemon.get("/healthz")[0] == 200
    # The lock goes with the process: once the first has stopped, the second starts.
    assert own_daemon.stop() == 0
    second.start()
    assert second.get("/healthz")[0] == 200
    assert second.stop() == 0


def test_sighup_reloads_the_config_and_keeps_it_on_error(own_daemon: Daemon) -> None:
    own_daemon.start()
    assert add(own_daemon, 90).returncode == 0
    own_daemon.write_config(
        subnets_extra='\n[[subnets]]\nname = "servers"\ncidr = "198.18.1.0/24"\n'
    )
    own_daemon.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while len(own_daemon.json("subnet", "list")) != 2:
        assert time.monotonic() < deadline, own_daemon.log.read_text()
        time.sleep(0.05)
    assert own_daemon.json("changes", "list")[-1]["actor"] == "config"
    own_daemon.config.write_text("[site]\nid = 'x'\ndomain = 'x.example'\nbogus = 1\n")
    own_daemon.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload refused" not in own_daemon.log.read_text():
        assert time.monotonic() < deadline, own_daemon.log.read_text()
        time.sleep(0.05)
    assert "config error: site.bogus: unknown key" in own_daemon.log.read_text()
    assert len(own_daemon.json("subnet", "list")) == 2
    assert "host90" in hosts_by_name(own_daemon)
    assert own_daemon.stop() == 0


def test_tcp_listener_requires_the_token(own_daemon: Daemon) -> None:
    own_daemon.write_config(api_extra='listen = "127.0.0.1:0"\ntls = false\ntoken = "s3cret-token"')
    own_daemon.start()
    tcp = [a for a in own_daemon.json("status")["api"] if a.startswith("tcp:")]
    assert len(tcp) == 1
    host, port = tcp[0].removeprefix("tcp:").rsplit(":", 1)

    def get(path: str, token: str | None) -> int:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return http_get(http.client.HTTPConnection(host, int(port), timeout=5), path, headers)[0]

    assert get("/v1/hosts", None) == 401
    assert get("/v1/hosts", "wrong") == 401
    assert get("/metrics", None) == 401
    assert get("/v1/hosts", "s3cret-token") == 200
    assert get("/healthz", None) == 200


def test_sd_notify_ready_watchdog_and_stopping(own_daemon: Daemon, tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify_path))
        sock.settimeout(10)
        own_daemon.start(env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "200000"})
        received: list[str] = []

        def wait_for(state: str) -> None:
            while not any(state in m.split("\n") for m in received):
                received.append(sock.recv(4096).decode())

        wait_for("READY=1")
        wait_for("WATCHDOG=1")
        own_daemon.signal(signal.SIGHUP)
        wait_for("RELOADING=1")
        own_daemon.signal(signal.SIGTERM)
        wait_for("STOPPING=1")
    assert own_daemon.proc is not None
    assert own_daemon.proc.wait(timeout=20) == 0


def test_example_site_config_passes_the_check() -> None:
    result = ddi("serve", "--check", "--config", str(ROOT / "examples" / "site.toml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config ok: ")


def test_example_lab_config_passes_the_check_where_its_interface_exists() -> None:
    # The check looks for the interfaces the file names: ddi0 exists in the lab's namespace
    # only, so the check runs in a namespace of its own holding a veth named ddi0.
    require_root("a network namespace with a veth named ddi0")
    config = str(ROOT / "examples" / "lab.toml")
    outside = ddi("serve", "--check", "--config", config)
    assert outside.returncode == 2
    assert "subnets[0].interface: no interface 'ddi0'" in outside.stderr
    ns = f"ddi-check-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(
            ["ip", "-n", ns, "link", "add", "ddi0", "type", "veth", "peer", "ddi0p"], check=True
        )
        inside = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "ddi", "serve", "--check",
             "--config", config],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.startswith("config ok: ")


def test_a_service_that_cannot_bind_stops_the_daemon_with_one_line(own_daemon: Daemon) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        own_daemon.config.write_text(
            own_daemon.config.read_text() + f'\n[dns]\nlisten = ["127.0.0.1:{port}"]\n'
        )
        result = ddi("serve", "--config", str(own_daemon.config))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("cannot start: dns.listen: "), result.stderr
    assert f"127.0.0.1:{port}" in last
    assert "in use" in last.lower()
    assert "serving site" not in result.stderr  # it never reported itself ready
    assert not own_daemon.socket.exists()


def test_a_write_without_actor_records_the_socket_peer(daemon: Daemon) -> None:
    conn = _UnixConnection(daemon.socket)
    body = json.dumps({"mac": "52:54:00:00:01:5a", "ip": "198.18.0.90", "hostname": "peer90"})
    try:
        conn.request("POST", "/v1/hosts", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 201, answer
    # SO_PEERCRED: the account of the connecting process
    assert answer["change"]["actor"] == pwd.getpwuid(os.getuid()).pw_name

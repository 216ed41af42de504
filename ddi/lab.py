"""A network lab of namespaces joined by veth pairs, for tests, benchmarks and ``make run``.

Every namespace gets its own ``/etc/netns/<name>/resolv.conf``, which ``ip netns exec`` mounts
over ``/etc/resolv.conf``, so that nothing run inside (a DHCP client's hooks above all) can
rewrite the machine's own resolver configuration. Links are dual-stack when given IPv6
addresses (2001:db8::/32, RFC 3849), and duplicate address detection is off on every lab link:
its link-local and global addresses are usable at once, not tentative for a second (RFC 4862
§5.4), so that a service binding them at start-up does not race DAD. ``close()`` kills what
the lab started and removes every namespace and file it made. Needs root and iproute2.

    python -m ddi.lab up      # ddi-site (ddi0 198.18.0.1/24, 2001:db8:10::1/64), ddi-client (eth0)
    python -m ddi.lab down
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

NETNS_ETC = Path("/etc/netns")
RESOLV_CONF = "# ddi lab namespace: never the machine's resolver\nnameserver 127.0.0.1\n"
Addresses = str | Sequence[str] | None
"""One CIDR address, several (IPv4 and IPv6), or none."""


def _ip(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *argv], check=check, capture_output=True, text=True, timeout=30)


def existing_namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def delete_namespace(name: str) -> None:
    """Kill every process left in ``name``, then delete it and its /etc/netns folder."""
    pids = _ip("netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "del", name, check=False)
    shutil.rmtree(NETNS_ETC / name, ignore_errors=True)


class Lab:
    """Namespaces named ``<prefix>-<short>``, veth links between them, processes inside."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.namespaces: list[str] = []
        self._procs: list[subprocess.Popen[str]] = []

    def namespace(self, short: str) -> str:
        name = f"{self.prefix}-{short}"
        if name in existing_namespaces():
            delete_namespace(name)
        _ip("netns", "add", name)
        self.namespaces.append(name)
        (NETNS_ETC / name).mkdir(parents=True, exist_ok=True)
        (NETNS_ETC / name / "resolv.conf").write_text(RESOLV_CONF)
        _ip("-n", name, "link", "set", "lo", "up")
        return name

    def link(
        self,
        ns_a: str,
        if_a: str,
        addr_a: Addresses,
        ns_b: str,
        if_b: str,
        addr_b: Addresses,
    ) -> None:
        """A veth pair ``if_a``@``ns_a`` ⇄ ``if_b``@``ns_b``, created inside the namespaces
        (so names never clash in the root namespace), with optional CIDR addresses (IPv4 and
        IPv6), DAD off, up."""
        _ip("link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b,
            "netns", ns_b)  # fmt: skip
        for ns, ifname, addrs in ((ns_a, if_a, addr_a), (ns_b, if_b, addr_b)):
            # Before the link is up, so that its link-local address is not tentative either.
            self.run(ns, "sysctl", "-qw", f"net.ipv6.conf.{ifname}.accept_dad=0")
            for addr in (addrs,) if isinstance(addrs, str) else addrs or ():
                nodad = ("nodad",) if ":" in addr else ()
                _ip("-n", ns, "addr", "add", addr, "dev", ifname, *nodad)
            _ip("-n", ns, "link", "set", ifname, "up")
        for ns, ifname in ((ns_a, if_a), (ns_b, if_b)):
            self.wait_link_local(ns, ifname)

    def wait_link_local(self, ns: str, ifname: str, within: float = 10.0) -> None:
        """Wait until ``ifname`` has its link-local address: the kernel adds it when the carrier
        comes up, a moment after ``link set up`` (linkwatch), and ND needs it as a source."""
        deadline = time.monotonic() + within
        while True:
            out = _ip("-n", ns, "-6", "-o", "addr", "show", "dev", ifname, "scope", "link").stdout
            if "fe80::" in out and "tentative" not in out:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ns}/{ifname}: no link-local address after {within} s")
            time.sleep(0.02)

    def run(
        self, ns: str, *argv: str, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv],
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, ns: str, *argv: str, **kwargs: object) -> subprocess.Popen[str]:
        """Start ``argv`` inside ``ns`` in its own process group; killed at ``close()``."""
        kwargs.setdefault("text", True)
        proc: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", ns, *argv], start_new_session=True, **kwargs
        )
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        self._procs.clear()
        for name in reversed(self.namespaces):
            delete_namespace(name)
        self.namespaces.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SITE_NS = "ddi-site"
CLIENT_NS = "ddi-client"
SITE_ADDRESSES = ("198.18.0.1/24", "2001:db8:10::1/64")


def up() -> None:
    """The ``make run`` lab: the appliance's namespace and one client namespace."""
    lab = Lab("ddi")
    site, client = lab.namespace("site"), lab.namespace("client")
    lab.link(site, "ddi0", SITE_ADDRESSES, client, "eth0", None)
    print(f"lab up: {site} (ddi0 {', '.join(SITE_ADDRESSES)}) <-> {client} (eth0)")  # noqa: T201


def down() -> None:
    for name in (SITE_NS, CLIENT_NS):
        delete_namespace(name)
    print("lab down")  # noqa: T201


def main(argv: list[str]) -> int:
    commands = {"up": up, "down": down}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python -m ddi.lab up|down", file=sys.stderr)  # noqa: T201
        return 2
    if os.geteuid() != 0:
        print("the lab needs root (network namespaces)", file=sys.stderr)  # noqa: T201
        return 1
    commands[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The lab's dual-stack links: IPv6 addresses usable at once (DAD off), per-namespace
resolv.conf, and everything removed on close."""

from __future__ import annotations

from ddi.lab import NETNS_ETC, RESOLV_CONF, Lab, existing_namespaces
from tests.integration.conftest import require


def test_dual_stack_link_is_usable_at_once_and_removed_on_close() -> None:
    require()
    with Lab("t6lab") as lab:
        srv, cli = lab.namespace("srv"), lab.namespace("cli")
        lab.link(srv, "ddi0", ("198.18.0.1/24", "2001:db8:10::1/64"), cli, "eth0",
                 "2001:db8:10::2/64")  # fmt: skip
        addrs = lab.run(srv, "ip", "-o", "addr", "show", "dev", "ddi0").stdout
        assert "198.18.0.1/24" in addrs
        assert "2001:db8:10::1/64" in addrs
        assert "fe80::" in addrs  # the link-local one, made when the link came up
        assert "tentative" not in addrs
        assert lab.run(cli, "sysctl", "-n", "net.ipv6.conf.eth0.accept_dad").stdout.strip() == "0"
        assert (NETNS_ETC / cli / "resolv.conf").read_text() == RESOLV_CONF
        # Bound and reached straight away: a UDP echo across the link over IPv6.
        script = (
            "import socket;s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);"
            "s.bind(('2001:db8:10::1',7007));s.settimeout(10);d,a=s.recvfrom(64);s.sendto(d,a)"
        )
        server = lab.popen(srv, "python3", "-c", script)
        reply = lab.run(
            cli,
            "python3",
            "-c",
            "import socket,time\n"
            "s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);s.settimeout(0.2)\n"
            "for _ in range(50):\n"
            "    s.sendto(b'ping',('2001:db8:10::1',7007))\n"
            "    try: print(s.recv(64).decode()); break\n"
            "    except OSError: pass\n",
        )
        assert reply.stdout.strip() == "ping"
        assert server.wait(10) == 0
    assert srv not in existing_namespaces()
    assert not (NETNS_ETC / cli).exists()

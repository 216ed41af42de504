"""The per-lease INFO line (dnsmasq's ``DHCPACK(iface) ip mac name`` form) and journald
priorities on the daemon's log lines."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from ddi import journal
from ddi.dhcp import lease_log
from ddi.dhcp.decision import Commit, Reply
from ddi.dhcp.options import MessageType
from ddi.ipam.models import LeaseState
from tests.unit.dhcp.sim import NOW, ClientSim, Harness, reply_of


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ddi.dhcp.leases"]


def test_ack_nak_release_and_decline_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ddi.dhcp.leases")
    harness = Harness()
    client = ClientSim(mac="52:54:00:aa:bb:01", hostname=b"Laptop One")
    ack = client.dora(harness)
    offer = harness.handle(client.discover())
    assert isinstance(offer, Reply)
    lease_log.sent("eth0", offer)  # an OFFER: no line
    lease_log.sent("eth0", ack)
    assert _lines(caplog) == [f"DHCPACK(eth0) {client.ip} 52:54:00:aa:bb:01 laptop-one"]

    caplog.clear()
    stranger = ClientSim(mac="52:54:00:aa:bb:02")
    nak = harness.handle(
        stranger.message(MessageType.REQUEST, requested=client.ip), now=NOW
    )  # INIT-REBOOT for another client's address
    assert reply_of(nak).message_type is MessageType.NAK
    assert isinstance(nak, Reply)
    lease_log.sent("eth0", nak)
    [line] = _lines(caplog)
    assert line.startswith("DHCPNAK(eth0) 52:54:00:aa:bb:02 nak-")

    caplog.clear()
    assert client.ip is not None
    release = harness.handle(client.message(MessageType.RELEASE, ciaddr=client.ip))
    assert isinstance(release, Commit)
    assert release.lease.state is LeaseState.RELEASED
    lease_log.after("eth0", release.lease)()
    declined = dataclasses.replace(release.lease, state=LeaseState.DECLINED)
    lease_log.committed("eth1", declined)
    assert _lines(caplog) == [
        f"DHCPRELEASE(eth0) {client.ip} 52:54:00:aa:bb:01",
        f"DHCPDECLINE(eth1) {client.ip} 52:54:00:aa:bb:01",
    ]


def test_no_line_when_the_logger_is_above_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ddi.dhcp.leases")
    harness = Harness()
    lease_log.sent("eth0", ClientSim(mac="52:54:00:aa:bb:03").dora(harness))
    assert _lines(caplog) == []


def test_journal_priorities_prefix_every_line() -> None:
    record = logging.LogRecord("ddi.x", logging.ERROR, __file__, 1, "boom\nline two", None, None)
    formatter = journal.JournalFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    assert formatter.format(record) == "<3>ERROR ddi.x: boom\n<3>line two"
    assert [journal.priority(level) for level in (50, 40, 30, 20, 10, 5)] == [2, 3, 4, 6, 7, 7]


def test_priorities_only_when_stderr_is_the_journal() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    try:
        assert not journal.use_priorities({})
        assert not isinstance(handler.formatter, journal.JournalFormatter)
        assert journal.use_priorities({"JOURNAL_STREAM": "8:12345"})
        record = logging.LogRecord("x", logging.WARNING, __file__, 1, "disk low", None, None)
        assert handler.format(record) == "<4>disk low"
    finally:
        root.removeHandler(handler)

"""A lease imported from another server is one the engine renews: the client keeps its
address whether it renews (RENEWING, ciaddr set), reboots (INIT-REBOOT, option 50) or starts
over (DISCOVER). (Outside the pools the engine would not renew a dynamic lease: the import
refuses such a lease, ``tests/unit/ipam/test_import.py``.)"""

from __future__ import annotations

from ipaddress import IPv4Address

from ddi.dhcp.options import MessageType
from ddi.ipam.models import Lease
from tests.unit.dhcp.sim import NOW, ClientSim, Harness, reply_of


def test_an_imported_lease_is_renewed_at_its_address() -> None:
    ip = IPv4Address("198.18.0.105")
    imported = Lease(ip=ip, mac="52:54:00:aa:bb:01", start=NOW - 600, end=NOW + 3000,
                     subnet="lan")  # fmt: skip
    harness = Harness(leases=(imported,))
    client = ClientSim(mac="52:54:00:aa:bb:01")

    renew = reply_of(harness.handle(client.message(MessageType.REQUEST, ciaddr=ip)))
    assert (renew.message_type, renew.yiaddr) == (MessageType.ACK, ip)

    reboot = reply_of(harness.handle(client.message(MessageType.REQUEST, requested=ip)))
    assert (reboot.message_type, reboot.yiaddr) == (MessageType.ACK, ip)

    offer = reply_of(harness.handle(client.discover()))
    assert (offer.message_type, offer.yiaddr) == (MessageType.OFFER, ip)
    assert harness.committed[-1].ip == ip
    assert harness.committed[-1].end > imported.end  # renewed: the lease moved on

"""The vendor of a MAC address from the IEEE OUI registry netaddr ships: what ``lease list``,
``lease history`` and ``reserve show`` print so "what is this device?" has an answer.

A locally administered address (the U/L bit, IEEE 802 §8.2: virtual machines, randomised
phone MACs) and a group address have no vendor by construction; an OUI missing from the
registry has none either. Lookups read netaddr's registry file and are cached.
"""

from __future__ import annotations

import functools

import netaddr

__all__ = ["LOCAL", "mac_vendor", "vendor_label"]

LOCAL = "(locally administered)"
"""How a table labels a MAC whose U/L bit says no vendor assigned it."""

_UL_BIT = 0x02
_GROUP_BIT = 0x01


def _first_octet(mac: str) -> int | None:
    try:
        return int(netaddr.EUI(mac).words[0])
    except (netaddr.AddrFormatError, TypeError, ValueError):
        return None


@functools.lru_cache(maxsize=4096)
def mac_vendor(mac: str) -> str | None:
    """The organisation the IEEE registered ``mac``'s OUI to, or None: not a MAC, locally
    administered, a group address, or not in the registry."""
    first = _first_octet(mac)
    if first is None or first & (_UL_BIT | _GROUP_BIT):
        return None
    try:
        org = netaddr.EUI(mac).oui.registration().org
    except (netaddr.NotRegisteredError, IndexError, ValueError):
        return None
    return str(org).strip() or None


def vendor_label(mac: str | None) -> str | None:
    """For a table: the vendor, :data:`LOCAL` for a locally administered MAC, else None."""
    if not mac:
        return None
    vendor = mac_vendor(mac)
    if vendor is None:
        first = _first_octet(mac)
        if first is not None and first & _UL_BIT:
            return LOCAL
    return vendor

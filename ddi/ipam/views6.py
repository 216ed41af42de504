"""The IPv6 part of the in-memory IPAM index: IPv6 subnets, hosts by IPv6 address and by DUID,
and DHCPv6 leases by (kind, prefix), by (DUID, IAID) and by name. Pure; kept apart from
:class:`~ddi.ipam.views.IpamIndex` (which holds one :class:`Index6` and delegates to it) so
the IPv4 maps and these change independently."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

from ddi.ipam.models import Host, LeaseState
from ddi.ipam.models6 import Lease6, Lease6Kind, Subnet6
from ddi.ipam.multimap import MultiMap

__all__ = ["Index6", "Lease6Key"]

Lease6Key = tuple[Lease6Kind, IPv6Network]


def _name_key(name: str) -> str:
    key = name.lower().rstrip(".")
    return name if key == name else key


def _rank(lease: Lease6) -> tuple[bool, float, float]:
    """Which of a client's leases to prefer: bound first, then the latest ending."""
    return (lease.state is LeaseState.BOUND, lease.end, lease.start)


class Index6:
    """Dictionaries over the IPv6 objects; :class:`~ddi.ipam.views.IpamIndex` keeps it current."""

    def __init__(self) -> None:
        self.subnets: dict[str, Subnet6] = {}
        self.subnet_list: list[Subnet6] = []
        self.by_ip6: dict[int, Host] = {}
        """Reservations by their IPv6 address as an integer: the allocator's probes, one per
        candidate, need not build an ``IPv6Address`` (whose hash is Python code)."""
        self.by_duid: dict[str, Host] = {}
        self.leases: dict[Lease6Kind, dict[IPv6Network, Lease6]] = {k: {} for k in Lease6Kind}
        """Kind → prefix → lease: IA_NA addresses (/128) and IA_PD prefixes apart."""
        self.na_at: dict[int, Lease6] = {}
        """The NA leases by their address as an integer, as ``by_ip6``."""
        self.by_client: MultiMap[tuple[Lease6Kind, str, int], IPv6Network] = MultiMap()
        """(kind, DUID, IAID) → that IA's prefixes (an IA may hold several; RFC 8415 §12
        scopes an IAID to its IA type)."""
        self.by_duid_leases: MultiMap[tuple[Lease6Kind, str], IPv6Network] = MultiMap()
        self.names: MultiMap[str, IPv6Network] = MultiMap()
        """Hostname → the bound NA leases that carry it (the ones DNS publishes)."""

    # --- subnets ---

    def put_subnet(self, subnet: Subnet6) -> None:
        self.subnets[subnet.name] = subnet
        self.sort_subnets()

    def drop_subnet(self, name: str) -> Subnet6 | None:
        old = self.subnets.pop(name, None)
        self.sort_subnets()
        return old

    def sort_subnets(self) -> None:
        self.subnet_list = sorted(self.subnets.values(), key=lambda s: (s.cidr, s.name))

    def subnet_for(self, ip: IPv6Address) -> Subnet6 | None:
        """The most specific IPv6 subnet holding ``ip``."""
        best: Subnet6 | None = None
        for subnet in self.subnet_list:
            if ip in subnet.cidr and (best is None or subnet.cidr.prefixlen > best.cidr.prefixlen):
                best = subnet
        return best

    # --- hosts ---

    def put_host(self, host: Host) -> None:
        if host.ip6 is not None:
            self.by_ip6[int(host.ip6)] = host
        if host.duid is not None:
            self.by_duid[host.duid] = host

    def drop_host(self, old: Host) -> None:
        ip6, duid = old.ip6, old.duid
        if ip6 is not None and getattr(self.by_ip6.get(int(ip6)), "id", None) == old.id:
            del self.by_ip6[int(ip6)]
        if duid is not None and getattr(self.by_duid.get(duid), "id", None) == old.id:
            del self.by_duid[duid]

    # --- leases ---

    def lease(self, kind: Lease6Kind, prefix: IPv6Network) -> Lease6 | None:
        return self.leases[kind].get(prefix)

    def all_leases(self) -> list[Lease6]:
        return [*self.leases[Lease6Kind.NA].values(), *self.leases[Lease6Kind.PD].values()]

    def put_lease(self, lease: Lease6) -> Lease6 | None:
        """Index ``lease`` in place of the one at its key; returns that one."""
        kind, prefix = lease.kind, lease.prefix
        old = self.drop_lease((kind, prefix))
        self.leases[kind][prefix] = lease
        if kind is Lease6Kind.NA and prefix.prefixlen == 128:
            self.na_at[int(prefix.network_address)] = lease
        self.by_client.add((kind, lease.duid, lease.iaid), prefix)
        self.by_duid_leases.add((kind, lease.duid), prefix)
        if lease.hostname and kind is Lease6Kind.NA and lease.state is LeaseState.BOUND:
            self.names.add(_name_key(lease.hostname), prefix)
        return old

    def drop_lease(self, key: Lease6Key) -> Lease6 | None:
        kind, prefix = key
        old = self.leases[kind].pop(prefix, None)
        if old is None:
            return None
        if kind is Lease6Kind.NA and prefix.prefixlen == 128:
            del self.na_at[int(prefix.network_address)]
        self.by_client.discard((kind, old.duid, old.iaid), prefix)
        self.by_duid_leases.discard((kind, old.duid), prefix)
        if old.hostname and kind is Lease6Kind.NA and old.state is LeaseState.BOUND:
            self.names.discard(_name_key(old.hostname), prefix)
        return old

    def leases_of(self, kind: Lease6Kind, duid: str, iaid: int) -> list[Lease6]:
        """The leases of one IA (RFC 8415 §12: identified by type, DUID and IAID), best first."""
        leases = self.leases[kind]
        found = [leases[p] for p in self.by_client.get((kind, duid, iaid))]
        return sorted(found, key=_rank, reverse=True)

    def leases_of_duid(self, kind: Lease6Kind, duid: str) -> list[Lease6]:
        leases = self.leases[kind]
        found = [leases[p] for p in self.by_duid_leases.get((kind, duid))]
        return sorted(found, key=_rank, reverse=True)

    def leases_named(self, hostname: str) -> list[Lease6]:
        leases = self.leases[Lease6Kind.NA]
        return [leases[p] for p in self.names.get(_name_key(hostname))]

    def state(self) -> tuple[object, ...]:
        return (
            self.subnet_list,
            sorted(self.by_ip6.items()),
            sorted(self.by_duid.items()),
            sorted(self.leases[Lease6Kind.NA].items()),
            sorted(self.leases[Lease6Kind.PD].items()),
            sorted((k, sorted(v)) for k, v in self.by_client.items()),
            sorted((k, sorted(v)) for k, v in self.names.items()),
        )

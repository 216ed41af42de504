"""The DHCPv4 server engine (RFC 2131 §4.3, RFC 3046, RFC 4702), sans-I/O.

``DhcpEngine.handle(packet, inbound, now)`` takes a decoded request, where it came from and the
wall-clock time, reads the IPAM through an ``IpamView``, and returns a ``Decision`` (a
``Reply``, ``Commit`` or ``Drop``: ``ddi.dhcp.decision``); the reply's options are built by
``ddi.dhcp.reply_options``.

Rules:
1. An address comes from, in order: the client's reservation (client-id, then MAC, then relay
   circuit-id), its previous lease, the address it asks for when free, the next free pool
   address. A reservation outside the subnet the client is on does not apply there.
2. OFFERs are held in memory only (``offer_ttl``), bounded, keyed by client; only ACKs, DECLINEs
   and RELEASEs produce lease writes. An acknowledged or declined address stays held the same
   way until its lease is committed and visible in the view, so the group-commit window can
   never hand one address to two clients. Outstanding OFFERs are also bounded per link (relay
   or interface, ``dhcp.max_offers_per_link``): past it the link's oldest is forgotten, so new
   clients on one link cannot hold a whole pool with OFFERs alone (``ddi.dhcp.offers``).
3. The subnet is the one whose ``interface`` the request came in on, or, for a relayed request,
   the one holding giaddr (or listing it in ``relay_agents``); RFC 3527 link selection
   (option 82 sub-option 5) overrides giaddr.
4. Option 61 (RFC 6842 §3) and option 82 (RFC 3046 §2.2) are echoed unchanged at the end of
   every reply, 82 last.
5. Reply addressing is ``ddi.dhcp.decision.reply_destination`` (RFC 2131 §4.1).
6. Nothing here reads the clock, draws randomness, does I/O or writes the store.
7. The fast path: a reply whose options only its subnet and classes decide (no reservation, no
   relay information, no client FQDN, no netboot) reuses the option list built for the same
   subnet value, message type, server id, parameter request list and classes.
8. A full pool is known without a scan (``ddi.ipam.allocator.FreeLedger``, kept current from
   the view's committed changes and the offer table).
9. Client classes (``ddi.dhcp.classes``) are matched once per request; they restrict the pools
   a client draws from and add options and a boot profile. A subnet in a shared network
   (``ddi.dhcp.shared_networks``) lends its link the next member's pools when its own are
   full, and a request for an address of any member is judged in that member.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from ddi.dhcp.classes import ClientClass, PoolChooser, classify
from ddi.dhcp.decision import (
    BROADCAST_ADDRESS,
    Commit,
    Decision,
    Destination,
    Drop,
    DropReason,
    Inbound,
    Reply,
    Rule,
    reply_destination,
    reply_max_size,
)
from ddi.dhcp.netboot import BootChoice, BootProfile, boot_facts, boot_options, select_boot
from ddi.dhcp.offers import OfferTable
from ddi.dhcp.options import (
    MessageType,
    OptionCode,
    RelayAgentSubOption,
    decode_client_fqdn,
    decode_relay_agent_information,
    encode_u32,
    format_hex,
)
from ddi.dhcp.packet import (
    BOOTREPLY,
    BOOTREQUEST,
    BROADCAST_FLAG,
    ZERO_ADDRESS,
    DhcpPacket,
    new_packet,
)
from ddi.dhcp.reply_options import may_netboot, ordered_options, reply_parameters
from ddi.dhcp.shared_networks import members_by_subnet
from ddi.errors import DhcpFormatError
from ddi.ipam.allocator import Client, FreeLedger, Problem, address_problem, next_free
from ddi.ipam.models import Host, Kind, Lease, LeaseState, Subnet
from ddi.ipam.validate import sanitize_hostname
from ddi.values import slot_builder

if TYPE_CHECKING:
    from ddi.config import DhcpConfig
    from ddi.ipam.views import Applied, IpamView

MAX_OFFERS = 65_536
"""Outstanding OFFERs kept at most; past it the oldest is forgotten (its address frees)."""
_new_lease = slot_builder(Lease)
_new_reply = slot_builder(Reply)

# Enum members and option codes the hot path reads per packet, as module globals: a lookup on
# an enum class costs about 0.15 µs (EnumType), a global a tenth of that.
_DISCOVER, _REQUEST, _DECLINE = MessageType.DISCOVER, MessageType.REQUEST, MessageType.DECLINE
_RELEASE, _INFORM = MessageType.RELEASE, MessageType.INFORM
_OFFER, _ACK, _NAK = MessageType.OFFER, MessageType.ACK, MessageType.NAK
_BOUND = LeaseState.BOUND
_CIRCUIT_ID = int(RelayAgentSubOption.CIRCUIT_ID)
_RELAY_SOURCE_PORT = int(RelayAgentSubOption.RELAY_SOURCE_PORT)
_OPT_CLIENT_IDENTIFIER = int(OptionCode.CLIENT_IDENTIFIER)
_OPT_RELAY_AGENT_INFORMATION = int(OptionCode.RELAY_AGENT_INFORMATION)
_OPT_CLIENT_FQDN = int(OptionCode.CLIENT_FQDN)
_OPT_HOST_NAME = int(OptionCode.HOST_NAME)
_OPT_PARAMETER_REQUEST_LIST = int(OptionCode.PARAMETER_REQUEST_LIST)
_OPT_MESSAGE_TYPE = int(OptionCode.MESSAGE_TYPE)
_OPT_SERVER_IDENTIFIER = int(OptionCode.SERVER_IDENTIFIER)
_OPT_LEASE_TIME = int(OptionCode.LEASE_TIME)
_OPT_RENEWAL_TIME = int(OptionCode.RENEWAL_TIME)
_OPT_REBINDING_TIME = int(OptionCode.REBINDING_TIME)

MAX_PLAIN_OPTIONS = 4096
"""Reply option lists kept for reuse (rule 7) at most; past it the cache starts over."""


def _declined_key(ip: IPv4Address) -> str:
    """The offer table's key for a DECLINEd address's hold (held for no client)."""
    return f"declined:{ip}"


_NAK_FOR_PROBLEM: Mapping[Problem, Rule] = {
    Problem.OUTSIDE_SUBNET: Rule.NAK_WRONG_SUBNET,
    Problem.NOT_IN_POOL: Rule.NAK_NOT_IN_POOL,
    Problem.RESERVED: Rule.NAK_RESERVED,
    Problem.LEASED: Rule.NAK_TAKEN,
    Problem.QUARANTINED: Rule.NAK_TAKEN,
    Problem.OFFERED: Rule.NAK_TAKEN,
}


class RequestState(enum.Enum):
    """RFC 2131 §4.3.2: the client state a DHCPREQUEST is sent from."""

    SELECTING = "selecting"
    INIT_REBOOT = "init-reboot"
    RENEWING = "renewing"  # also REBINDING: the server treats both alike


_SELECTING = RequestState.SELECTING
_ACK_RULE: Mapping[RequestState, Rule] = {
    RequestState.SELECTING: Rule.ACK_SELECTING,
    RequestState.INIT_REBOOT: Rule.ACK_INIT_REBOOT,
    RequestState.RENEWING: Rule.ACK_RENEWING,
}
_OFFER_RESERVATION = Rule.OFFER_RESERVATION
_LEASE_KIND, _HOST_KIND, _SUBNET_KIND = Kind.LEASE, Kind.HOST, Kind.SUBNET


@dataclass(slots=True, kw_only=True)
class _Context:
    """What every handler needs about one request (private and never changed after it is
    made; not frozen, which would make each request pay for a checked ``__init__``)."""

    packet: DhcpPacket
    inbound: Inbound
    now: float
    client: Client
    server_id: IPv4Address
    circuit_id: str | None
    relay_info: bytes | None
    relay_port: int | None
    echo: tuple[tuple[int, bytes], ...]
    """Rule 4: the options every reply ends with."""
    classes: tuple[ClientClass, ...] = ()
    """Rule 9: the client classes the request matched, in configuration order."""
    class_names: tuple[str, ...] = ()
    """Their names: a cheap key for the options and pools they decide."""


class DhcpEngine:
    """RFC 2131 server decisions over an ``IpamView``; holds only the outstanding OFFERs."""

    def __init__(
        self,
        config: DhcpConfig,
        view: IpamView,
        *,
        profiles: Mapping[str, BootProfile] | None = None,
        domain: str | None = None,
        max_offers: int = MAX_OFFERS,
    ) -> None:
        self._config = config
        self._view = view
        self._profiles: Mapping[str, BootProfile] = profiles or {}
        self._domain = domain
        self._offered: dict[IPv4Address, str] = {}
        self._cursor: dict[str, IPv4Address] = {}
        self._subnet_cache: dict[str, tuple[Subnet, dict[int, bytes]]] = {}
        self._plain_options: dict[
            tuple[str, MessageType, IPv4Address, bool, bytes | None, tuple[str, ...]],
            tuple[Subnet, tuple[tuple[int, bytes], ...]],
        ] = {}
        self._ledger = FreeLedger(view, self._offered)
        self._offers = OfferTable(self._ledger, self._offered, max_offers=max_offers)
        self._pool_chooser = PoolChooser()
        self._shared = members_by_subnet(config.shared_networks)
        view.subscribe(self._observe)

    def close(self) -> None:
        """Stop following the view."""
        self._view.unsubscribe(self._observe)

    def _observe(self, applied: Sequence[Applied]) -> None:
        """Keep the free-address ledger current with what the view committed."""
        ledger = self._ledger
        for item in applied:
            change = item.change
            if change.kind is _LEASE_KIND:
                lease = item.lease or item.before
                if isinstance(lease, Lease):
                    if item.lease is not None:
                        self._unhold(lease)
                    ledger.touch(lease.ip, lease.subnet)
            elif change.kind is _HOST_KIND:
                before = item.before
                if isinstance(before, Host) and before.ip is not None:
                    ledger.touch(before.ip)
                ip = change.image.get("ip")
                if isinstance(ip, str):
                    ledger.touch(IPv4Address(ip))
            elif change.kind is _SUBNET_KIND:
                ledger.rebuild()
                return  # a rebuild reads everything

    def _unhold(self, lease: Lease) -> None:
        """The view shows ``lease``: its ACK's or DECLINE's hold is no longer needed (a table
        of holds left to run out would fill with every exchange of the last ``offer_ttl``)."""
        if lease.state is _BOUND:
            key = Client(mac=lease.mac, client_id=lease.client_id).key
        elif lease.state is LeaseState.DECLINED:
            key = _declined_key(lease.ip)
        else:
            return
        self._offers.release(key, lease.ip)

    def reconfigure(
        self,
        config: DhcpConfig,
        *,
        profiles: Mapping[str, BootProfile] | None = None,
        domain: str | None = None,
    ) -> None:
        """Take a reloaded configuration; outstanding offers are kept."""
        self._config = config
        self._profiles = profiles or {}
        self._domain = domain
        self._shared = members_by_subnet(config.shared_networks)
        self._plain_options.clear()

    def statistics(self) -> dict[str, int]:
        return {"offers_outstanding": len(self._offers)}

    def holds(self, mac: str) -> bool:
        """Whether a client with this hardware address has an outstanding offer or hold."""
        return self._offers.holds_mac(mac)

    def handle(self, packet: DhcpPacket, inbound: Inbound, now: float) -> Decision:
        """Decide what to do with one request.

        Returns:
            Reply, Commit or Drop; never raises for any decoded packet.
        """
        if packet.op != BOOTREQUEST:
            return Drop(reason=DropReason.NOT_BOOTREQUEST)
        message_type = packet.message_type
        if message_type is None:
            return Drop(reason=DropReason.NO_MESSAGE_TYPE)
        raw_client_id = packet.get(_OPT_CLIENT_IDENTIFIER)
        client = Client(
            mac=packet.mac, client_id=format_hex(raw_client_id) if raw_client_id else None
        )
        if client.mac is None and client.client_id is None:
            return Drop(reason=DropReason.NO_CLIENT_IDENTITY)
        server_id = self._config.server_id or inbound.local_ip
        if server_id is None:
            return Drop(reason=DropReason.NO_SERVER_ADDRESS)
        self._offers.expire(now)
        try:
            relay_info = packet.get(_OPT_RELAY_AGENT_INFORMATION)
            circuit_id = None
            raw_circuit_id = None
            relay_port = None
            if relay_info is not None:
                for code, value in decode_relay_agent_information(relay_info):
                    if code == _CIRCUIT_ID and value and circuit_id is None:
                        circuit_id = format_hex(value)
                        raw_circuit_id = value
                    elif code == _RELAY_SOURCE_PORT:
                        # RFC 8357 §5.1: answer the relay on the port it sent from.
                        relay_port = inbound.src_port
            # RFC 6842 §3: "the server MUST return the 'client identifier' option, unaltered".
            echo: tuple[tuple[int, bytes], ...] = ()
            if raw_client_id is not None:
                echo = ((_OPT_CLIENT_IDENTIFIER, raw_client_id),)
            if relay_info is not None:
                # RFC 3046 §2.2: copied "as the last DHCP option in the response".
                echo += ((_OPT_RELAY_AGENT_INFORMATION, relay_info),)
            ctx = _Context(
                packet=packet,
                inbound=inbound,
                now=now,
                client=client,
                server_id=server_id,
                circuit_id=circuit_id,
                relay_info=relay_info,
                relay_port=relay_port,
                echo=echo,
            )
            if self._config.classes:
                ctx.classes = classify(packet, raw_circuit_id, self._config.classes)
                ctx.class_names = tuple(c.name for c in ctx.classes)
            if message_type is _DISCOVER:
                return self._discover(ctx)
            if message_type is _REQUEST:
                return self._request(ctx)
            if message_type is _DECLINE:
                return self._decline(ctx)
            if message_type is _RELEASE:
                return self._release(ctx)
            if message_type is _INFORM:
                return self._inform(ctx)
            return Drop(reason=DropReason.UNEXPECTED_MESSAGE)
        except DhcpFormatError:
            return Drop(reason=DropReason.BAD_OPTION)

    # --- RFC 2131 §4.3.1: DHCPDISCOVER -------------------------------------------------------

    def _discover(self, ctx: _Context) -> Decision:
        subnet = self._subnet(ctx)
        if subnet is None:
            return Drop(reason=DropReason.NO_SUBNET)
        host = self._reservation(ctx, subnet)
        if host is not None and host.ip is not None:
            ip, rule = host.ip, Rule.OFFER_RESERVATION
        elif subnet.known_hosts_only:
            return Drop(reason=DropReason.UNKNOWN_CLIENT)
        else:
            found = self._shared_address(ctx, subnet)
            if found is None:
                return Drop(reason=DropReason.POOL_EXHAUSTED)
            ip, rule, subnet = found
        giaddr = ctx.packet.giaddr
        # The relay as an int: an IPv4Address hashes in Python, an int in C.
        link = int(giaddr) if giaddr != ZERO_ADDRESS else ctx.inbound.interface or ""
        pooled = rule is not _OFFER_RESERVATION  # the others passed address_problem
        self._hold_offer(ctx.client, ip, subnet, ctx.now, rule, link=link, pooled=pooled)
        return self._lease_reply(ctx, _OFFER, subnet, host, ip, rule, commit=False)

    def _pools_for(self, ctx: _Context, subnet: Subnet) -> tuple[Subnet, ...]:
        """Rule 9: the subnet with only the pools this client's classes may draw from, its
        classes' own pools first (``ddi.dhcp.classes.pool_views``); the last has them all."""
        if not self._config.classes:
            return (subnet,)  # without classes no pool names one (the config checks)
        return self._pool_chooser.views(subnet, ctx.class_names)

    def _shared_address(
        self, ctx: _Context, subnet: Subnet
    ) -> tuple[IPv4Address, Rule, Subnet] | None:
        """Rule 9: an address from ``subnet``, else from the next member of its shared network
        (the member holding the client's previous lease first)."""
        members = self._shared.get(subnet.name)
        if members is None:
            for view in self._pools_for(ctx, subnet):
                found = self._dynamic_address(ctx, view)
                if found is not None:
                    return (*found, subnet)
            return None
        previous = self._view.lease_by_client(ctx.client.mac, ctx.client.client_id)
        if previous is not None and previous.subnet in members:
            members = (previous.subnet, *(m for m in members if m != previous.subnet))
        by_name = {s.name: s for s in self._view.subnets()}
        for name in members:
            member = by_name.get(name)
            if member is None:
                continue
            for view in self._pools_for(ctx, member):
                found = self._dynamic_address(ctx, view)
                if found is not None:
                    return (*found, member)
        return None

    def _dynamic_address(self, ctx: _Context, subnet: Subnet) -> tuple[IPv4Address, Rule] | None:
        client, now = ctx.client, ctx.now

        def usable(ip: IPv4Address) -> bool:
            problem = address_problem(
                ip, subnet, self._view, now, client=client, offered=self._offered
            )
            return problem is None

        # RFC 2131 §4.3.1: the client's current or previous address, else the one it asks
        # for, else a new one. A retransmitted DISCOVER gets the address already offered.
        offer = self._offers.get(client.key)
        if offer is not None and offer.subnet == subnet.name and usable(offer.ip):
            return offer.ip, Rule.OFFER_OUTSTANDING
        previous = self._view.lease_by_client(client.mac, client.client_id)
        if previous is not None and usable(previous.ip):
            return previous.ip, Rule.OFFER_PREVIOUS
        requested = ctx.packet.requested_address()
        if requested is not None and usable(requested):
            return requested, Rule.OFFER_REQUESTED
        if self._ledger.free(subnet, now) <= 0:
            return None  # rule 8: without walking the pool
        ip = next_free(
            subnet,
            self._view,
            now,
            client=client,
            offered=self._offered,
            start=self._cursor.get(subnet.name),
        )
        if ip is None:
            return None
        self._cursor[subnet.name] = ip + 1 if ip != BROADCAST_ADDRESS else ip
        return ip, Rule.OFFER_POOL

    # --- RFC 2131 §4.3.2: DHCPREQUEST --------------------------------------------------------

    def _request(self, ctx: _Context) -> Decision:
        packet = ctx.packet
        server_id = packet.server_identifier()
        requested = packet.requested_address()
        if server_id is not None:
            # SELECTING: option 54 names the server the client chose, ciaddr MUST be zero and
            # option 50 MUST hold the offered address.
            if server_id != ctx.server_id:
                # The client took another server's offer: release ours at once.
                self._offers.drop(ctx.client.key)
                return Drop(reason=DropReason.OTHER_SERVER)
            if requested is None:
                return Drop(reason=DropReason.BAD_REQUEST)
            return self._confirm(ctx, requested, _SELECTING)
        if packet.ciaddr != ZERO_ADDRESS:
            # RENEWING (unicast) or REBINDING (broadcast): no option 54, no option 50, the
            # address in ciaddr. Some clients add option 50 too; ciaddr wins.
            return self._confirm(ctx, packet.ciaddr, RequestState.RENEWING)
        if requested is not None:
            # INIT-REBOOT: no option 54, ciaddr zero, option 50 the address the client had.
            return self._confirm(ctx, requested, RequestState.INIT_REBOOT)
        return Drop(reason=DropReason.BAD_REQUEST)

    def _confirm(self, ctx: _Context, ip: IPv4Address, state: RequestState) -> Decision:
        subnet = self._subnet_holding(ctx, ip)
        if subnet is None:
            return Drop(reason=DropReason.NO_SUBNET)
        # RFC 2131 §4.3.2: an address not on the client's network MUST be NAKed (INIT-REBOOT;
        # RENEWING/REBINDING "SHOULD" check the same).
        if ip not in subnet.cidr:
            return self._nak(ctx, Rule.NAK_WRONG_SUBNET)
        host = self._reservation(ctx, subnet)
        ack_rule = _ACK_RULE[state]
        if host is not None:
            if ip != host.ip:
                # A reservation (perhaps added while the client held a pool address) moves the
                # client: NAK, and its next DISCOVER is offered the reserved address.
                return self._nak(ctx, Rule.NAK_RESERVED_ELSEWHERE)
            return self._lease_reply(ctx, _ACK, subnet, host, ip, ack_rule, commit=True)
        if subnet.known_hosts_only:
            return self._nak(ctx, Rule.NAK_UNKNOWN_CLIENT)
        problem = address_problem(
            ip,
            self._pools_for(ctx, subnet)[-1],
            self._view,
            ctx.now,
            client=ctx.client,
            offered=self._offered,
        )
        if problem is not None:
            return self._nak(ctx, _NAK_FOR_PROBLEM[problem])
        if state is not _SELECTING and not self._has_record(ctx, ip):
            # RFC 2131 §4.3.2 INIT-REBOOT: "If the DHCP server has no record of this client,
            # then it MUST remain silent" -- unless configured authoritative for its subnets,
            # as ISC dhcpd's "authoritative", which NAKs so the client starts over at once.
            if not self._config.authoritative:
                return Drop(reason=DropReason.NO_RECORD)
            return self._nak(ctx, Rule.NAK_UNKNOWN_LEASE)
        return self._lease_reply(ctx, _ACK, subnet, None, ip, ack_rule, commit=True)

    def _has_record(self, ctx: _Context, ip: IPv4Address) -> bool:
        lease = self._view.lease_by_ip(ip)
        if lease is not None and ctx.client.owns(lease):
            return True
        offer = self._offers.get(ctx.client.key)
        return offer is not None and offer.ip == ip

    # --- RFC 2131 §4.3.3: DHCPDECLINE --------------------------------------------------------

    def _decline(self, ctx: _Context) -> Decision:
        server_id = ctx.packet.server_identifier()
        if server_id is not None and server_id != ctx.server_id:
            return Drop(reason=DropReason.OTHER_SERVER)
        ip = ctx.packet.requested_address()
        if ip is None:
            return Drop(reason=DropReason.BAD_REQUEST)
        lease = self._view.lease_by_ip(ip)
        offer = self._offers.get(ctx.client.key)
        host = self._view.host_by_ip(ip)
        holds = (
            (lease is not None and ctx.client.owns(lease) and lease.state is LeaseState.BOUND)
            or (offer is not None and offer.ip == ip)
            or (host is not None and ctx.client.is_host(host))
        )
        if not holds:
            return Drop(reason=DropReason.NOT_LEASED)
        if lease is not None:
            subnet_name = lease.subnet
        elif offer is not None and offer.ip == ip:
            subnet_name = offer.subnet
        else:
            subnet = self._subnet_holding(ctx, ip)
            if subnet is None:
                return Drop(reason=DropReason.NO_SUBNET)
            subnet_name = subnet.name
        self._offers.drop(ctx.client.key)
        # Held for no client until the quarantine lease is committed and visible, and never
        # past the quarantine itself (which may be shorter than an offer's hold).
        self._hold_offer(
            _declined_key(ip),
            ip,
            subnet_name,
            ctx.now,
            Rule.DECLINED,
            ttl=min(self._config.offer_ttl, self._config.decline_quarantine),
        )
        # RFC 2131 §3.1.5 and §4.3.3: the address is in use by something else on the link.
        # It stays out of the pool for ``decline_quarantine`` seconds; the lease row makes that
        # durable, so a restart does not hand it out again.
        quarantine = Lease(
            ip=ip,
            mac=ctx.client.mac,
            client_id=ctx.client.client_id,
            state=LeaseState.DECLINED,
            start=ctx.now,
            end=ctx.now + self._config.decline_quarantine,
            subnet=subnet_name,
            circuit_id=ctx.circuit_id,
        )
        return Commit(lease=quarantine, rule=Rule.DECLINED)

    # --- RFC 2131 §4.3.4: DHCPRELEASE --------------------------------------------------------

    def _release(self, ctx: _Context) -> Decision:
        server_id = ctx.packet.server_identifier()
        if server_id is not None and server_id != ctx.server_id:
            return Drop(reason=DropReason.OTHER_SERVER)
        lease = self._view.lease_by_ip(ctx.packet.ciaddr)
        if lease is None or lease.state is not LeaseState.BOUND or not ctx.client.owns(lease):
            return Drop(reason=DropReason.NOT_LEASED)
        # The lease row is kept, released, so the client's next DISCOVER gets it back. Until
        # the release is committed the view still shows the lease bound, so no hold is needed.
        self._offers.drop(ctx.client.key)
        released = replace(lease, state=LeaseState.RELEASED, end=ctx.now)
        return Commit(lease=released, rule=Rule.RELEASED)

    # --- RFC 2131 §4.3.5: DHCPINFORM ---------------------------------------------------------

    def _inform(self, ctx: _Context) -> Decision:
        subnet = self._subnet_holding(ctx, ctx.packet.ciaddr)
        if subnet is None:
            return Drop(reason=DropReason.NO_SUBNET)
        host = self._reservation(ctx, subnet)
        # "The server MUST NOT send a lease expiration time to the client and SHOULD NOT fill
        # in 'yiaddr'."
        return self._lease_reply(
            ctx, MessageType.ACK, subnet, host, None, Rule.ACK_INFORM, commit=False
        )

    # --- selection ---------------------------------------------------------------------------

    def _subnet(self, ctx: _Context, hint: IPv4Address | None = None) -> Subnet | None:
        """Rule 3: the subnet the client is on."""
        packet = ctx.packet
        subnets = self._view.subnets()
        if packet.giaddr != ZERO_ADDRESS:
            link = self._link_selection(ctx) or packet.giaddr
            for subnet in subnets:
                if link in subnet.cidr:
                    return subnet
            for subnet in subnets:
                if packet.giaddr in subnet.relay_agents:
                    return subnet
            return None
        candidates = [s for s in subnets if s.interface == ctx.inbound.interface]
        if len(candidates) > 1 and hint is not None:
            for subnet in candidates:
                if hint in subnet.cidr:
                    return subnet
        return candidates[0] if candidates else None

    def _subnet_holding(self, ctx: _Context, ip: IPv4Address) -> Subnet | None:
        """Rule 3 with ``ip`` as the hint; rule 9: when the link's subnet is in a shared
        network, the member that holds ``ip``."""
        subnet = self._subnet(ctx, hint=ip)
        if subnet is None or ip in subnet.cidr or subnet.name not in self._shared:
            return subnet
        members = self._shared[subnet.name]
        for other in self._view.subnets():
            if other.name in members and ip in other.cidr:
                return other
        return subnet

    def _link_selection(self, ctx: _Context) -> IPv4Address | None:
        """RFC 3527 §3: sub-option 5 names the client's link when giaddr cannot."""
        if ctx.relay_info is None:
            return None
        for code, value in decode_relay_agent_information(ctx.relay_info):
            if code == RelayAgentSubOption.LINK_SELECTION and len(value) == 4:
                return IPv4Address(value)
        return None

    def _reservation(self, ctx: _Context, subnet: Subnet) -> Host | None:
        """Rule 1: by client-id, then MAC, then (relayed only) circuit-id, in this subnet."""
        view, client = self._view, ctx.client
        host = None
        if client.client_id is not None:
            host = view.host_by_client_id(client.client_id)
        if host is None and client.mac is not None:
            host = view.host_by_mac(client.mac)
        if host is None and ctx.circuit_id is not None:
            host = view.host_by_circuit_id(ctx.circuit_id)
        if host is None or host.ip is None or host.ip not in subnet.cidr:
            return None
        return host

    # --- offers ------------------------------------------------------------------------------

    def _hold_offer(
        self,
        client: Client | str,
        ip: IPv4Address,
        subnet: Subnet | str,
        now: float,
        rule: Rule,
        *,
        ttl: float | None = None,
        link: int | str | None = None,
        pooled: bool = False,
    ) -> None:
        """Hold ``ip`` for ``client`` for ``ttl`` seconds (default ``offer_ttl``); ``link``
        for an OFFER, which rule 2 bounds per link; ``pooled`` when ``ip`` is known to be a
        usable pool address of ``subnet`` (spares the ledger a lookup)."""
        key, mac = (client, None) if isinstance(client, str) else (client.key, client.mac)
        config = self._config
        self._offers.hold(
            key,
            mac,
            ip,
            subnet if isinstance(subnet, str) else subnet.name,
            now + (config.offer_ttl if ttl is None else ttl),
            rule,
            link=link,
            per_link=config.max_offers_per_link,
            pooled=pooled,
        )

    # --- replies -----------------------------------------------------------------------------

    def _hostname(self, ctx: _Context, host: Host | None, ip: IPv4Address | None) -> str | None:
        """A reservation's own name; else the client's option 81/12 name, sanitised, unless a
        reservation or static record owns it; else the name its lease already has."""
        if host is not None:
            return host.hostname
        name = None
        fqdn = ctx.packet.get(_OPT_CLIENT_FQDN)
        if fqdn is not None:
            name = sanitize_hostname(decode_client_fqdn(fqdn).name)
        if name is None:
            raw = ctx.packet.get(_OPT_HOST_NAME)
            if raw is not None:
                name = sanitize_hostname(raw)
        if name is not None:
            return None if self._view.name_owned(name) else name
        if ip is not None:
            lease = self._view.lease_by_ip(ip)
            if lease is not None and ctx.client.owns(lease):
                return lease.hostname
        return None

    def _lease_reply(
        self,
        ctx: _Context,
        message_type: MessageType,
        subnet: Subnet,
        host: Host | None,
        ip: IPv4Address | None,
        rule: Rule,
        *,
        commit: bool,
    ) -> Reply:
        if host is not None and host.dhcp is not None:
            # The reservation's own lease time (and so T1/T2), router, DNS servers, domain,
            # MTU, routes and NTP servers over the subnet's; the subnet's name and pools stay.
            subnet = host.dhcp.overlay(subnet)
        classes = ctx.classes
        packet = ctx.packet
        hostname = self._hostname(ctx, host, ip)
        lease_time = subnet.lease_time
        choice = None
        siaddr = ZERO_ADDRESS
        file = b""
        # Rule 7: when only the subnet (and the classes) decide the options, reuse the ones
        # built last time.
        plain_key = None
        if (
            host is None
            and ctx.relay_info is None
            and packet.get(_OPT_CLIENT_FQDN) is None
            and (message_type is _NAK or not may_netboot(packet))
        ):
            plain_key = (
                subnet.name,
                message_type,
                ctx.server_id,
                ip is not None,
                packet.get(_OPT_PARAMETER_REQUEST_LIST),
                ctx.class_names,
            )
            cached = self._plain_options.get(plain_key)
            if cached is not None and cached[0] is subnet:
                plain = cached[1] + ctx.echo if ctx.echo else cached[1]
                return self._reply(ctx, message_type, subnet, ip, rule, plain, hostname,
                                   commit=commit)  # fmt: skip
        options: list[tuple[int, bytes]] = [
            (_OPT_MESSAGE_TYPE, bytes((message_type,))),
            (_OPT_SERVER_IDENTIFIER, ctx.server_id.packed),
        ]
        if ip is not None:
            # RFC 2132 §9.11/§9.12: T1 defaults to 0.5 and T2 to 0.875 of the lease time.
            options += [
                (_OPT_LEASE_TIME, encode_u32(lease_time)),
                (_OPT_RENEWAL_TIME, encode_u32(lease_time // 2)),
                (_OPT_REBINDING_TIME, encode_u32(lease_time * 7 // 8)),
            ]
        parameters = reply_parameters(
            packet,
            subnet,
            host,
            hostname,
            self._subnet_cache,
            defined=self._config.options,
            classes=classes,
        )
        if message_type is not _NAK and may_netboot(packet):
            boot_subnet = subnet
            for c in classes:  # the first class with a boot profile, over the subnet's
                if c.boot is not None:
                    boot_subnet = replace(subnet, boot=c.boot)
                    break
            choice = select_boot(
                boot_facts(packet),
                self._profiles,
                host=host,
                subnet=boot_subnet,
                server=ctx.server_id,
                domain=self._domain,
            )
            if choice.offers_boot:
                parameters.update(boot_options(choice))
                siaddr = choice.siaddr or ZERO_ADDRESS
                file = choice.file_field
        options += ordered_options(parameters, packet.parameter_request_list())
        built = tuple(options)
        if plain_key is not None:
            if len(self._plain_options) >= MAX_PLAIN_OPTIONS:
                self._plain_options.clear()
            self._plain_options[plain_key] = (subnet, built)
        if ctx.echo:
            built += ctx.echo
        return self._reply(ctx, message_type, subnet, ip, rule, built, hostname, commit=commit,
                           siaddr=siaddr, file=file, choice=choice)  # fmt: skip

    def _reply(
        self,
        ctx: _Context,
        message_type: MessageType,
        subnet: Subnet,
        ip: IPv4Address | None,
        rule: Rule,
        options: tuple[tuple[int, bytes], ...],
        hostname: str | None,
        *,
        commit: bool,
        siaddr: IPv4Address = ZERO_ADDRESS,
        file: bytes = b"",
        choice: BootChoice | None = None,
    ) -> Reply:
        packet, now = ctx.packet, ctx.now
        # The values of every reply and lease are built through their slots (ddi.values).
        reply = new_packet(
            op=BOOTREPLY,
            htype=packet.htype,
            hlen=packet.hlen,
            hops=0,
            xid=packet.xid,
            secs=0,
            flags=packet.flags,
            ciaddr=packet.ciaddr if message_type is _ACK else ZERO_ADDRESS,
            yiaddr=ip or ZERO_ADDRESS,
            siaddr=siaddr,
            giaddr=packet.giaddr,
            chaddr=packet.chaddr,
            sname=b"",
            file=file,
            options=options,
        )
        lease = None
        if commit and ip is not None:
            lease = _new_lease(
                ip=ip,
                mac=ctx.client.mac,
                client_id=ctx.client.client_id,
                hostname=hostname,
                state=_BOUND,
                start=now,
                end=now + subnet.lease_time,
                subnet=subnet.name,
                circuit_id=ctx.circuit_id,
            )
            # The view shows the lease only once it is committed; until then the address stays
            # held for this client, so no one else is offered it meanwhile.
            self._hold_offer(ctx.client, ip, subnet, now, rule)
        return _new_reply(
            packet=reply,
            to=self._destination(ctx, message_type, ip or ZERO_ADDRESS),
            rule=rule,
            commit=lease,
            max_size=reply_max_size(packet),
            boot=choice,
        )

    def _nak(self, ctx: _Context, rule: Rule) -> Reply:
        """RFC 2131 §4.3.2, table 3: yiaddr, ciaddr and siaddr zero; option 56 says why; a NAK
        to a relay sets the broadcast bit so the relay broadcasts it on the client's link."""
        packet = ctx.packet
        options: list[tuple[int, bytes]] = [
            (OptionCode.MESSAGE_TYPE, bytes((MessageType.NAK,))),
            (OptionCode.SERVER_IDENTIFIER, ctx.server_id.packed),
            (OptionCode.MESSAGE, rule.value.encode("ascii")),
            *ctx.echo,
        ]
        flags = packet.flags
        if packet.giaddr != ZERO_ADDRESS:
            flags |= BROADCAST_FLAG
        self._offers.drop(ctx.client.key)
        reply = DhcpPacket(
            op=BOOTREPLY,
            htype=packet.htype,
            hlen=packet.hlen,
            xid=packet.xid,
            flags=flags,
            giaddr=packet.giaddr,
            chaddr=packet.chaddr,
            options=tuple(options),
        )
        return Reply(
            packet=reply,
            to=self._destination(ctx, MessageType.NAK),
            rule=rule,
            max_size=reply_max_size(packet),
        )

    def _destination(
        self, ctx: _Context, message_type: MessageType, yiaddr: IPv4Address = ZERO_ADDRESS
    ) -> Destination:
        return reply_destination(
            ctx.packet,
            message_type,
            ctx.inbound.interface,
            server_port=self._config.port,
            client_port=self._config.client_port,
            relay_port=ctx.relay_port,
            yiaddr=yiaddr,
        )

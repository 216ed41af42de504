"""The DHCPv6 server's decisions (RFC 8415 §18.3, §19), sans-I/O.

``Dhcp6Engine.handle(message, inbound, now)`` reads only the index (``View6``) and returns a
``Reply6`` (with the leases the transport makes durable before sending) or a counted ``Drop6``.

Rules:

1. Relayed messages are unwrapped (at most 32 relays, RFC 8415 §7.6); the subnet is the one
   whose ``relay_links`` holds the link-address of the relay closest to the client, else whose
   ``cidr`` holds it (§13.1); a direct message is served by the subnet of its interface.
2. The client is its DUID (option 1). Its MAC is the relay's client link-layer address
   (RFC 6939) or the one a DUID-LL/LLT carries. A reservation matches by DUID, then by MAC,
   and counts only when its ``ip6`` is in the subnet.
3. Addresses: the reservation's; else the client's live binding for that IAID; else a pool
   address the client hinted at; else the free pool address ``ddi.ipam.allocator6`` finds from
   a hash of (DUID, IAID), so a SOLICIT and the REQUEST after it pick the same address without
   the server holding an offer. Prefixes (IA_PD) alike from the PD pools. Free: no live lease
   of another client (a DECLINEd address stays taken until its quarantine ends) and no host's
   reservation.
4. Lifetimes are the subnet's; T1 and T2 are 0.5 and 0.8 of the preferred lifetime (§21.4).
5. A message sent by unicast although the server never sent a Server Unicast option gets a
   REPLY with UseMulticast and nothing else (§18.4).
6. The client's name (option 39, RFC 4704) follows DHCPv4's rule: a reservation's own name,
   else the client's first label sanitised unless a reservation or static record owns it.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv6Address, IPv6Network
from typing import TYPE_CHECKING, Protocol

from ddi.dhcp.netboot import BootProfile
from ddi.dhcp6.decision import (
    CLIENT_PORT,
    SERVER_PORT,
    Decision6,
    Destination6,
    Drop6,
    DropReason6,
    Inbound6,
    Reply6,
    Rule6,
)
from ddi.dhcp6.netboot import BootChoice6, boot_facts6, boot_options6, select_boot6
from ddi.dhcp6.nets import host_network, lease_held
from ddi.dhcp6.options import (
    FQDN_O,
    FQDN_S,
    HWTYPE_ETHERNET,
    ClientFqdn,
    Dhcp6FormatError,
    Ia,
    IaAddress,
    IaPrefix,
    MessageType,
    Option,
    OptionCode,
    Status,
    all_of,
    check_duid,
    decode_client_fqdn,
    decode_ia,
    decode_linklayer,
    duid_text,
    encode_addresses,
    encode_client_fqdn,
    encode_domain_list,
    encode_ia,
    encode_iaaddr,
    encode_iaprefix,
    mac_from_duid,
    ntp_server_option,
    status_option,
)
from ddi.dhcp6.packet import Message, Relay, unwrap, wrap
from ddi.ipam.allocator6 import choose_address_int, choose_prefix, prefix_taken
from ddi.ipam.models import LeaseState
from ddi.ipam.models6 import Lease6, Lease6Kind, Subnet6
from ddi.ipam.validate import sanitize_hostname

# Enum members the hot path reads, as module globals (a class attribute lookup per use
# costs more than the rest of a comparison).
_K_NA = Lease6Kind.NA
_K_PD = Lease6Kind.PD
_M_ADVERTISE = MessageType.ADVERTISE
_M_CONFIRM = MessageType.CONFIRM
_M_DECLINE = MessageType.DECLINE
_M_INFORMATION_REQUEST = MessageType.INFORMATION_REQUEST
_M_REBIND = MessageType.REBIND
_M_RECONFIGURE = MessageType.RECONFIGURE
_M_RELAY_FORW = MessageType.RELAY_FORW
_M_RELAY_REPL = MessageType.RELAY_REPL
_M_RELEASE = MessageType.RELEASE
_M_RENEW = MessageType.RENEW
_M_REPLY = MessageType.REPLY
_M_REQUEST = MessageType.REQUEST
_M_SOLICIT = MessageType.SOLICIT
_O_CLIENTID = OptionCode.CLIENTID
_O_CLIENT_ARCH_TYPE = OptionCode.CLIENT_ARCH_TYPE
_O_CLIENT_FQDN = OptionCode.CLIENT_FQDN
_O_CLIENT_LINKLAYER_ADDR = OptionCode.CLIENT_LINKLAYER_ADDR
_O_DNS_SERVERS = OptionCode.DNS_SERVERS
_O_DOMAIN_LIST = OptionCode.DOMAIN_LIST
_O_IAADDR = OptionCode.IAADDR
_O_IAPREFIX = OptionCode.IAPREFIX
_O_IA_NA = OptionCode.IA_NA
_O_IA_PD = OptionCode.IA_PD
_O_IA_TA = OptionCode.IA_TA
_O_NTP_SERVER = OptionCode.NTP_SERVER
_O_RAPID_COMMIT = OptionCode.RAPID_COMMIT
_O_SERVERID = OptionCode.SERVERID
_O_USER_CLASS = OptionCode.USER_CLASS
_O_VENDOR_CLASS = OptionCode.VENDOR_CLASS
_S_BOUND = LeaseState.BOUND
_S_DECLINED = LeaseState.DECLINED
_S_RELEASED = LeaseState.RELEASED

if TYPE_CHECKING:
    from ddi.ipam.models import Host

MAX_IAS = 16
_IA_HEAD = struct.Struct("!III")
_IAADDR_OPTION = struct.Struct("!HH16sII")
_IAPREFIX_OPTION = struct.Struct("!HHIIB16s")
"""IA_NA/IA_PD's IAID, T1, T2 (RFC 8415 §21.4, §21.21); IAADDR (§21.6) and IAPREFIX (§21.22)
with their option headers."""
MAX_ENCODED = 1024
"""Subnets whose encoded parameter options the engine keeps (one entry per subnet value)."""
"""IAs of one kind served per message; more are answered NoAddrsAvail/NoPrefixAvail."""


class View6(Protocol):
    """What the engine reads of the IPAM index."""

    def subnets6(self) -> Sequence[Subnet6]: ...
    def host_by_duid(self, duid: str) -> Host | None: ...
    def host_by_mac(self, mac: str) -> Host | None: ...
    def host_by_ip6(self, ip: IPv6Address) -> Host | None: ...
    def lease6(self, kind: Lease6Kind, prefix: IPv6Network) -> Lease6 | None: ...
    def host_at6(self, ip: int) -> Host | None: ...
    def na_lease_at(self, ip: int) -> Lease6 | None: ...
    def leases6_of(self, kind: Lease6Kind, duid: str, iaid: int) -> Sequence[Lease6]: ...
    def name_owned(self, name: str) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Dhcp6Settings:
    server_duid: bytes
    decline_quarantine: int = 600
    domain: str | None = None
    """The site domain: a reservation's FQDN when its subnet has none."""


@dataclass(slots=True)
class _Ctx:
    message: Message
    relays: tuple[Relay, ...]
    inbound: Inbound6
    now: float
    duid: str | None
    duid_raw: bytes | None
    mac: str | None
    subnet: Subnet6 | None
    host: Host | None


_MESSAGE_TYPES = {int(t): t for t in MessageType}
"""Message types by value: a dict lookup instead of an enum call per message."""
_BOOT_OPTIONS = frozenset({_O_VENDOR_CLASS, _O_CLIENT_ARCH_TYPE, _O_USER_CLASS})
"""Options without which a message is not a netboot request (``boot_facts6``)."""
_NO_REPLY_TYPES = frozenset(
    {
        _M_ADVERTISE,
        _M_REPLY,
        _M_RECONFIGURE,
        _M_RELAY_REPL,
    }
)
_UNICAST_OK = frozenset(
    {
        _M_REQUEST,
        _M_RENEW,
        _M_RELEASE,
        _M_DECLINE,
        _M_INFORMATION_REQUEST,
    }
)


class Dhcp6Engine:
    def __init__(
        self,
        settings: Dhcp6Settings,
        view: View6,
        *,
        profiles: Mapping[str, BootProfile] | None = None,
        boot_params: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.settings = settings
        self._view = view
        self._profiles: Mapping[str, BootProfile] = profiles or {}
        self._boot_params: Mapping[str, tuple[str, ...]] = boot_params or {}
        self._encoded: dict[int, tuple[Subnet6, tuple[Option, ...]]] = {}

    def reconfigure(
        self,
        settings: Dhcp6Settings,
        *,
        profiles: Mapping[str, BootProfile] | None = None,
        boot_params: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.settings = settings
        self._profiles = profiles or {}
        self._boot_params = boot_params or {}

    # --- entry ---------------------------------------------------------------------------------

    def handle(self, received: Message | Relay, inbound: Inbound6, now: float) -> Decision6:
        """Decide on one decoded message.

        Raises:
            Dhcp6FormatError: a relay chain or an option the rules need does not parse (the
                transport counts it as malformed).
        """
        relays, message = unwrap(received)
        kind = _MESSAGE_TYPES.get(message.msg_type)
        if kind is None:
            return Drop6(reason=DropReason6.UNEXPECTED_MESSAGE)
        if kind in _NO_REPLY_TYPES or kind is _M_RELAY_FORW:
            return Drop6(reason=DropReason6.UNEXPECTED_MESSAGE)
        raw_duid = message.option(_O_CLIENTID)
        server_id = message.option(_O_SERVERID)
        duid_raw = None if raw_duid is None else check_duid(raw_duid)
        if duid_raw is None and kind is not _M_INFORMATION_REQUEST:
            return Drop6(reason=DropReason6.NO_CLIENT_ID)
        # RFC 8415 §16: which messages must, may or must not name a server.
        if kind in (_M_SOLICIT, _M_REBIND, _M_CONFIRM):
            if server_id is not None:
                return Drop6(reason=DropReason6.BAD_SERVER_ID)
        elif kind is not _M_INFORMATION_REQUEST and server_id is None:
            return Drop6(reason=DropReason6.BAD_SERVER_ID)
        if server_id is not None and server_id != self.settings.server_duid:
            return Drop6(reason=DropReason6.OTHER_SERVER)
        ctx = _Ctx(
            message=message,
            relays=relays,
            inbound=inbound,
            now=now,
            duid=None if duid_raw is None else duid_text(duid_raw),
            duid_raw=duid_raw,
            mac=_client_mac(relays, duid_raw),
            subnet=None,
            host=None,
        )
        if inbound.unicast and not relays and kind in _UNICAST_OK:
            # §18.4: no Server Unicast option was ever sent, so unicast is refused.
            options: list[Option] = [(_O_SERVERID, self.settings.server_duid)]
            if duid_raw is not None:
                options.insert(0, (_O_CLIENTID, duid_raw))
            options.append(status_option(Status.USE_MULTICAST, "use multicast"))
            return self._reply(ctx, _M_REPLY, Rule6.USE_MULTICAST, options)
        ctx.subnet = self._subnet(relays, inbound)
        if kind is _M_INFORMATION_REQUEST:
            return self._information(ctx)
        if ctx.subnet is None:
            return Drop6(reason=DropReason6.NO_SUBNET)
        ctx.host = self._host(ctx.subnet, ctx.duid, ctx.mac)
        if kind is _M_CONFIRM:
            return self._confirm(ctx)
        if ctx.subnet.known_hosts_only and ctx.host is None:
            return Drop6(reason=DropReason6.UNKNOWN_CLIENT)
        match kind:
            case MessageType.SOLICIT:
                rapid = ctx.subnet.rapid_commit and message.option(_O_RAPID_COMMIT) is not None
                return self._assign(ctx, commit=rapid, rapid=rapid)
            case MessageType.REQUEST:
                return self._assign(ctx, commit=True, rapid=False)
            case MessageType.RENEW | MessageType.REBIND:
                return self._extend(ctx, rebind=kind is _M_REBIND)
            case MessageType.RELEASE | MessageType.DECLINE:
                return self._give_back(ctx, decline=kind is _M_DECLINE)
        return Drop6(reason=DropReason6.UNEXPECTED_MESSAGE)

    # --- lookups -------------------------------------------------------------------------------

    def _subnet(self, relays: Sequence[Relay], inbound: Inbound6) -> Subnet6 | None:
        subnets = self._view.subnets6()
        if relays:
            # §19.1.1: the relay closest to the client says on which link the client is; a
            # relay with no global address there leaves it unspecified and an outer one says.
            for relay in reversed(relays):
                link = relay.link_address
                if link.is_unspecified or link.is_link_local:
                    continue
                for subnet in subnets:
                    if link in subnet.relay_links:
                        return subnet
                for subnet in subnets:
                    if link in subnet.cidr:
                        return subnet
                return None
            return None
        for subnet in subnets:
            if subnet.interface is not None and subnet.interface == inbound.interface:
                return subnet
        return None

    def _host(self, subnet: Subnet6, duid: str | None, mac: str | None) -> Host | None:
        for host in (
            None if duid is None else self._view.host_by_duid(duid),
            None if mac is None else self._view.host_by_mac(mac),
        ):
            if host is not None and host.ip6 is not None and host.ip6 in subnet.cidr:
                return host
        return None

    # --- assignment ----------------------------------------------------------------------------

    def _assign(self, ctx: _Ctx, *, commit: bool, rapid: bool) -> Decision6:
        subnet = ctx.subnet
        assert subnet is not None
        assert ctx.duid is not None
        hostname, fqdn = self._hostname(ctx)
        leases: list[Lease6] = []
        ia_options: list[Option] = []
        taken: set[IPv6Network] = set()
        for n, ia in enumerate(self._ias(ctx.message, _O_IA_NA)):
            prefix = None if n >= MAX_IAS else self._pick_address(ctx, ia, n, taken)
            if prefix is None:
                ia_options.append(_empty_ia(ia, Status.NO_ADDRS_AVAIL, "no addresses available"))
                continue
            taken.add(prefix)
            if commit:
                leases.append(self._lease(ctx, _K_NA, prefix, ia.iaid, hostname))
            ia_options.append(_bound_ia(ia, _K_NA, prefix, subnet))
        for n, ia in enumerate(self._ias(ctx.message, _O_IA_PD)):
            prefix = None if n >= MAX_IAS else self._pick_prefix(ctx, ia, taken)
            if prefix is None:
                ia_options.append(_empty_ia(ia, Status.NO_PREFIX_AVAIL, "no prefixes available"))
                continue
            taken.add(prefix)
            if commit:
                leases.append(self._lease(ctx, _K_PD, prefix, ia.iaid, None))
            ia_options.append(_bound_ia(ia, _K_PD, prefix, subnet))
        options = [*self._ids(ctx), *ia_options]
        if rapid:
            options.append((_O_RAPID_COMMIT, b""))
        if fqdn is not None:
            options.append((_O_CLIENT_FQDN, fqdn))
        options.extend(self._parameters(subnet))
        boot = self._boot(ctx, options)
        if commit:
            rule = Rule6.RAPID_COMMIT if rapid else Rule6.REQUEST
            return self._reply(ctx, _M_REPLY, rule, options, leases, boot)
        return self._reply(ctx, _M_ADVERTISE, Rule6.ADVERTISE, options, (), boot)

    def _ias(self, message: Message, code: int) -> list[Ia]:
        return [decode_ia(code, v) for v in all_of(message.options, code)]

    def _lease(
        self, ctx: _Ctx, kind: Lease6Kind, prefix: IPv6Network, iaid: int, hostname: str | None
    ) -> Lease6:
        subnet = ctx.subnet
        assert subnet is not None
        assert ctx.duid is not None
        return Lease6(
            kind=kind,
            prefix=prefix,
            duid=ctx.duid,
            iaid=iaid,
            mac=ctx.mac,
            hostname=hostname,
            state=_S_BOUND,
            start=ctx.now,
            end=ctx.now + subnet.valid_lifetime,
            preferred_end=ctx.now + subnet.preferred_lifetime,
            subnet=subnet.name,
        )

    def _binding(self, ctx: _Ctx, kind: Lease6Kind, iaid: int) -> Lease6 | None:
        assert ctx.duid is not None
        assert ctx.subnet is not None
        for lease in self._view.leases6_of(kind, ctx.duid, iaid):
            if lease.subnet == ctx.subnet.name and lease.state is _S_BOUND and lease.end > ctx.now:
                return lease
        return None

    def _pick_address(
        self, ctx: _Ctx, ia: Ia, n: int, taken: set[IPv6Network]
    ) -> IPv6Network | None:
        subnet = ctx.subnet
        assert subnet is not None
        assert ctx.duid is not None
        duid, now = ctx.duid, ctx.now
        if n == 0 and ctx.host is not None and ctx.host.ip6 is not None:
            reserved = host_network(ctx.host.ip6)
            lease = self._view.lease6(_K_NA, reserved)
            if lease is None or lease.end <= now or lease.duid == duid:
                return reserved
        bound = self._binding(ctx, _K_NA, ia.iaid)
        if bound is not None and bound.prefix not in taken:
            return bound.prefix

        # Candidates as integers, probed in the index's integer maps: an IPv6Address and a /128
        # per candidate (and their hashes, which are Python code) cost more than the rest.
        host_at, lease_at = self._view.host_at6, self._view.na_lease_at
        taken_at = {int(p.network_address) for p in taken if p.prefixlen == 128}

        def used(ip: int) -> bool:
            # The rule of allocator6.address_taken.
            if ip in taken_at or host_at(ip) is not None:
                return True
            return lease_held(lease_at(ip), duid, now)

        for hint in _hinted_addresses(ia):
            # As integers, and the /128 made from one (``ddi.dhcp6.nets``): from the address
            # itself it is built through its text, 9 µs against 1 (a REQUEST's hint, every time).
            ip = int(hint)
            if any(int(p.start) <= ip <= int(p.end) for p in subnet.pools) and not used(ip):
                return host_network(hint)
        found = choose_address_int(subnet.pools, duid, ia.iaid, used)
        return None if found is None else IPv6Network(found)

    def _pick_prefix(self, ctx: _Ctx, ia: Ia, taken: set[IPv6Network]) -> IPv6Network | None:
        subnet = ctx.subnet
        assert subnet is not None
        assert ctx.duid is not None
        duid, now = ctx.duid, ctx.now
        bound = self._binding(ctx, _K_PD, ia.iaid)
        if bound is not None and bound.prefix not in taken:
            return bound.prefix

        def used(prefix: IPv6Network) -> bool:
            return prefix in taken or prefix_taken(self._view, prefix, duid, now)

        return choose_prefix(subnet.pd_pools, duid, ia.iaid, used)

    # --- renew, rebind, release, decline, confirm ----------------------------------------------

    def _extend(self, ctx: _Ctx, *, rebind: bool) -> Decision6:
        subnet = ctx.subnet
        assert subnet is not None
        hostname, fqdn = self._hostname(ctx)
        leases: list[Lease6] = []
        ia_options: list[Option] = []
        for code, kind in ((_O_IA_NA, _K_NA), (_O_IA_PD, _K_PD)):
            for ia in self._ias(ctx.message, code)[:MAX_IAS]:
                bound = self._binding(ctx, kind, ia.iaid)
                if bound is None:
                    # §18.3.4: NoBinding in the IA. §18.3.5: a REBIND for addresses not on
                    # this link gets them back with lifetimes 0; others get no answer.
                    if rebind:
                        stale = _off_link(ia, subnet)
                        if stale is None:
                            return Drop6(reason=DropReason6.NO_BINDING)
                        ia_options.append(stale)
                    else:
                        ia_options.append(_empty_ia(ia, Status.NO_BINDING, "no binding"))
                    continue
                name = hostname if kind is _K_NA else None
                lease = self._lease(ctx, kind, bound.prefix, ia.iaid, name or bound.hostname)
                leases.append(lease)
                ia_options.append(_bound_ia(ia, kind, lease.prefix, subnet, listed=True))
        options = [*self._ids(ctx), *ia_options]
        if fqdn is not None:
            options.append((_O_CLIENT_FQDN, fqdn))
        options.extend(self._parameters(subnet))
        rule = Rule6.REBIND if rebind else Rule6.RENEW
        return self._reply(ctx, _M_REPLY, rule, options, leases)

    def _give_back(self, ctx: _Ctx, *, decline: bool) -> Decision6:
        leases: list[Lease6] = []
        ia_options: list[Option] = []
        for code, kind in ((_O_IA_NA, _K_NA), (_O_IA_PD, _K_PD)):
            for ia in self._ias(ctx.message, code)[:MAX_IAS]:
                listed = [host_network(a.address) for a in ia.addresses()]
                listed += [p.prefix for p in ia.prefixes()]
                found = False
                for prefix in listed:
                    lease = self._view.lease6(kind, prefix)
                    if (
                        lease is None
                        or lease.duid != ctx.duid
                        or lease.iaid != ia.iaid
                        or lease.state is not _S_BOUND
                    ):
                        continue
                    found = True
                    if decline:
                        # RFC 8415 §18.3.8: the address is in use elsewhere; keep it out of
                        # the pool for the quarantine.
                        end = ctx.now + self.settings.decline_quarantine
                        state = _S_DECLINED
                    else:
                        end, state = ctx.now, _S_RELEASED
                    leases.append(
                        replace(lease, state=state, end=end, preferred_end=min(end, ctx.now))
                    )
                if not found:
                    ia_options.append(_empty_ia(ia, Status.NO_BINDING, "no binding"))
        done = "declined" if decline else "released"
        options = [*self._ids(ctx), *ia_options, status_option(Status.SUCCESS, done)]
        rule = Rule6.DECLINE if decline else Rule6.RELEASE
        return self._reply(ctx, _M_REPLY, rule, options, leases)

    def _confirm(self, ctx: _Ctx) -> Decision6:
        subnet = ctx.subnet
        assert subnet is not None
        addresses = [a.address for ia in self._ias(ctx.message, _O_IA_NA) for a in ia.addresses()]
        if not addresses:
            return Drop6(reason=DropReason6.NOTHING_TO_CONFIRM)  # §18.3.3
        on_link = all(a in subnet.cidr for a in addresses)
        status = (
            status_option(Status.SUCCESS, "on link")
            if on_link
            else status_option(Status.NOT_ON_LINK, "not on link")
        )
        return self._reply(ctx, _M_REPLY, Rule6.CONFIRM, [*self._ids(ctx), status])

    def _information(self, ctx: _Ctx) -> Decision6:
        if any(c in (_O_IA_NA, _O_IA_PD, _O_IA_TA) for c, _ in ctx.message.options):
            return Drop6(reason=DropReason6.BAD_OPTION)  # §16.12
        options = self._ids(ctx)
        if ctx.subnet is not None:
            options.extend(self._parameters(ctx.subnet))
        boot = self._boot(ctx, options)
        return self._reply(ctx, _M_REPLY, Rule6.INFORMATION, options, (), boot)

    # --- options -------------------------------------------------------------------------------

    def _ids(self, ctx: _Ctx) -> list[Option]:
        options: list[Option] = []
        if ctx.duid_raw is not None:
            options.append((_O_CLIENTID, ctx.duid_raw))
        options.append((_O_SERVERID, self.settings.server_duid))
        return options

    def _parameters(self, subnet: Subnet6) -> list[Option]:
        # Encoded once per subnet value (a config reload brings a new one): names go through
        # IDNA and label checks, which every reply would otherwise repeat.
        cached = self._encoded.get(id(subnet))
        if cached is not None and cached[0] is subnet:
            return list(cached[1])
        options = _subnet_parameters(subnet)
        if len(self._encoded) >= MAX_ENCODED:
            self._encoded.clear()
        self._encoded[id(subnet)] = (subnet, tuple(options))
        return options

    def _hostname(self, ctx: _Ctx) -> tuple[str | None, bytes | None]:
        """The lease's name and the option 39 to send back (None when the client sent none)."""
        raw = ctx.message.option(_O_CLIENT_FQDN)
        client = None
        if raw is not None:
            try:
                client = decode_client_fqdn(raw)
            except Dhcp6FormatError:
                client = None
        if ctx.host is not None:
            name: str | None = ctx.host.hostname
        elif client is not None and client.name:
            name = sanitize_hostname(client.name)
            if name is not None and self._view.name_owned(name):
                name = None
        else:
            name = None
        if client is None:
            return name, None
        # RFC 4704 §5.2: the server updates the AAAA (S); O says it overrode the client.
        domain = ctx.subnet.domain if ctx.subnet is not None else None
        domain = domain or self.settings.domain
        flags = FQDN_S | (0 if client.flags & FQDN_S else FQDN_O)
        if name is None:
            return None, encode_client_fqdn(ClientFqdn(flags=0, name=""))
        fqdn = f"{name}.{domain}" if domain else name
        try:
            return name, encode_client_fqdn(ClientFqdn(flags=flags, name=fqdn, qualified=True))
        except Dhcp6FormatError:
            return name, None

    def _boot(self, ctx: _Ctx, options: list[Option]) -> BootChoice6 | None:
        boot_options = _BOOT_OPTIONS
        if not any(code in boot_options for code, _ in ctx.message.options):
            return None
        facts = boot_facts6(ctx.mac, ctx.message.options)
        if not facts.netboots:
            return None
        choice = select_boot6(
            facts,
            self._profiles,
            host=ctx.host,
            subnet=ctx.subnet,
            server=ctx.inbound.local,
            domain=self.settings.domain,
            params=self._boot_params,
        )
        if choice.url is not None and "{server}" in choice.url:
            # No global address on the interface to name in the URL: no boot options, and
            # the transport logs the problem once.
            return replace(
                choice,
                url=None,
                problem=f"no IPv6 address on {ctx.inbound.interface} for {{server}}",
            )
        options.extend(boot_options6(choice))
        return choice

    def _reply(
        self,
        ctx: _Ctx,
        reply_type: MessageType,
        rule: Rule6,
        options: list[Option],
        leases: Sequence[Lease6] = (),
        boot: BootChoice6 | None = None,
    ) -> Reply6:
        reply = Message(
            msg_type=reply_type,
            transaction_id=ctx.message.transaction_id,
            options=tuple(options),
        )
        if ctx.relays:
            # §19.3: to the relay the RELAY-FORW came from, at the server port.
            to = Destination6(ip=ctx.inbound.src, port=SERVER_PORT, interface=None)
            out: Message | Relay = wrap(reply, ctx.relays)
        else:
            to = Destination6(
                ip=ctx.inbound.src, port=ctx.inbound.src_port or CLIENT_PORT,
                interface=ctx.inbound.interface,
            )  # fmt: skip
            out = reply
        return Reply6(
            message=out, reply_type=reply_type, to=to, rule=rule, commit=tuple(leases), boot=boot
        )


# --- helpers -----------------------------------------------------------------------------------


def _subnet_parameters(subnet: Subnet6) -> list[Option]:
    options: list[Option] = []
    if subnet.dns_servers:
        options.append((_O_DNS_SERVERS, encode_addresses(subnet.dns_servers)))
    search = subnet.search or ((subnet.domain,) if subnet.domain else ())
    if search:
        # Validated in the config; a bad name is left out rather than sent.
        with contextlib.suppress(Dhcp6FormatError):
            options.append((_O_DOMAIN_LIST, encode_domain_list(search)))
    if subnet.ntp_servers:
        options.append((_O_NTP_SERVER, ntp_server_option(subnet.ntp_servers)))
    return options


def _client_mac(relays: Sequence[Relay], duid: bytes | None) -> str | None:
    """RFC 6939's option from the relay closest to the client, else a DUID-LL/LLT's address."""
    if relays:
        raw = relays[-1].option(_O_CLIENT_LINKLAYER_ADDR)
        if raw is not None:
            try:
                hwtype, address = decode_linklayer(raw)
            except Dhcp6FormatError:
                hwtype, address = 0, b""
            if hwtype == HWTYPE_ETHERNET and len(address) == 6:
                return address.hex(":")
    return None if duid is None else mac_from_duid(duid)


def _hinted_addresses(ia: Ia) -> list[IPv6Address]:
    try:
        return [a.address for a in ia.addresses()][:4]
    except Dhcp6FormatError:
        return []


def _timers(subnet: Subnet6) -> tuple[int, int]:
    # RFC 8415 §21.4: T1 0.5 and T2 0.8 of the shortest preferred lifetime.
    preferred = subnet.preferred_lifetime
    return preferred // 2, preferred * 4 // 5


def _bound_ia(
    ia: Ia, kind: Lease6Kind, prefix: IPv6Network, subnet: Subnet6, *, listed: bool = False
) -> Option:
    """The IA with its address or prefix at the subnet's lifetimes, packed straight from the
    values (no IaAddress/IaPrefix/Ia objects on the hot path)."""
    t1, t2 = _timers(subnet)
    preferred, valid = subnet.preferred_lifetime, subnet.valid_lifetime
    if kind is _K_NA:
        address = prefix.network_address
        inner = _IAADDR_OPTION.pack(_O_IAADDR, 24, address.packed, preferred, valid)
        if listed:
            # §18.3.4: addresses the client listed that it no longer holds: lifetimes 0.
            for old in _hinted_addresses(ia):
                if old != address:
                    inner += _IAADDR_OPTION.pack(_O_IAADDR, 24, old.packed, 0, 0)
    else:
        inner = _IAPREFIX_OPTION.pack(
            _O_IAPREFIX,
            25,
            preferred,
            valid,
            prefix.prefixlen,
            prefix.network_address.packed,
        )
    return ia.code, _IA_HEAD.pack(ia.iaid, t1, t2) + inner


def _empty_ia(ia: Ia, status: Status, message: str) -> Option:
    return encode_ia(Ia(code=ia.code, iaid=ia.iaid, options=(status_option(status, message),)))


def _off_link(ia: Ia, subnet: Subnet6) -> Option | None:
    """For a REBIND without binding: the IA with every address not on the link at lifetime 0,
    or None when every address is on the link (then the server does not answer)."""
    addresses = _hinted_addresses(ia)
    prefixes: list[IaPrefix] = []
    try:
        prefixes = ia.prefixes()
    except Dhcp6FormatError:
        prefixes = []
    off = [a for a in addresses if a not in subnet.cidr]
    off_prefixes = [
        p for p in prefixes if not any(p.prefix.subnet_of(pool.prefix) for pool in subnet.pd_pools)
    ]
    if not off and not off_prefixes:
        return None
    inner: list[Option] = [encode_iaaddr(IaAddress(address=a, preferred=0, valid=0)) for a in off]
    inner += [
        encode_iaprefix(IaPrefix(prefix=p.prefix, preferred=0, valid=0)) for p in off_prefixes
    ]
    return encode_ia(Ia(code=ia.code, iaid=ia.iaid, options=tuple(inner)))

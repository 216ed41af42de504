"""dnsmasq's files: its configuration (``dhcp-host=``, ``host-record=``, ``cname=``,
``mx-host=``, ``srv-host=``, ``txt-record=``, and the files it names: ``conf-file``,
``conf-dir``, ``dhcp-hostsfile``, ``addn-hosts``), a dhcp-hostsfile, an /etc/hosts-style file
and its lease file (``dhcp-leasefile``).

The ``dhcp-host`` syntax is dnsmasq(8)'s: ``[hwaddr][,id:client_id|*][,set:tag][,tag:tag]
[,ipaddr][,hostname][,lease_time][,ignore]``, in any order; a host with no name gets one made
from its address (``ip-198-18-0-10``), since every ddi reservation is named.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address

from ddi.migrate.items import HostItem, Include, LeaseItem, Parsed, Problem, RecordItem
from ddi.migrate.limits import lines, number

__all__ = ["parse_conf", "parse_hosts", "parse_hostsfile", "parse_leases", "unnamed_host"]

_MAC = re.compile(r"^([0-9A-Fa-f*]{1,2}[:-]){5}[0-9A-Fa-f*]{1,2}$")
_HW_TYPED = re.compile(r"^\d{1,3}-(([0-9A-Fa-f]{1,2}[:-]){5}[0-9A-Fa-f]{1,2})$")
_LEASE_TIME = re.compile(r"^(\d{1,9})([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NAME = re.compile(r"^[A-Za-z0-9_*]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_.])?$")
# Options whose value is another file: (form, what the file holds).
_FILE_OPTIONS = {"conf-file": "conf", "dhcp-hostsfile": "hostsfile", "addn-hosts": "hosts"}


def unnamed_host(ip: str) -> str:
    """The hostname given to a reservation its source left unnamed."""
    return "ip-" + ip.replace(".", "-")


def _ipv4(text: str) -> str | None:
    try:
        return str(IPv4Address(text))
    except ValueError:
        return None


def _ipv6(text: str) -> bool:
    try:
        IPv6Address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _host(source: str, value: str, parsed: Parsed) -> None:
    """One ``dhcp-host`` value (from the config or a dhcp-hostsfile line)."""
    macs: list[str] = []
    client_id: str | None = None
    ip: str | None = None
    hostname: str | None = None
    lease_time: int | None = None
    for field in (f.strip() for f in value.split(",")):
        lowered = field.lower()
        if not field:
            continue
        if lowered == "ignore":
            parsed.skipped.append(Problem(source=source, why="'ignore' host: nothing to reserve"))
            return
        if lowered.startswith(("set:", "tag:", "net:")):
            parsed.skipped.append(Problem(source=source, why=f"tag {field!r} not carried"))
            continue
        if lowered.startswith("id:"):
            if field[3:] != "*":
                client_id = field[3:]
            continue
        if _MAC.match(field) or (typed := _HW_TYPED.match(field)):
            mac = field if _MAC.match(field) else typed.group(1)  # type: ignore[union-attr]
            if "*" in mac:
                parsed.refused.append(
                    Problem(source=source, why=f"wildcard MAC {mac}: give each client's MAC")
                )
                return
            macs.append(mac)
            continue
        if (address := _ipv4(field)) is not None:
            ip = address
            continue
        if field.startswith("[") or _ipv6(field):
            parsed.skipped.append(Problem(source=source, why=f"IPv6 address {field} not carried"))
            continue
        if lowered == "infinite" or (time := _LEASE_TIME.match(lowered)) is not None:
            if lowered == "infinite":
                parsed.skipped.append(
                    Problem(source=source, why="infinite lease time: the subnet's is used")
                )
            else:
                lease_time = int(time.group(1)) * _UNITS[time.group(2)]  # type: ignore[union-attr]
            continue
        if _NAME.match(field):
            hostname = field
            continue
        parsed.refused.append(Problem(source=source, why=f"cannot read {field!r}"))
        return
    if not macs and client_id is None:
        parsed.refused.append(Problem(source=source, why="no MAC and no client-id"))
        return
    if ip is None:
        parsed.skipped.append(
            Problem(source=source, why="no IPv4 address: a name or options only, not reserved")
        )
        return
    if len(macs) > 1:
        parsed.skipped.append(
            Problem(source=source, why=f"{len(macs)} MACs: the first, {macs[0]}, is reserved")
        )
    parsed.hosts.append(
        HostItem(
            source=source,
            ip=ip,
            hostname=hostname or unnamed_host(ip),
            mac=macs[0] if macs else None,
            client_id=client_id,
            lease_time=lease_time,
        )
    )


def _records(source: str, option: str, value: str, parsed: Parsed) -> None:
    fields = [f.strip() for f in value.split(",")]

    def bad(why: str) -> None:
        parsed.refused.append(Problem(source=source, why=f"{option}: {why}"))

    if option == "host-record":
        names = [f for f in fields if _ipv4(f) is None and not _ipv6(f) and not f.isdigit()]
        addresses = [f for f in fields if f not in names and not f.isdigit()]
        if not names or not addresses:
            bad("needs a name and an address")
            return
        for name in names:
            for address in addresses:
                rtype = "A" if _ipv4(address) else "AAAA"
                parsed.records.append(
                    RecordItem(source=source, name=_dotted(name), rtype=rtype, value=address)
                )
    elif option == "cname":
        if len(fields) < 2:
            bad("needs an alias and a target")
            return
        target = fields[-1] if not fields[-1].isdigit() else fields[-2]
        for alias in fields[: fields.index(target)]:
            parsed.records.append(
                RecordItem(source=source, name=_dotted(alias), rtype="CNAME",
                           value=_dotted(target))
            )  # fmt: skip
    elif option == "mx-host":
        if len(fields) < 2:
            bad("needs a name and a host (mx-host=<name>,<host>[,<pref>])")
            return
        pref = fields[2] if len(fields) > 2 else "1"
        parsed.records.append(
            RecordItem(source=source, name=_dotted(fields[0]), rtype="MX",
                       value=f"{pref} {_dotted(fields[1])}")
        )  # fmt: skip
    elif option == "srv-host":
        if len(fields) < 3:
            bad("needs a name, a target and a port")
            return
        port, priority, weight = [*fields[2:5], "0", "0"][:3]
        parsed.records.append(
            RecordItem(source=source, name=_dotted(fields[0]), rtype="SRV",
                       value=f"{priority} {weight} {port} {_dotted(fields[1])}")
        )  # fmt: skip
    elif option == "txt-record":
        if len(fields) < 2:
            bad("needs a name and text")
            return
        text = value.split(",", 1)[1].strip()
        for part in re.findall(r'"((?:[^"\\]|\\.)*)"', text) or [text]:
            value = re.sub(r"\\(.)", r"\1", part)  # dnsmasq reads C escapes in quotes
            parsed.records.append(
                RecordItem(source=source, name=_dotted(fields[0]), rtype="TXT", value=value)
            )


def _dotted(name: str) -> str:
    """dnsmasq names are absolute when they hold a dot (``web1.site.example``); a bare label
    is relative to the site domain, as ddi's own names are."""
    name = name.strip()
    return name if "." not in name or name.endswith(".") else name + "."


def parse_conf(text: str, name: str) -> Parsed:
    """A dnsmasq configuration file (``dnsmasq.conf`` or one in a conf-dir)."""
    parsed = Parsed()
    for source, raw in lines(text, name, parsed):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        option, _, value = line.partition("=")
        option, value = option.strip(), value.strip()
        if option == "dhcp-host":
            _host(source, value, parsed)
        elif option in ("host-record", "cname", "mx-host", "srv-host", "txt-record"):
            _records(source, option, value, parsed)
        elif option in _FILE_OPTIONS:
            parsed.includes.append(Include(source=source, path=value, form=_FILE_OPTIONS[option]))
        elif option == "conf-dir":
            path, *filters = [f.strip() for f in value.split(",")]
            wanted = tuple(f[1:] for f in filters if f.startswith("*"))
            excluded = tuple(f for f in filters if not f.startswith("*"))
            parsed.includes.append(
                Include(source=source, path=path, form="dir", suffixes=wanted, excluded=excluded)
            )
    return parsed


def parse_hostsfile(text: str, name: str) -> Parsed:
    """A ``dhcp-hostsfile``: one ``dhcp-host`` value a line, without ``dhcp-host=``."""
    parsed = Parsed()
    for source, raw in lines(text, name, parsed):
        line = raw.strip()
        if line and not line.startswith("#"):
            _host(source, line, parsed)
    return parsed


def parse_hosts(text: str, name: str) -> Parsed:
    """An /etc/hosts-style file (``addn-hosts``): ``address name [alias...]``; each name gets
    an A (or AAAA) record. Loopback lines are skipped."""
    parsed = Parsed()
    for source, raw in lines(text, name, parsed):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        address, *names = line.split()
        if _ipv4(address) is not None:
            rtype = "A"
        elif _ipv6(address):
            rtype = "AAAA"
        else:
            parsed.refused.append(Problem(source=source, why=f"not an address: {address!r}"))
            continue
        if not names:
            parsed.refused.append(Problem(source=source, why=f"{address} has no name"))
            continue
        if address.startswith("127.") or address in ("::1", "fe00::0", "ff00::0", "ff02::1",
                                                       "ff02::2", "ff02::3"):  # fmt: skip
            parsed.skipped.append(Problem(source=source, why=f"loopback/multicast {address}"))
            continue
        for host_name in names:
            parsed.records.append(
                RecordItem(source=source, name=_dotted(host_name), rtype=rtype, value=address)
            )
    return parsed


def parse_leases(text: str, name: str) -> Parsed:
    """dnsmasq's lease file: ``expiry mac ip hostname client-id`` a line (expiry in Unix
    seconds, 0 for an infinite lease; ``*`` for no hostname or no client-id). A DHCPv6 line
    (after ``duid``) is skipped. The file holds no start: a lease is taken to have started
    when it was last renewed, which dnsmasq does not record, so ``start`` is its expiry less
    nothing (the importer sets it to the time of the import)."""
    parsed = Parsed()
    v6 = False
    for source, raw in lines(text, name, parsed):
        fields = raw.split()
        if not fields:
            continue
        if fields[0] == "duid":
            v6 = True
            continue
        if v6:
            parsed.skipped.append(Problem(source=source, why="DHCPv6 lease not carried"))
            continue
        if len(fields) != 5:
            parsed.refused.append(
                Problem(source=source, why="expected 'expiry mac ip hostname client-id'")
            )
            continue
        expiry = number(fields[0])
        ip = _ipv4(fields[2])
        if expiry is None or ip is None:
            parsed.refused.append(Problem(source=source, why="bad expiry time or address"))
            continue
        mac = fields[1]
        typed = _HW_TYPED.match(mac)
        if typed is not None:
            mac = typed.group(1)
        if expiry == 0:
            parsed.skipped.append(
                Problem(source=source, why=f"{ip}: infinite lease; reserve it instead")
            )
            continue
        parsed.leases.append(
            LeaseItem(
                source=source,
                ip=ip,
                mac=mac,
                start=0.0,
                end=float(expiry),
                hostname=None if fields[3] == "*" else fields[3],
                client_id=None if fields[4] == "*" else fields[4],
            )
        )
    return parsed

"""``ddi import FORMAT FILE...``: read another server's files and move their reservations,
leases and records into ddi with one bulk request (``POST /v1/import``), one transaction.

The files are read here, bounded (``ddi.migrate.limits``), parsed by ``ddi.migrate`` (which
file of a format each one is, is found from its text), and dnsmasq's includes are followed.
Nothing is written when anything is refused; ``--dry-run`` shows what would be added, changed,
skipped and refused, and why, and writes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ddi.cli.client import EXIT_REFUSED, CliError, Refused, api, write_body
from ddi.cli.output import json_option, print_json
from ddi.migrate import dnsmasq
from ddi.migrate.detect import FORMS, parser_for
from ddi.migrate.items import Include, Parsed, Problem
from ddi.migrate.limits import MAX_FILE_BYTES, MAX_FILES, MAX_ITEMS

__all__ = ["import_", "read_files"]

_DIR_SKIPPED = ("~", ".bak", ".dpkg-old", ".dpkg-new", ".dpkg-dist", ".swp")


class ImportRefused(CliError):
    exit_code = EXIT_REFUSED


def _read(path: Path, parsed: Parsed, source: str) -> str | None:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            why = f"{size} bytes, more than {MAX_FILE_BYTES}"
            parsed.refused.append(Problem(source=str(path), why=why))
            return None
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        parsed.refused.append(Problem(source=source, why=f"cannot read {path}: {exc.strerror}"))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        parsed.refused.append(Problem(source=str(path), why=f"not UTF-8 text (byte {exc.start})"))
        return None


def _directory(folder: Path, include: Include, parsed: Parsed) -> list[Path]:
    """A conf-dir's files as dnsmasq reads them: sorted, no hidden or backup files."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        why = f"cannot list {include.path}: {exc.strerror}"
        parsed.refused.append(Problem(source=include.source, why=why))
        return []
    chosen = []
    for entry in entries:
        name = entry.name
        if name.startswith((".", "#")) or name.endswith(_DIR_SKIPPED):
            continue
        if include.suffixes and not name.endswith(include.suffixes):
            continue
        if include.excluded and name.endswith(include.excluded):
            continue
        if entry.is_file():
            chosen.append(entry)
    return chosen


def read_files(
    form: str, paths: Sequence[Path], *, origin: str | None = None, progress: Any = None
) -> tuple[Parsed, list[str]]:
    """Parse ``paths`` as files of ``form``, following dnsmasq's includes (a relative path is
    taken from the including file's folder).

    Returns:
        What was found, and one line per file read saying what it was taken for.
    """
    parsed = Parsed()
    notes: list[str] = []
    queue: list[tuple[Path, str | None, str]] = [(p, None, "command line") for p in paths]
    seen: set[Path] = set()
    forced = {"conf": dnsmasq.parse_conf, "hostsfile": dnsmasq.parse_hostsfile,
              "hosts": dnsmasq.parse_hosts}  # fmt: skip
    while queue:
        path, as_form, source = queue.pop(0)
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        if len(seen) > MAX_FILES:
            parsed.refused.append(Problem(source=source, why=f"more than {MAX_FILES} files"))
            break
        text = _read(path, parsed, source)
        if progress is not None:
            progress.update(1)
        if text is None:
            continue
        if as_form is None:
            what, parser = parser_for(form, text, origin=origin)
        else:
            what, parser = as_form, forced[as_form]
        found = parser(text, str(path))
        notes.append(f"{path}: {what} ({form}), {found.count()} items")
        parsed.extend(found)
        for include in found.includes:
            if include.form == "dir":
                files = _directory(path.parent / include.path, include, parsed)
                queue += [(p, "conf", include.source) for p in files]
            else:
                queue.append((path.parent / include.path, include.form, include.source))
        if parsed.count() > MAX_ITEMS:
            parsed.refused.append(Problem(source=str(path), why=f"more than {MAX_ITEMS} items"))
            break
    parsed.includes.clear()
    return parsed, notes


@contextmanager
def _progress(length: int, label: str) -> Iterator[Any]:
    """A progress bar on a terminal; nothing when the output goes to a file or a pipe."""
    if not sys.stdout.isatty():
        yield None
        return
    with click.progressbar(length=length, label=label) as bar:
        yield bar


def _lines(title: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
    if not outcomes:
        return
    click.echo(f"{title} ({len(outcomes)}):")
    for o in outcomes:
        item = "" if o["kind"] == "file" else f"{o['kind']} {o['key']}: "
        click.echo(f"  {o['source']}: {item}{o['what']}")


def _problems(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    return [{"source": p.source, "kind": "file", "key": "-", "what": p.why} for p in problems]


def report(result: Mapping[str, Any], *, dry_run: bool) -> None:
    """What the import did (or would do), section by section."""
    would = "would be " if dry_run else ""
    _lines(f"{would}added", result.get("added", []))
    _lines(f"{would}changed", result.get("changed", []))
    _lines("skipped", result.get("skipped", []))
    _lines("refused", result.get("refused", []))
    counts = ", ".join(
        f"{len(result.get(name, []))} {name}"
        for name in ("added", "changed", "unchanged", "skipped", "refused")
    )
    if dry_run:
        click.echo(f"dry run: {counts}; nothing written")
    elif result.get("applied"):
        click.echo(f"imported: {counts}")
    else:
        click.echo(f"nothing written: {counts}")


@click.command("import")
@click.argument("form", metavar="FORMAT", type=click.Choice(FORMS))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--origin", metavar="ZONE", help="zone: the zone's name when the file has no $ORIGIN."
)
@click.option("--reason", metavar="TEXT", help="Why; recorded in the change log.")
@click.option("--dry-run", is_flag=True, help="Show what would be added, changed and refused.")
@json_option
def import_(
    form: str,
    files: tuple[Path, ...],
    origin: str | None,
    reason: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Import reservations, leases and DNS records from another server's files, all in one
    transaction: everything is written, or nothing.

    \b
    FORMAT and the files it reads (which one each file is, is found from its text):
      dnsmasq    dnsmasq.conf (dhcp-host=, host-record=, cname=, ..., conf-dir, conf-file,
                 dhcp-hostsfile, addn-hosts followed), a dhcp-hostsfile, an /etc/hosts-style
                 file, the lease file (dnsmasq.leases)
      kea        kea-dhcp4.conf (global and per-subnet reservations), kea-leases4.csv
      isc-dhcpd  dhcpd.conf (host blocks), dhcpd.leases
      zone       a BIND zone file (A, AAAA, CNAME, MX, SRV, TXT)
      csv        ip,hostname,mac,client_id,lease_time with a header line

    Leases keep their address and their end, so each client renews its address at ddi.
    """
    with _progress(len(files), "reading") as bar:
        parsed, notes = read_files(form, files, origin=origin, progress=bar)
    if not as_json:
        for note in notes:
            click.echo(note)
    local = {"refused": _problems(parsed.refused), "skipped": _problems(parsed.skipped)}
    result: dict[str, Any]
    if parsed.refused and not dry_run:
        result = {"added": [], "changed": [], "unchanged": [], **local, "applied": False}
        if as_json:
            print_json(result)
        else:
            report(result, dry_run=False)
        raise ImportRefused(f"refused: {len(parsed.refused)} problems in the files; nothing sent")
    body = write_body(reason, dry_run, **parsed.to_wire())
    client = api()
    client.timeout = max(client.timeout, 300.0)
    try:
        result = client.post("/v1/import", body)
    except Refused as exc:
        if "refused" not in exc.body:
            raise
        result = exc.body
    for name in ("refused", "skipped"):
        result[name] = local[name] + result.get(name, [])
    if as_json:
        print_json(result)
    else:
        report(result, dry_run=dry_run)
    if result["refused"] and not dry_run:
        raise ImportRefused(f"refused: {len(result['refused'])} items; nothing written")

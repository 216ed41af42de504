"""NSD as a real secondary of ddi's site zone: its config (TSIG-signed transfers from the
primary, NOTIFY accepted from it), written to a folder of its own."""

from __future__ import annotations

from pathlib import Path

NSD_CONF = """\
server:
  ip-address: 127.0.0.1@{port}
  port: {port}
  zonesdir: "{dir}"
  database: ""
  pidfile: "{dir}/nsd.pid"
  xfrdfile: "{dir}/xfrd.state"
  zonelistfile: "{dir}/zone.list"
  xfrdir: "{dir}"
  username: ""
  chroot: ""
  verbosity: 2
  server-count: 1
  tcp-count: 16
  xfrd-reload-timeout: 0
remote-control:
  control-enable: no
key:
  name: {key}
  algorithm: hmac-sha256
  secret: "{secret}"
"""
ZONE = """zone:
  name: {zone}
  zonefile: "{zone}.zone"
  request-xfr: 127.0.0.1@{primary} {key}
  allow-notify: 127.0.0.1 {key}
"""


def write_secondary_conf(
    folder: Path,
    *,
    port: int,
    primary: int,
    key: str,
    secret: str,
    zones: tuple[str, ...] = ("site.example",),
) -> Path:
    """``folder/nsd.conf`` for an NSD on 127.0.0.1:``port`` that transfers ``zones`` (the
    site zone by default; reverse zones too when named) from the primary on
    127.0.0.1:``primary`` with TSIG key ``key``; the folder is created."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nsd.conf"
    text = NSD_CONF.format(port=port, dir=folder, key=key, secret=secret, primary=primary)
    text += "".join(ZONE.format(zone=z, primary=primary, key=key) for z in zones)
    conf.write_text(text)
    return conf

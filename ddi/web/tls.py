"""The admin listener's TLS: a server context from a certificate and key, a self-signed pair
made once in the data directory when the config names none, and certificate fingerprints.

A fingerprint is the SHA-256 of the certificate's DER bytes written as colon-separated
uppercase hex, as ``openssl x509 -fingerprint -sha256`` prints it; the CLI pins it
(``ddi --fingerprint``, ``ddi.cli.client``) instead of trusting a CA.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

CERT_FILE = "api-cert.pem"
KEY_FILE = "api-key.pem"
"""The self-signed pair's files in ``[site] data_dir`` (the key mode 0600)."""
LIFETIME = datetime.timedelta(days=3650)


def fingerprint(der: bytes) -> str:
    """``AB:CD:...``: the SHA-256 of a DER certificate."""
    return ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())


def pem_fingerprint(pem: bytes) -> str:
    """The fingerprint of the first certificate of a PEM file's bytes."""
    return fingerprint(ssl.PEM_cert_to_DER_cert(pem.decode("ascii")))


def server_context(cert: Path, key: Path) -> tuple[ssl.SSLContext, str]:
    """A TLS 1.2+ server context for the pair, and the certificate's fingerprint.

    Raises:
        OSError: a file cannot be read.
        ssl.SSLError: the files are not a matching PEM certificate and key.
        ValueError: the certificate file holds no PEM certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context, pem_fingerprint(cert.read_bytes())


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    from cryptography import x509

    entries: list[x509.GeneralName] = []
    seen: set[str] = set()
    for name in names:
        if not name or name in seen:
            continue
        seen.add(name)
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            entries.append(x509.DNSName(name))
            continue
        if not address.is_unspecified:  # 0.0.0.0 / :: name no host a client could use
            entries.append(x509.IPAddress(address))
    return x509.SubjectAlternativeName(entries or [x509.DNSName("localhost")])


def self_signed(
    data_dir: Path, names: Iterable[str], *, now: datetime.datetime
) -> tuple[Path, Path]:
    """The self-signed pair in ``data_dir``, made on the first call (EC P-256, 10 years, the
    ``names`` as subject alternative names) and reused after; returns (cert, key) paths.

    The key is written first, 0600, with O_EXCL: a crash between the two files leaves a key
    without a certificate, which the next start replaces.
    """
    cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    # Imported only to make the pair: cryptography costs the daemon about 8 MiB resident, and
    # every start after the first, or with tls_cert/tls_key given, needs none of it.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    san = _san(names)
    first = san[0].value if san else "ddi"
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(first)[:64])])
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + LIFETIME)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_path.unlink(missing_ok=True)
    _write(key_path, key_pem, 0o600)
    _write(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def _write(path: Path, data: bytes, mode: int) -> None:
    temp = path.with_name(f".{path.name}.new")
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)

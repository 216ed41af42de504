"""Canonical JSON, digests and Ed25519 keys and signatures: the bytes both ends of sync hash
and sign, and the keys they sign them with.

Rules:
* Every message is canonical JSON: keys sorted, no insignificant whitespace, UTF-8, no NaN.
  ``decode(encode(x)) == x`` and ``encode`` is a function of the value alone, so both ends
  hash and sign the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def canonical(value: Any) -> bytes:
    """The canonical bytes of a JSON value: sorted keys, no spaces, UTF-8, no NaN/Infinity.

    Raises:
        ValueError: ``value`` holds a float that JSON cannot carry (NaN, Infinity).
        TypeError: ``value`` holds something that is not JSON.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def digest(value: Any) -> str:
    """Hex SHA-256 of ``canonical(value)``."""
    return hashlib.sha256(canonical(value)).hexdigest()


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8).

    Raises:
        ValueError: not a PEM Ed25519 private key.
    """
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo), or 32 raw bytes in base64.

    Raises:
        ValueError: neither form, or not Ed25519.
    """
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("neither PEM nor base64") from None
    if len(raw) != 32:
        raise ValueError("a raw Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign(key: Ed25519PrivateKey, header: Mapping[str, Any]) -> str:
    """Base64 Ed25519 signature of ``canonical(header)``."""
    return base64.b64encode(key.sign(canonical(header))).decode("ascii")


def verify(public_key: bytes | Ed25519PublicKey, header: Mapping[str, Any], sig: str) -> bool:
    """Whether ``sig`` is ``public_key``'s signature of ``canonical(header)``."""
    try:
        raw_sig = base64.b64decode(sig, validate=True)
        key = (
            public_key
            if isinstance(public_key, Ed25519PublicKey)
            else Ed25519PublicKey.from_public_bytes(public_key)
        )
        key.verify(raw_sig, canonical(header))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True

"""Small, strict byte encodings used by the proofs core: base64url (JWS), hex, EVM addresses."""

from __future__ import annotations

import base64
import re

from .hashing import keccak256 as keccak

_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; padding, ``+``/``/`` and whitespace are refused.

    Raises:
        ValueError: not base64url.
    """
    # The alphabet check matters: the stdlib decoder silently skips characters it does not know.
    if not _B64URL_RE.match(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def address_from_public_key(uncompressed: bytes) -> str:
    """EIP-55 checksummed address of a 65-byte uncompressed secp256k1 public key (``04 || x || y``)."""
    return to_checksum_address(keccak(uncompressed[1:])[-20:].hex())


def to_checksum_address(hex40: str) -> str:
    """EIP-55 checksum of 40 hex digits (with or without ``0x``)."""
    lower = hex40.lower().removeprefix("0x")
    nibbles = keccak(lower.encode("ascii")).hex()[:40]
    return "0x" + "".join(c.upper() if n in "89abcdef" else c for c, n in zip(lower, nibbles, strict=True))

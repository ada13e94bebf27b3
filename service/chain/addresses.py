"""EIP-55 addresses, computed once per address.

A submission names the same attester and recipient in several places (the request, the recovered signer, the nonce
read), and a sync meets the same recipients again and again; each checksum costs a keccak, a cache hit well under
1 µs. The cache is bounded, so attacker-chosen addresses can only evict, never grow it. A 0x-hex address is
checksummed here (≈ 60 µs against eth_utils' ≈ 130 µs: one keccak, no type dispatch); anything else goes to
eth_utils, which also gives the errors (``tests/chain/test_addresses.py`` holds the two equal).
"""

from __future__ import annotations

import functools
import re

from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

_HEX_ADDRESS = re.compile(r"0[xX]([0-9a-fA-F]{40})")
_UPPER_NIBBLES = frozenset("89abcdef")


def checksum_cached(address: str | bytes) -> str:
    """EIP-55 form of ``address`` (0x-hex in any case, or 20 raw bytes). Cached by the lower-case form, so the same
    address met as typed and then lower-cased costs one keccak.

    Raises:
        ValueError: not an address (failures are not cached).
    """
    return _checksum(address.lower() if isinstance(address, str) else address)


@functools.lru_cache(maxsize=16384)  # ≈ 4 MB at most
def _checksum(address: str | bytes) -> str:
    found = _HEX_ADDRESS.fullmatch(address) if isinstance(address, str) else None
    if found is None:
        return to_checksum_address(address)
    digits = found.group(1)  # lower case (see checksum_cached)
    digest = keccak(digits.encode()).hex()
    return "0x" + "".join(c.upper() if d in _UPPER_NIBBLES else c for c, d in zip(digits, digest[:40], strict=True))

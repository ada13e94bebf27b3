"""EIP-55 addresses, computed once per address.

A submission names the same attester and recipient in several places (the request, the recovered signer, the nonce
read), and a sync meets the same recipients again and again; each checksum costs a keccak (~20 µs), a cache hit
well under 1 µs. The cache is bounded, so attacker-chosen addresses can only evict, never grow it.
"""

from __future__ import annotations

import functools

from eth_utils.address import to_checksum_address


def checksum_cached(address: str | bytes) -> str:
    """EIP-55 form of ``address`` (0x-hex in any case, or 20 raw bytes). Cached by the lower-case form, so the same
    address met as typed and then lower-cased costs one keccak.

    Raises:
        ValueError: not an address (failures are not cached).
    """
    return _checksum(address.lower() if isinstance(address, str) else address)


@functools.lru_cache(maxsize=16384)  # ≈ 4 MB at most
def _checksum(address: str | bytes) -> str:
    return to_checksum_address(address)

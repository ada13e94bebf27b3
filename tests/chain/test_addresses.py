"""``checksum_cached`` (its own EIP-55 for 0x-hex strings) gives what eth_utils gives, and refuses what it refuses."""

from __future__ import annotations

import secrets

import pytest
from eth_utils.address import to_checksum_address

from service.chain.addresses import checksum_cached


def test_the_same_checksums_as_eth_utils() -> None:
    for _ in range(500):
        raw = secrets.token_bytes(20)
        lower = "0x" + raw.hex()
        want = to_checksum_address(lower)
        assert checksum_cached(lower) == want
        assert checksum_cached(lower.upper().replace("0X", "0x")) == want
        assert checksum_cached(raw) == want
    assert checksum_cached("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed") == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


@pytest.mark.parametrize("bad", ["0x1234", "0x" + "g" * 40, "0x" + "a" * 41, "", b"\x00" * 19])
def test_what_is_not_an_address_is_refused(bad: str | bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - eth_utils' own messages
        to_checksum_address(bad)
    with pytest.raises(ValueError):  # noqa: PT011
        checksum_cached(bad)

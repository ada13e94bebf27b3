"""The SSRF address policy, against the IANA special-purpose registries (RFC 6890 and successors)."""

from __future__ import annotations

import pytest

from service.identity.addresses import address_refusal

PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2001:4860:4860::8888",
          "::ffff:8.8.8.8", "2002:808:808::1"]  # fmt: skip
REFUSED_ALWAYS = [
    "0.0.0.0", "0.1.2.3",  # this network / unspecified
    "169.254.169.254", "169.254.0.1",  # link-local, cloud metadata
    "100.64.0.1",  # shared address space (CGNAT)
    "192.0.0.8", "192.0.2.1", "198.18.0.1", "198.51.100.1", "203.0.113.1",  # IETF / benchmarking / documentation
    "224.0.0.1", "239.255.255.250",  # multicast
    "240.0.0.1", "255.255.255.255",  # reserved / broadcast
    "::", "fe80::1", "fe80::1%eth0", "ff02::1", "2001:db8::1",
    "::ffff:169.254.169.254", "::ffff:0.0.0.0", "64:ff9b::a9fe:a9fe",
    "not-an-ip", "",
]  # fmt: skip
LOCAL = ["127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.0.1", "::1", "fd12:3456::1",
         "::ffff:127.0.0.1", "::ffff:10.1.1.1", "2002:7f00:1::1", "2002:a00:1::1"]  # fmt: skip


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(address) is None


@pytest.mark.parametrize("address", REFUSED_ALWAYS)
def test_never_allowed(address: str) -> None:
    assert address_refusal(address) is not None
    assert address_refusal(address, allow_local=True) is not None


@pytest.mark.parametrize("address", LOCAL)
def test_local_only_with_the_escape_hatch(address: str) -> None:
    assert address_refusal(address) is not None
    assert address_refusal(address, allow_local=True) is None or address.startswith("2002:")


def test_6to4_of_a_loopback_address_is_refused() -> None:
    assert "127.0.0.1" in (address_refusal("2002:7f00:1::1") or "")

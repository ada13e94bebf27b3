"""``OMATRUST_PAYMENT_RPC_URLS``: which JSON-RPC node serves which payment network (CAIP-2 id)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_CAIP2 = re.compile(r"^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$")


def parse_rpc_urls(text: str) -> dict[str, str]:
    """``eip155:8453=https://…,eip155:84532=http://…`` → ``{network: url}``. Empty text → ``{}``.

    Raises:
        ValueError: an entry is not ``<caip2>=<http(s) URL>`` or a network is named twice.
    """
    out: dict[str, str] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        network, sep, url = entry.partition("=")
        network, url = network.strip(), url.strip()
        if not sep or not _CAIP2.match(network):
            raise ValueError(f"payment RPC entry {entry!r}: expected <caip2 network>=<url>")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"payment RPC entry {entry!r}: the URL must be http(s)://host…")
        if network in out:
            raise ValueError(f"payment network {network} is configured twice")
        out[network] = url
    return out


def evm_network(chain_id: int) -> str:
    """CAIP-2 id of an EVM chain."""
    return f"eip155:{chain_id}"

"""Bootstrap an anvil node for a test module and build clients against it."""

from __future__ import annotations

from eth_account import Account

from service.chain.deploy import bootstrap
from service.chain.eas_relayer import EasClient
from service.chain.embedded import EAS_ADDRESS, SCHEMA_REGISTRY_ADDRESS
from service.chain.rpc import connect
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode


def booted_client(node: AnvilNode, *, url: str | None = None, timeout: float = 5.0, **kwargs: object) -> EasClient:
    """An EasClient on ``url`` (default: the node), EAS placed and schema registered (idempotent)."""
    relayer = Account.from_key(ANVIL_DEV_KEY_0)
    bootstrap(w3=connect(rpc_url=node.url), eas_address=EAS_ADDRESS, registry_address=SCHEMA_REGISTRY_ADDRESS,
              payer=relayer)
    return EasClient(w3=connect(rpc_url=url or node.url, timeout=timeout), eas_address=EAS_ADDRESS, relayer=relayer,
                     poll_interval=0.02, **kwargs)  # type: ignore[arg-type]

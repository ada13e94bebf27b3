"""Settings from the environment (prefix ``OMATRUST_``). Built only by ``api`` and ``cli``; passed down as values."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

BASE_EAS_ADDRESS = "0x4200000000000000000000000000000000000021"
BASE_SCHEMA_REGISTRY_ADDRESS = "0x4200000000000000000000000000000000000020"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMATRUST_", extra="ignore")

    database_url: str = "sqlite:///./omatrust.db"
    # Empty → the embedded in-process EVM (ephemeral). Any JSON-RPC URL in production.
    rpc_url: str = ""
    eas_address: str = BASE_EAS_ADDRESS
    schema_registry_address: str = BASE_SCHEMA_REGISTRY_ADDRESS
    relayer_key: SecretStr | None = None
    # Comma list of host[:port] that may be fetched over plain http and on loopback (development only).
    did_web_insecure_hosts: str = ""
    # Extra CA bundle (PEM) trusted for did:web fetches, on top of the public roots (private PKI, tests).
    did_web_ca_file: str = ""
    dns_nameservers: str = ""  # comma list of ip[:port]; empty → system resolver
    dns_timeout_seconds: float = 3.0
    fetch_timeout_seconds: float = 5.0
    did_cache_ttl_seconds: int = 300
    # Receipt freshness: issuedAt must be at most this old when the review is made, and not in the future
    # beyond the allowed clock skew.
    receipt_max_age_seconds: int = 30 * 24 * 3600
    clock_skew_seconds: int = 300
    max_body_bytes: int = 256 * 1024
    rate_limit_per_minute: int = 30
    publish_batch_size: int = 20
    publish_interval_seconds: float = 0.5
    confirmations: int = 0

    def insecure_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.did_web_insecure_hosts.split(",") if h.strip())

    def nameservers(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.dns_nameservers.split(",") if h.strip())

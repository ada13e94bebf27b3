"""Settings from the environment (prefix ``OMATRUST_``). Built only by ``api`` and ``cli``; passed down as values."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BASE_EAS_ADDRESS = "0x4200000000000000000000000000000000000021"
BASE_SCHEMA_REGISTRY_ADDRESS = "0x4200000000000000000000000000000000000020"


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting (e.g. a malformed relayer key) must not be echoed in the startup error.
    model_config = SettingsConfigDict(env_prefix="OMATRUST_", extra="ignore", hide_input_in_errors=True)

    database_url: str = "sqlite:///./omatrust.db"
    # OMATRUST_TRUST_ANCHORS: a trust-anchor file (docs/authorization.md); empty → the built-in default.
    trust_anchors: str = ""
    # Empty → the embedded in-process EVM (ephemeral). Any JSON-RPC URL in production.
    rpc_url: str = ""
    # Embedded chain file (used when rpc_url is empty). Empty → beside the SQLite database (./omatrust.db →
    # ./omatrust.chain); ":memory:" → ephemeral, gone when the process exits (tests).
    embedded_chain_path: str = ""
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
    publish_batch_size: int = 64  # reviews claimed per publish round, packed into transactions of up to 2^24 gas
    publish_interval_seconds: float = 0.5
    # False: this process only enqueues (an API replica); run exactly one publishing process per relayer key.
    publisher_enabled: bool = True
    # Scale-out (docs/deploy.md). Several relayer keys (comma list of 0x keys) publish in parallel, each for its
    # share of attesters (by the attester's last hex digit); empty → RELAYER_KEY alone.
    relayer_keys: SecretStr | None = None
    # Shared rate limits across API processes (the ``limits`` library on Redis); empty → per process.
    redis_url: str = ""
    # Workers (``omatrust worker``, PostgreSQL): chain sync every N s (0 = no periodic sync), a publish round of
    # every relayer key every N s (retries, crash recovery), a worker without heartbeat for N s is stalled and its
    # jobs are retried elsewhere.
    sync_interval_seconds: int = 30
    publish_tick_seconds: int = 5
    worker_heartbeat_seconds: float = 2.0
    worker_stalled_seconds: float = 10.0
    # Publishing waits this long after being woken so that concurrent submissions share a transaction.
    publish_linger_seconds: float = 0.2
    # Group commit of submissions (docs/architecture.md "Group commit"): at most this many per transaction, and this
    # many groups written at once per API process.
    submit_group_max: int = Field(default=32, ge=1, le=500)
    submit_group_writers: int = Field(default=1, ge=1, le=64)
    # How long a submission's look-up of a service's stored OMATrust attestations (key bindings, witnesses, linked
    # identifiers) serves the next submissions about that service in this process (0: read each time).
    onchain_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    # Confirmations before a published attestation is "confirmed" (and how far behind the head sync reads: N − 1).
    # Unset → by chain id (service.chain.confirmations: 1 on dev chains, 10 on Base/OP stacks).
    confirmations: int | None = None
    # Payment networks (CAIP-2 → JSON-RPC URL) for payment-backed reviews: "eip155:8453=https://…,eip155:84532=…".
    # The service's own chain (embedded or RPC_URL) serves its own network id without being listed here.
    payment_rpc_urls: str = ""
    payment_confirmations: int = 1  # a payment counts as settled from this many confirmations
    payment_rpc_timeout_seconds: float = 5.0
    # ERC-8004 registries indexed by ``omatrust sync`` on the configured chain: "<chain id>=<identity>/<reputation>,…".
    # Base and Base Sepolia have defaults (service.chain.erc8004.DEFAULT_REGISTRIES); other chains only when listed.
    erc8004_registries: str = ""
    erc8004_ipfs_gateway: str = "https://ipfs.io"  # ipfs:// registration and feedback files are fetched through it
    erc8004_file_max_bytes: int = 65536  # registration and feedback files larger than this are refused
    # Pages link payment and attestation transactions to ``{explorer_url}/tx/<hash>`` and attestation UIDs to
    # ``{attestation_explorer_url}/attestation/view/<uid>`` (an EAS scan). Empty → shown without links.
    explorer_url: str = ""
    attestation_explorer_url: str = ""

    # Hostile-input bounds (docs/security.md). Outbound look-ups (did:web, DNS, JSON-RPC) in flight: overall and per
    # host; past a cap a look-up waits at most lookup_wait_seconds, then the request gets 503 lookup-saturated.
    lookup_max_in_flight: int = 64
    lookup_max_per_host: int = 4
    lookup_wait_seconds: float = 0.2
    # A did:web document that could not be fetched is not fetched again for this long (requests in between get the
    # same 503 at once).
    lookup_failure_ttl_seconds: float = 10.0
    # Verification requests (POST /v1/reviews, POST /v1/proofs/verify) running at once and waiting for a slot;
    # beyond both, 503 overloaded at once. Everything else runs on its own pool of api_threads.
    verify_max_concurrent: int = 16
    verify_max_queue: int = 64
    api_threads: int = 64
    # JSON request bodies: at most this many values (objects, arrays, strings, numbers, literals) before parsing.
    max_json_values: int = 20_000

    @field_validator("relayer_key")
    @classmethod
    def _relayer_key_is_32_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        """Exactly 32 bytes as 64 hex digits, ``0x`` optional: a 63-digit key would otherwise be read as some other
        account. Returned as ``0x`` + lower-case hex."""
        if value is None:
            return None
        return SecretStr(private_key_hex(value.get_secret_value(), name="OMATRUST_RELAYER_KEY"))

    @field_validator("relayer_keys")
    @classmethod
    def _relayer_keys_are_32_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        """Each key as ``private_key_hex`` reads it (the message names the setting, never a value)."""
        if value is None:
            return None
        keys = [k for k in value.get_secret_value().split(",") if k.strip()]
        return SecretStr(",".join(private_key_hex(k, name="OMATRUST_RELAYER_KEYS") for k in keys))

    def relayer_key_list(self) -> list[str]:
        """Every configured relayer key (RELAYER_KEYS, else RELAYER_KEY), in order; never logged."""
        if self.relayer_keys is not None:
            keys = [k.strip() for k in self.relayer_keys.get_secret_value().split(",") if k.strip()]
            if keys:
                return keys
        return [self.relayer_key.get_secret_value()] if self.relayer_key else []

    def insecure_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.did_web_insecure_hosts.split(",") if h.strip())

    def nameservers(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.dns_nameservers.split(",") if h.strip())


_KEY_HEX = re.compile(r"[0-9a-fA-F]{64}")


def private_key_hex(value: str, *, name: str) -> str:
    """A secp256k1 private key as ``0x`` + 64 lower-case hex digits.

    Raises:
        ValueError: not exactly 32 bytes of hex (the message names the setting, never the value).
    """
    text = value.strip()
    digits = text[2:] if text[:2].lower() == "0x" else text
    if not _KEY_HEX.fullmatch(digits):
        raise ValueError(f"{name} must be exactly 32 bytes written as 64 hex digits (0x optional)")
    if int(digits, 16) == 0:
        raise ValueError(f"{name} must not be zero")
    return "0x" + digits.lower()

"""Request/response models. JSON is camelCase like the x402 and OMATrust wire formats."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from service.domain import Review

Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
HexBytes = Annotated[str, StringConstraints(pattern=r"^0x([0-9a-fA-F]{2})*$", max_length=200_000)]
Signature = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]
UInt64 = Annotated[int, Field(ge=0, lt=2**64)]
UInt256 = Annotated[int, Field(ge=0, lt=2**256)]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ReviewIn(CamelModel):
    """A User Review as the reviewer writes it. ``proofs`` are proof wrapper objects (or their JSON strings)."""

    subject: Annotated[str, StringConstraints(max_length=256)]
    version: Annotated[str, StringConstraints(max_length=64)] = ""
    rating_value: Annotated[int, Field(ge=1, le=5)]
    review_body: Annotated[str, StringConstraints(max_length=500)] = ""
    screenshot_urls: Annotated[list[Annotated[str, StringConstraints(max_length=256)]], Field(max_length=10)] = []
    proofs: Annotated[list[dict[str, Any] | str], Field(max_length=8)] = []

    def to_domain(self) -> Review:
        # Proofs are stored as JSON.stringify of the wrapper: compact separators, insertion order kept.
        proofs = tuple(
            p if isinstance(p, str) else json.dumps(p, separators=(",", ":"), ensure_ascii=False) for p in self.proofs
        )
        return Review(
            subject=self.subject,
            version=self.version,
            rating_value=self.rating_value,
            review_body=self.review_body,
            screenshot_urls=tuple(self.screenshot_urls),
            proofs=proofs,
        )


class PrepareIn(CamelModel):
    attester: Address
    review: ReviewIn
    deadline: UInt64 | None = Field(default=None, description="unix seconds; default now + 1 hour")


class PrepareOut(CamelModel):
    typed_data: dict[str, Any] = Field(description="EAS Attest typed data for eth_signTypedData_v4")
    data: str = Field(description="the ABI-encoded review: the exact bytes to send back in POST /v1/reviews")
    recipient: str = Field(description="DID Address of the subject")


class SubmitIn(CamelModel):
    attester: Address
    data: HexBytes
    deadline: UInt64
    nonce: UInt256
    signature: Signature


class ProofOut(CamelModel):
    position: int
    proof_type: str
    status: Literal["verified", "unauthorized", "invalid", "indeterminate", "unsupported"]
    reason: str | None
    kind: Literal["offer", "receipt"] | None
    format: Literal["eip712", "jws"] | None
    signature_valid: bool
    signer: str | None
    tier: str | None
    bound: bool
    replay_key: str | None
    issued_at: int | None
    checked_at: int
    evidence_hash: str | None


class AttestationOut(CamelModel):
    state: Literal["pending", "submitted", "confirmed", "failed"]
    uid: str | None
    tx_hash: str | None
    error: str | None = None


class ReviewOut(CamelModel):
    id: str
    subject: str
    subject_normalized: str
    did_address: str
    attester: str
    version: str
    rating_value: int
    review_body: str
    screenshot_urls: list[str]
    review_time: int
    source: Literal["api", "chain"]
    verified_purchase: bool
    evidence: str
    superseded_by: str | None
    proofs: list[ProofOut]
    attestation: AttestationOut


class ReviewPage(CamelModel):
    items: list[ReviewOut]
    next_cursor: str | None


class DomainOut(CamelModel):
    name: str
    version: str
    chain_id: int
    verifying_contract: str


class AttestationConfigOut(CamelModel):
    chain_id: int
    eas: str
    schema_uid: str
    schema_: str = Field(alias="schema")
    domain: DomainOut
    ephemeral: bool


class VerifyOut(CamelModel):
    kind: Literal["offer", "receipt"] | None
    format: Literal["eip712", "jws"] | None
    signature_valid: bool
    signer: str | None
    status: Literal["verified", "unauthorized", "invalid", "indeterminate", "unsupported"]
    reason: str | None
    tier: str | None
    replay_key: str | None
    evidence_hash: str | None
    checked_at: int
    detail: str


class Health(CamelModel):
    status: Literal["ok"]


class Readiness(CamelModel):
    status: Literal["ready"]
    database: bool
    chain_id: int
    block_number: int
    outbox_pending: int

"""Request/response models. JSON is camelCase like the x402 and OMATrust wire formats."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from service.domain import Review
from service.storable import text_refusal

Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]


def _storable(value: str) -> str:
    refusal = text_refusal(value)
    if refusal:
        raise ValueError(refusal)
    return value


# Text a database can hold: no NUL (PostgreSQL refuses it), no lone surrogate (not encodable as UTF-8).
StorableText = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$"), AfterValidator(_storable)]
HexBytes = Annotated[str, StringConstraints(pattern=r"^0x([0-9a-fA-F]{2})*$", max_length=200_000)]
Signature = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]
UInt64 = Annotated[int, Field(ge=0, lt=2**64)]
UInt256 = Annotated[int, Field(ge=0, lt=2**256)]


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def exact_integer_bounds(node: Any) -> None:
    """Rewrite, in place, the bounds of every ``integer`` schema in an OpenAPI document as JSON integers.

    FastAPI's OpenAPI model types bounds as floats, so ``lt=2**256`` would be published as ``1.157…e+77`` and
    ``ge=1`` as ``1.0``: a client (or a fuzzer) reading the schema must see exactly what the server enforces.
    """
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in _BOUNDS:
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = int(value)
        for value in node.values():
            exact_integer_bounds(value)
    elif isinstance(node, list):
        for value in node:
            exact_integer_bounds(value)


NO_NUL_PATTERN = r"^[^\x00]*$"


def no_nul_in_parameters(spec: dict[str, Any]) -> None:
    """Say in the OpenAPI document what ``EdgeGuard`` enforces: no path or query parameter may hold NUL."""
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                variants = schema.get("anyOf", [schema])
                for variant in variants:
                    if variant.get("type") == "string" and "pattern" not in variant and "enum" not in variant:
                        variant["pattern"] = NO_NUL_PATTERN


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ReviewIn(CamelModel):
    """A User Review as the reviewer writes it. ``proofs`` are proof wrapper objects (or their JSON strings)."""

    subject: Annotated[StorableText, StringConstraints(max_length=256)]
    version: Annotated[StorableText, StringConstraints(max_length=64)] = ""
    # Range checked by the schema rules (validate_review), so an out-of-range rating answers `invalid-rating`.
    rating_value: Annotated[
        int,
        Field(
            description="integer 1-5 (other integers: 422 invalid-rating)",
            json_schema_extra={"minimum": 1, "maximum": 5},
        ),
    ]
    review_body: Annotated[StorableText, StringConstraints(max_length=500)] = ""
    screenshot_urls: Annotated[
        list[Annotated[StorableText, StringConstraints(max_length=256)]], Field(max_length=10)
    ] = []
    proofs: Annotated[
        list[dict[str, Any] | str],
        Field(
            max_length=8,
            description="x402 receipts/offers: the OMATrust proof wrapper {proofType, proofPurpose, proofObject, "
            "version}, or the bare envelope the service returned ({format: 'eip712', payload, signature} / "
            "{format: 'jws', signature}) — prepare wraps a bare one",
        ),
    ] = []

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
    allow_unsupported: bool = Field(
        default=False,
        description="publish proofs whose proofType this service does not verify (stored as `unsupported`); "
        "without it they are refused with unsupported-proof-type",
    )


class PrepareOut(CamelModel):
    typed_data: dict[str, Any] = Field(description="EAS Attest typed data for eth_signTypedData_v4")
    data: str = Field(description="the ABI-encoded review: the exact bytes to send back in POST /v1/reviews")
    recipient: str = Field(description="DID Address of the subject")
    proofs: list[str] = Field(default=[], description="the proofs as signed and published (bare envelopes wrapped)")
    wrapped: list[int] = Field(default=[], description="positions of proofs that were bare x402 envelopes, now wrapped")
    evidence: str = Field(default="none", description="evidence class submit will store if nothing changes meanwhile")
    verified_purchase: bool = Field(default=False, description="whether it will count as a verified purchase")


class SubmitIn(CamelModel):
    attester: Address
    data: HexBytes
    deadline: UInt64
    nonce: UInt256
    signature: Signature


class PaymentOut(CamelModel):
    """The payment a receipt names, as read from its payment network (service.verdicts.payment)."""

    status: Literal["settled", "pending", "not-found", "mismatch", "reverted", "indeterminate"]
    reason: str | None
    network: str
    transaction: str
    asset: str | None
    pay_to: str | None
    amount: str | None
    payer: str | None = None
    method: str | None = None  # eip3009 | permit2 | transfer
    block_number: int | None
    confirmations: int
    checked_at: int = 0
    detail: str = ""


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
    payment: PaymentOut | None = None  # receipts naming a transaction


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
    # A verified purchase whose payment was seen settled on its payment network (evidence "payment-backed").
    payment_backed: bool = False
    evidence: str
    superseded_by: str | None
    proofs: list[ProofOut]
    attestation: AttestationOut
    # User Review Responses from an address authorized for the subject (docs/authorization.md), oldest first.
    responses: list[ResponseOut] = []


class ResponseOut(CamelModel):
    uid: str
    attester: str
    response_body: str
    time: int


class ReviewPage(CamelModel):
    items: list[ReviewOut]
    next_cursor: str | None


class DomainOut(CamelModel):
    name: str
    version: str
    chain_id: int
    verifying_contract: str


class PaymentTokenOut(CamelModel):
    """The test EIP-3009 stablecoin the service placed on this (dev) chain: what an x402 client needs."""

    network: str
    address: str
    name: str
    version: str
    decimals: int


class AttestationConfigOut(CamelModel):
    chain_id: int
    eas: str
    schema_uid: str
    schema_: str = Field(alias="schema")
    domain: DomainOut
    ephemeral: bool
    payment_token: PaymentTokenOut | None = None


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

"""Pure value types shared by every domain package.

Nothing here does I/O. Types are frozen dataclasses or ``StrEnum``s whose values are the stable wire strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ArtifactKind(StrEnum):
    OFFER = "offer"
    RECEIPT = "receipt"


class ArtifactFormat(StrEnum):
    EIP712 = "eip712"
    JWS = "jws"


class ProofStatus(StrEnum):
    VERIFIED = "verified"
    UNAUTHORIZED = "unauthorized"  # signature valid, signer not authorized for the service
    INVALID = "invalid"
    INDETERMINATE = "indeterminate"  # could not check (DNS/HTTP/RPC failure)
    UNSUPPORTED = "unsupported"


class AuthTier(StrEnum):
    """How a signer was found to be authorized for a service."""

    DID_DOCUMENT = "did-document"
    DNS_TXT = "dns-txt"
    OFFER_PAYTO = "offer-payto"
    KEY_BINDING = "key-binding"
    CONTROLLER_WITNESS = "controller-witness"
    LINKED_IDENTIFIER = "linked-identifier"  # payer ↔ attester linkage only (service.verdicts.onchain)


class Reason(StrEnum):
    """Stable reason codes. Values are part of the public API (CLI output, problem+json ``code``)."""

    # -- parsing the artifact / proof wrapper
    MALFORMED_JSON = "malformed-json"
    MALFORMED_ARTIFACT = "malformed-artifact"  # not an object, wrong top-level shape
    MISSING_FIELD = "missing-field"
    BAD_FIELD_TYPE = "bad-field-type"  # e.g. a float or string where an integer is required
    BAD_FIELD_VALUE = "bad-field-value"
    UNSUPPORTED_VERSION = "unsupported-version"
    UNSUPPORTED_FORMAT = "unsupported-format"
    UNSUPPORTED_PROOF_TYPE = "unsupported-proof-type"
    KIND_MISMATCH = "kind-mismatch"  # e.g. a receipt given where an offer is expected
    # -- signature encoding / cryptography
    SIGNATURE_ENCODING = "signature-encoding"  # not 0x + 130 hex, bad base64url, wrong length
    SIGNATURE_COMPACT = "signature-compact-unsupported"  # 64-byte EIP-2098 form
    SIGNATURE_BAD_V = "signature-bad-v"  # v not in {0, 1, 27, 28}
    SIGNATURE_DER = "signature-der-encoded"  # JWS ECDSA must be raw r||s
    SIGNATURE_INVALID = "signature-invalid"
    ALG_NOT_ALLOWED = "alg-not-allowed"  # none, HS*, anything not on the list
    ALG_KEY_MISMATCH = "alg-key-mismatch"  # alg does not fit the key's curve
    JWK_MISMATCH = "jwk-mismatch"  # header jwk differs from the key resolved from kid
    # -- key resolution
    KID_MISSING = "kid-missing"
    KEY_NOT_FOUND = "key-not-found"  # kid's fragment not in the DID document
    UNSUPPORTED_DID_METHOD = "unsupported-did-method"
    BAD_DID = "bad-did"
    DID_DOCUMENT_INVALID = "did-document-invalid"
    DID_DOCUMENT_ID_MISMATCH = "did-document-id-mismatch"
    UNSUPPORTED_KEY_TYPE = "unsupported-key-type"
    # -- fetching (could not check)
    FETCH_FAILED = "fetch-failed"
    FETCH_TIMEOUT = "fetch-timeout"
    FETCH_HTTP_STATUS = "fetch-http-status"
    FETCH_REDIRECT_REFUSED = "fetch-redirect-refused"
    FETCH_ADDRESS_REFUSED = "fetch-address-refused"  # private/loopback/link-local target
    FETCH_SCHEME_REFUSED = "fetch-scheme-refused"  # not https
    FETCH_TOO_LARGE = "fetch-too-large"
    DNS_FAILED = "dns-failed"
    RPC_FAILED = "rpc-failed"
    LOOKUP_SKIPPED = "lookup-skipped"  # offline mode / no resolver: a needed look-up was not made
    # -- authorization
    SIGNER_NOT_AUTHORIZED = "signer-not-authorized"
    # -- OMATrust on-chain authorization (service.verdicts.onchain): why an attestation naming the signer did not count
    ATTESTATION_REVOKED = "attestation-revoked"  # revoked at or before the time judged
    ATTESTATION_NOT_EFFECTIVE = "attestation-not-effective"  # outside effectiveAt..expiresAt / observed later
    KEY_PURPOSE_MISMATCH = "key-purpose-mismatch"  # the key binding lacks assertionMethod
    ISSUER_NOT_APPROVED = "issuer-not-approved"  # a witness/issuer not in the trust anchors' approved issuers
    CONTROLLER_NOT_ASSERTED = "controller-not-asserted"  # POST /v1/witness: neither DNS nor did.json names it
    WITNESS_UNAVAILABLE = "witness-unavailable"  # POST /v1/witness: no attesting key / no witness schema anchored
    # -- binding of a receipt to a review
    SUBJECT_MISMATCH = "subject-mismatch"
    PAYER_MISMATCH = "payer-mismatch"
    RECEIPT_FROM_FUTURE = "receipt-from-future"
    RECEIPT_STALE = "receipt-stale"
    RECEIPT_REPLAYED = "receipt-replayed"
    SELF_REVIEW = "self-review"
    OFFER_EXPIRED = "offer-expired"
    NETWORK_MISMATCH = "network-mismatch"
    # -- review validation (schema userreview 1.3.0)
    INVALID_REVIEW = "invalid-review"
    INVALID_SUBJECT = "invalid-subject"
    INVALID_RATING = "invalid-rating"
    REVIEW_BODY_TOO_LONG = "review-body-too-long"
    INVALID_SCREENSHOTS = "invalid-screenshots"
    INVALID_SERVICE_VERSION = "invalid-service-version"
    # -- EAS / delegated attestation
    DELEGATION_SIGNER_MISMATCH = "delegation-signer-mismatch"
    DELEGATION_EXPIRED = "delegation-expired"
    DELEGATION_NONCE = "delegation-nonce"
    ATTESTATION_DATA_INVALID = "attestation-data-invalid"
    SCHEMA_MISMATCH = "schema-mismatch"
    RECIPIENT_MISMATCH = "recipient-mismatch"
    TX_REVERTED = "tx-reverted"
    # -- chain state is the truth (docs/chain.md)
    CHAIN_MISMATCH = "chain-mismatch"  # the store refers to attestations on another chain than the configured one
    DEADLINE_EXPIRED = "deadline-expired"  # must be published again but the delegated signature's deadline passed
    NOT_ON_CHAIN = "not-on-chain"  # an indexed review whose attestation the configured chain does not have
    # -- hostile input and load (docs/security.md)
    JUDGE_FAILED = "judge-failed"  # a chain attestation raised while being judged or stored: kept as a reject
    VALUE_NOT_STORABLE = "value-not-storable"  # NUL or another value the databases cannot hold
    LOOKUP_SATURATED = "lookup-saturated"  # too many did:web/DNS/RPC look-ups in flight (per host or overall)
    OVERLOADED = "overloaded"  # the verification queue is full
    # -- payment evidence (service.verdicts.payment): the 422 codes, then the finer reasons a check records
    PAYMENT_MISMATCH = "payment-mismatch"
    PAYMENT_REVERTED = "payment-reverted"
    PAYMENT_NOT_FOUND = "payment-not-found"
    PAYMENT_PENDING = "payment-pending"  # mined with too few confirmations, or still in the mempool
    PAYMENT_WRONG_PAYEE = "payment-wrong-payee"
    PAYMENT_WRONG_AMOUNT = "payment-wrong-amount"
    PAYMENT_WRONG_ASSET = "payment-wrong-asset"
    PAYMENT_WRONG_PAYER = "payment-wrong-payer"
    PAYMENT_NO_TRANSFER = "payment-no-transfer"
    PAYMENT_PAYEE_NOT_AUTHORIZED = "payment-payee-not-authorized"
    PAYMENT_NETWORK_MISMATCH = "payment-network-mismatch"  # offer and receipt name different networks
    NETWORK_NOT_CONFIGURED = "network-not-configured"
    # -- tx-interaction proofs
    TX_NOT_FOUND = "tx-not-found"
    TX_PENDING = "tx-pending"
    TX_SENDER_MISMATCH = "tx-sender-mismatch"  # tx.from is not the attester
    TX_TARGET_NOT_AUTHORIZED = "tx-target-not-authorized"  # tx.to is not an address of the subject
    # -- evidence-pointer proofs (docs/authorization.md)
    EVIDENCE_HOST_MISMATCH = "evidence-host-mismatch"  # the url is not on the host of the review's did:web subject
    EVIDENCE_RECORD_MALFORMED = "evidence-record-malformed"  # no ``v=1;controller=<DID>`` record in the document
    EVIDENCE_CONTROLLER_MISMATCH = "evidence-controller-mismatch"  # no controller named is the reviewer
    # -- operations (CLI / internal signals, never an HTTP answer)
    RUN_NOT_RESUMABLE = "run-not-resumable"  # reverify --resume names no unfinished run
    AGGREGATE_STALE = "aggregate-stale"  # a stored score aggregate is in other scoring units (params changed)


@dataclass(frozen=True, slots=True)
class OfferPayload:
    """x402 signed-offer payload, values exactly as transmitted (strings never re-cased)."""

    version: int
    resource_url: str
    scheme: str
    network: str
    asset: str
    pay_to: str
    amount: str
    valid_until: int


@dataclass(frozen=True, slots=True)
class ReceiptPayload:
    """x402 signed-receipt payload. ``transaction`` is ``""`` when absent (EIP-712) / omitted (JWS)."""

    version: int
    network: str
    resource_url: str
    payer: str
    issued_at: int
    transaction: str


Payload = OfferPayload | ReceiptPayload


@dataclass(frozen=True, slots=True)
class SignedArtifact:
    """A parsed (not yet verified) x402 offer or receipt.

    ``signing_input`` is what the signature covers: the 32-byte EIP-712 digest, or the JWS
    ``b64(header) + "." + b64(payload)`` bytes. ``replay_key`` is a stable hex id derived from it — never
    from signature bytes, which are malleable.
    """

    kind: ArtifactKind
    format: ArtifactFormat
    payload: Payload
    signature: str  # EIP-712: 0x-hex; JWS: the full compact serialization
    signing_input: bytes
    replay_key: str
    kid: str | None = None  # JWS only
    alg: str | None = None  # JWS only
    header_jwk: dict[str, Any] | None = None  # JWS only, optional
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the envelope verbatim


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key a DID resolves to.

    Exactly one of ``jwk`` (public JWK: kty/crv/x[/y]) or ``address`` (EVM, from ``blockchainAccountId``) is set.
    ``id`` is the absolute verification-method id (``did:web:host#key-1``), ``controller`` the DID that lists it.
    """

    id: str
    controller: str
    jwk: dict[str, str] | None = None
    address: str | None = None  # lower-case 0x address


@dataclass(frozen=True, slots=True)
class DidDocument:
    """The parts of a DID document this service uses, plus a hash of the exact bytes it was read from."""

    id: str
    keys: tuple[VerificationKey, ...]
    assertion_method: tuple[str, ...]  # absolute ids; empty when the document does not list any
    snapshot_hash: str  # sha256 hex of the raw document bytes ("" for did:key / did:jwk)
    raw: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ControllerRecord:
    """Controllers a domain publishes in DNS (``_controllers.<domain>`` TXT, ``v=1;controller=...``)."""

    domain: str
    record_name: str  # the name the record was found at (``_controllers.x`` or the older ``_omatrust.x``)
    controllers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProofOutcome:
    """Frozen verdict for one proof, as stored."""

    status: ProofStatus
    reason: Reason | None
    kind: ArtifactKind | None
    format: ArtifactFormat | None
    signature_valid: bool
    signer: str | None  # checksummed address (EIP-712) or kid (JWS)
    tier: AuthTier | None
    replay_key: str | None
    checked_at: int
    evidence_hash: str | None = None  # sha256 of the DID document / DNS answer that authorized the signer
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Review:
    """An OMATrust User Review, fields as in schema userreview 1.3.0 / the EAS schema string."""

    subject: str
    version: str
    rating_value: int
    review_body: str
    screenshot_urls: tuple[str, ...]
    proofs: tuple[str, ...]  # each a JSON.stringify'd proof wrapper, verbatim


# The exact EAS schema string of the OMATrust User Review (PROTOCOLS.md §3).
USER_REVIEW_SCHEMA = (
    "string subject, string version, uint256 ratingValue, string reviewBody, string[] screenshotUrls, string[] proofs"
)
USER_REVIEW_SCHEMA_UID = "0x7ab3911527e5e47eaab9f5a2c571060026532dde8cb4398185553053963b2a47"


# ---- payment evidence read from a payment network (PROTOCOLS.md §6) ---------------------------------------------


class PaymentStatus(StrEnum):
    """What the payment network says about a receipt's ``transaction`` (service.verdicts.payment decides it)."""

    SETTLED = "settled"
    PENDING = "pending"
    NOT_FOUND = "not-found"
    MISMATCH = "mismatch"
    REVERTED = "reverted"
    INDETERMINATE = "indeterminate"  # network not configured or its RPC failed: nothing is known


@dataclass(frozen=True, slots=True)
class TxLog:
    """One event log of a mined transaction. Addresses and hex are lower-case ``0x`` strings."""

    address: str
    topics: tuple[str, ...]
    data: str


@dataclass(frozen=True, slots=True)
class TxObservation:
    """What one payment network said about one transaction, read in a single round trip.

    ``mined``: a receipt exists; ``known``: the node knows the transaction at all (mined or in its mempool).
    ``head`` is the latest block number when it was read; confirmations = head − block_number + 1.
    """

    network: str
    transaction: str
    head: int
    mined: bool
    known: bool
    status: int | None = None
    block_number: int | None = None
    block_hash: str | None = None
    tx_from: str | None = None
    tx_to: str | None = None
    logs: tuple[TxLog, ...] = ()

    @property
    def confirmations(self) -> int:
        if not self.mined or self.block_number is None:
            return 0
        return max(0, self.head - self.block_number + 1)


@dataclass(frozen=True, slots=True)
class PaymentCheck:
    """The frozen payment verdict of one receipt proof (stored as JSON with the proof)."""

    status: PaymentStatus
    reason: Reason | None
    network: str
    transaction: str
    asset: str | None = None
    pay_to: str | None = None
    amount: str | None = None  # atomic units, decimal string (observed when no offer fixed it)
    payer: str | None = None
    method: str | None = None  # eip3009 | permit2 | transfer
    block_number: int | None = None
    confirmations: int = 0
    checked_at: int = 0
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """camelCase wire/storage shape."""
        return {
            "status": self.status.value,
            "reason": self.reason.value if self.reason else None,
            "network": self.network,
            "transaction": self.transaction,
            "asset": self.asset,
            "payTo": self.pay_to,
            "amount": self.amount,
            "payer": self.payer,
            "method": self.method,
            "blockNumber": self.block_number,
            "confirmations": self.confirmations,
            "checkedAt": self.checked_at,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PaymentCheck:
        """Inverse of ``to_json`` (unknown reason strings are dropped, never raised on: stored data is trusted)."""
        reason = data.get("reason")
        return cls(
            status=PaymentStatus(data["status"]),
            reason=Reason(str(reason)) if reason in Reason._value2member_map_ else None,
            network=str(data.get("network", "")),
            transaction=str(data.get("transaction", "")),
            asset=data.get("asset"),
            pay_to=data.get("payTo"),
            amount=data.get("amount"),
            payer=data.get("payer"),
            method=data.get("method"),
            block_number=data.get("blockNumber"),
            confirmations=int(data.get("confirmations") or 0),
            checked_at=int(data.get("checkedAt") or 0),
            detail=str(data.get("detail", "")),
        )

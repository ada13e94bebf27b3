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

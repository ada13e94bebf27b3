"""ABI codecs of the OMATrust attestations besides the User Review: Key Binding, Controller Witness, Linked
Identifier and User Review Response, each decoded with its exact EAS schema string (PROTOCOLS.md §8).

A UID whose schema string we know is decoded under that string; prior versions whose fields differ are decoded
under their own string and mapped onto the same record (missing fields get neutral values). Decoding is strict:
the bytes must be the canonical encoding (``service.chain.codec.decode_canonical``: checked while walking the bytes,
before any value is built), so aliased, padded or oversized data is refused without expanding it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_abi.exceptions import EncodingError

from service.chain.codec import decode_canonical, schema_types, schema_uid
from service.domain import Reason
from service.errors import MalformedInput
from service.records import (
    CONTROLLER_WITNESS,
    KEY_BINDING,
    LINKED_IDENTIFIER,
    USER_REVIEW_RESPONSE,
    ControllerWitness,
    KeyBinding,
    LinkedIdentifier,
    ReviewResponse,
)

KEY_BINDING_SCHEMA = (
    "string subject, string keyId, string publicKeyJwk, string[] keyPurpose, string[] proofs, uint256 issuedAt, "
    "uint256 effectiveAt, uint256 expiresAt"
)
CONTROLLER_WITNESS_SCHEMA = "string subject, string controller, string method, uint256 observedAt"
LINKED_IDENTIFIER_SCHEMA = (
    "string subject, string linkedId, string[] proofs, uint256 issuedAt, uint256 effectiveAt, uint256 expiresAt"
)
LINKED_IDENTIFIER_WITH_METHOD_SCHEMA = (  # the testnet versions (revocable and not)
    "string subject, string linkedId, string method, string[] proofs, uint256 issuedAt, uint256 effectiveAt, "
    "uint256 expiresAt"
)
REVIEW_RESPONSE_SCHEMA = "string subject, string refUID, string responseBody"

MAX_DATA_BYTES = 64 * 1024

Record = KeyBinding | ControllerWitness | LinkedIdentifier | ReviewResponse


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    name: str  # the anchored schema name
    schema: str  # the exact EAS schema string
    revocable: bool
    build: Callable[[tuple[Any, ...]], Record]

    @property
    def uid(self) -> str:
        return schema_uid(self.schema, revocable=self.revocable)


def _key_binding(v: tuple[Any, ...]) -> Record:
    subject, key_id, jwk, purposes, proofs, issued_at, effective_at, expires_at = v
    return KeyBinding(subject=subject, key_id=key_id, public_key_jwk=jwk, key_purpose=tuple(purposes),
                      proofs=tuple(proofs), issued_at=issued_at, effective_at=effective_at,
                      expires_at=expires_at)  # fmt: skip


def _witness(v: tuple[Any, ...]) -> Record:
    subject, controller, method, observed_at = v
    return ControllerWitness(subject=subject, controller=controller, method=method, observed_at=observed_at)


def _linked(v: tuple[Any, ...]) -> Record:
    subject, linked_id, proofs, issued_at, effective_at, expires_at = v
    return LinkedIdentifier(subject=subject, linked_id=linked_id, method="", proofs=tuple(proofs),
                            issued_at=issued_at, effective_at=effective_at, expires_at=expires_at)  # fmt: skip


def _linked_with_method(v: tuple[Any, ...]) -> Record:
    subject, linked_id, method, proofs, issued_at, effective_at, expires_at = v
    return LinkedIdentifier(subject=subject, linked_id=linked_id, method=method, proofs=tuple(proofs),
                            issued_at=issued_at, effective_at=effective_at, expires_at=expires_at)  # fmt: skip


def _response(v: tuple[Any, ...]) -> Record:
    subject, ref_uid, body = v
    return ReviewResponse(subject=subject, ref_uid=ref_uid, response_body=body)


# Every schema version we can decode, by UID (unknown older shapes are stored as rejects: "schema-mismatch").
VERSIONS: dict[str, SchemaVersion] = {
    v.uid: v
    for v in (
        SchemaVersion(KEY_BINDING, KEY_BINDING_SCHEMA, True, _key_binding),
        SchemaVersion(KEY_BINDING, KEY_BINDING_SCHEMA, False, _key_binding),  # the first testnet version
        SchemaVersion(CONTROLLER_WITNESS, CONTROLLER_WITNESS_SCHEMA, False, _witness),
        SchemaVersion(LINKED_IDENTIFIER, LINKED_IDENTIFIER_SCHEMA, True, _linked),
        SchemaVersion(LINKED_IDENTIFIER, LINKED_IDENTIFIER_WITH_METHOD_SCHEMA, True, _linked_with_method),
        SchemaVersion(LINKED_IDENTIFIER, LINKED_IDENTIFIER_WITH_METHOD_SCHEMA, False, _linked_with_method),
        SchemaVersion(USER_REVIEW_RESPONSE, REVIEW_RESPONSE_SCHEMA, False, _response),
    )
}


def encode_record(*, schema: str, values: list[Any]) -> bytes:
    """ABI-encode ``values`` under ``schema`` (as the EAS SDK's ``SchemaEncoder`` does).

    Raises:
        MalformedInput(ATTESTATION_DATA_INVALID): a value does not fit its type.
    """
    try:
        return encode(schema_types(schema), values)
    except (EncodingError, TypeError, ValueError, OverflowError) as exc:
        raise MalformedInput(Reason.ATTESTATION_DATA_INVALID, f"cannot encode ({type(exc).__name__})") from exc


def decode_attestation(*, schema_uid: str, data: bytes) -> Record:
    """Decode ``data`` of an attestation under ``schema_uid`` into its record.

    Raises:
        MalformedInput(SCHEMA_MISMATCH): no codec for that schema UID.
        MalformedInput(ATTESTATION_DATA_INVALID): not the canonical encoding, over a budget, NUL in a string.
    """
    version = VERSIONS.get(schema_uid.lower())
    if version is None:
        raise MalformedInput(Reason.SCHEMA_MISMATCH, f"no codec for schema {schema_uid}")
    data = bytes(data)
    if len(data) > MAX_DATA_BYTES:
        raise MalformedInput(Reason.ATTESTATION_DATA_INVALID, f"data is larger than {MAX_DATA_BYTES} bytes")
    types = schema_types(version.schema)
    # Canonical-first and bounded: every offset, length and padding is checked before a value is built, so a few
    # KiB of aliased offsets cannot expand into gigabytes (eth_abi would build them first).
    values: tuple[Any, ...] = decode_canonical(types=types, data=data)
    if encode(types, list(values)) != data:  # belt and braces: the walk above should make this impossible
        raise MalformedInput(Reason.ATTESTATION_DATA_INVALID, "data is not the canonical encoding")
    return version.build(values)

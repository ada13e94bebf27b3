"""Decoded OMATrust attestations (Key Binding, Controller Witness, Linked Identifier, User Review Response), shared by
the chain codec that builds them (``service.chain.omatrust_codec``), the store that keeps them and the verdicts that
judge them (``service.verdicts.onchain``). Field names follow the EAS schema strings (PROTOCOLS.md §8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

USER_REVIEW = "user-review"
USER_REVIEW_RESPONSE = "user-review-response"
KEY_BINDING = "key-binding"
CONTROLLER_WITNESS = "controller-witness"
LINKED_IDENTIFIER = "linked-identifier"
ANCHORED_SCHEMAS = (USER_REVIEW, USER_REVIEW_RESPONSE, KEY_BINDING, CONTROLLER_WITNESS, LINKED_IDENTIFIER)


@dataclass(frozen=True, slots=True)
class KeyBinding:
    subject: str
    key_id: str
    public_key_jwk: str
    key_purpose: tuple[str, ...]
    proofs: tuple[str, ...]
    issued_at: int
    effective_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class ControllerWitness:
    subject: str
    controller: str
    method: str
    observed_at: int


@dataclass(frozen=True, slots=True)
class LinkedIdentifier:
    subject: str
    linked_id: str
    method: str
    proofs: tuple[str, ...]
    issued_at: int
    effective_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class ReviewResponse:
    subject: str
    ref_uid: str
    response_body: str


T = TypeVar("T", KeyBinding, ControllerWitness, LinkedIdentifier, ReviewResponse)


@dataclass(frozen=True, slots=True)
class Attested(Generic[T]):
    """A decoded attestation with what EAS says about it (``revocation_time`` 0: not revoked)."""

    uid: str
    attester: str
    time: int
    revocation_time: int
    record: T

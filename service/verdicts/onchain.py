"""OMATrust on-chain authorization: Key Binding and Controller Witness tiers, and payer ↔ attester linkage.

Rules (PROTOCOLS.md §8; choices in docs/authorization.md), all judged **as of** a time ``at`` (a receipt's
``issuedAt``; for the payer link, the review's time):

* **identifier match** — an identifier (``keyId``, ``controller``, ``linkedId``) names a signer when it is the same
  DID (the kid, or the kid's DID), the same EVM address on any chain (``did:pkh:eip155:<any>:0x…`` against the
  recovered address or the address of a secp256k1 key), or embeds the same public key (did:jwk / did:key);
* **key-binding** — a Key Binding whose ``subject`` is the service DID and whose ``keyId`` (or ``publicKeyJwk``)
  names the signer, ``keyPurpose`` includes ``assertionMethod``, ``effectiveAt ≤ at < expiresAt`` (``expiresAt``
  0: none; ``effectiveAt`` 0: its ``issuedAt``), not revoked at or before ``at``; and its EAS attester speaks for
  the subject: the subject itself (did:pkh of the attester), an approved ``key-binding`` issuer, or an address an
  approved Controller Witness saw as a controller of the subject no later than ``at``;
* **controller-witness** — a Controller Witness whose attester is an approved ``controller-witness`` issuer,
  ``subject`` is the service DID, ``controller`` names the signer, ``observedAt ≤ at``;
* **payer link** — the payer's wallet lets the attester use its receipts: a Linked Identifier or Key Binding
  **attested by the payer** whose subject is the payer (did:pkh, any chain) and whose ``linkedId`` / ``keyId`` names
  the attester's address, in its window at ``at`` and not revoked at or before ``at``. A link the attester makes
  alone proves nothing (receipts are bearer artifacts).

When no attestation vouches, the nearest miss is reported with its own reason (revoked, outside its window, witness
not approved, witness too late, ...), so a caller can say why a binding it saw did not count.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from service.dids import normalize_did
from service.domain import AuthTier, Reason
from service.errors import MalformedInput
from service.proofs.didkeys import embedded_public_key
from service.proofs.keys import evm_address_of_jwk, public_key_bytes, public_params, same_public_key
from service.records import (
    CONTROLLER_WITNESS,
    KEY_BINDING,
    Attested,
    ControllerWitness,
    KeyBinding,
    LinkedIdentifier,
    ReviewResponse,
)
from service.verdicts.anchors import TrustAnchors

ASSERTION_METHOD = "assertionMethod"
__all__ = ["Attested", "ControllerWitness", "KeyBinding", "LinkedIdentifier", "ReviewResponse"]  # re-exported


class AttestationLookup(Protocol):
    """Stored OMATrust attestations by subject key (``subject_key``), any anchored schema version, revoked ones
    included (the rules decide what revocation means at a time).

    Raises (each method): CouldNotCheck when the store cannot be read.
    """

    def key_bindings(self, *, subject: str) -> Sequence[Attested[KeyBinding]]: ...

    def controller_witnesses(self, *, subject: str) -> Sequence[Attested[ControllerWitness]]: ...

    def linked_identifiers(self, *, subject: str) -> Sequence[Attested[LinkedIdentifier]]: ...


def _pkh_address(did: str) -> str | None:
    parts = did.split("#", 1)[0].split(":")
    if len(parts) == 5 and parts[:3] == ["did", "pkh", "eip155"] and len(parts[4]) == 42:
        return parts[4].lower()
    return None


def subject_key(did: str) -> str:
    """The key attestations are stored and looked up by: ``eip155:<address>`` for a did:pkh EVM account (the same
    account on every chain), else the normalized DID."""
    address = _pkh_address(did.strip())
    return f"eip155:{address}" if address else normalize_did(did)


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signed: a DID (JWS kid), an EVM address (EIP-712, or a secp256k1 key), and/or a public JWK."""

    kid: str | None = None
    address: str | None = None
    jwk: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, *, signer: str, jwk: Mapping[str, Any] | None) -> Signer:
        """From an artifact verdict's signer (checksummed address or kid) and the key resolved from the kid."""
        if signer.startswith("0x"):
            return cls(address=signer.lower())
        address = evm_address_of_jwk(jwk) if jwk is not None else None
        return cls(kid=signer, address=address.lower() if address else None, jwk=jwk)


def _same_did(a: str, b: str) -> bool:
    return normalize_did(a, strip_www=False) == normalize_did(b, strip_www=False)


def _embeds(did: str, jwk: Mapping[str, Any]) -> bool:
    embedded = embedded_public_key(did)
    if embedded is None:
        return False
    try:
        params = public_params(jwk)
        return embedded == (params[1], public_key_bytes(params))
    except MalformedInput:
        return False


def names_signer(identifier: str, signer: Signer) -> bool:
    """Does ``identifier`` name ``signer`` (exact DID, same EVM address on any chain, or same key)?"""
    identifier = identifier.strip()
    if not identifier:
        return False
    if signer.kid is not None and (_same_did(identifier, signer.kid) or
                                   _same_did(identifier, signer.kid.split("#", 1)[0])):  # fmt: skip
        return True
    address = _pkh_address(identifier)
    if address is not None and signer.address is not None and address == signer.address:
        return True
    return signer.jwk is not None and _embeds(identifier, signer.jwk)


def _jwk_names_signer(raw: str, signer: Signer) -> bool:
    try:
        jwk = json.loads(raw) if raw else None
    except ValueError:
        return False
    if not isinstance(jwk, dict):
        return False
    if signer.jwk is not None and same_public_key(jwk, signer.jwk):
        return True
    address = evm_address_of_jwk(jwk)
    return address is not None and signer.address is not None and address.lower() == signer.address


@dataclass(frozen=True, slots=True)
class OnchainVouch:
    """An attestation that vouches: its tier, UID and the window it is valid in (``until`` None: open-ended)."""

    tier: AuthTier
    uid: str
    since: int
    until: int | None


@dataclass(frozen=True, slots=True)
class OnchainMiss:
    """An attestation that would have vouched but does not at that time, and why."""

    reason: Reason
    uid: str
    detail: str


def _revoked_by(revocation_time: int, at: int) -> bool:
    return revocation_time != 0 and revocation_time <= at  # revocation is prospective


def _window(*, issued_at: int, effective_at: int, expires_at: int, time: int) -> tuple[int, int | None]:
    since = effective_at or issued_at or time
    return since, (expires_at or None)


def _window_miss(uid: str, since: int, until: int | None, revoked: int, at: int, what: str) -> OnchainMiss | None:
    if _revoked_by(revoked, at):
        return OnchainMiss(Reason.ATTESTATION_REVOKED, uid, f"{what} {uid} revoked at {revoked} ≤ {at}")
    if not since <= at or (until is not None and at >= until):
        return OnchainMiss(Reason.ATTESTATION_NOT_EFFECTIVE, uid,
                           f"{what} {uid} valid [{since}, {until or '∞'}), not at {at}")  # fmt: skip
    return None


def _witnessed_controller(*, subject: str, address: str, at: int, lookup: AttestationLookup,
                          anchors: TrustAnchors) -> bool:  # fmt: skip
    who = Signer(address=address.lower())
    return any(
        anchors.is_approved(address=w.attester, schema=CONTROLLER_WITNESS)
        and _same_did(w.record.subject, subject)
        and names_signer(w.record.controller, who)
        and w.record.observed_at <= at
        for w in lookup.controller_witnesses(subject=subject_key(subject))
    )


def _binding_issuer_ok(b: Attested[KeyBinding], *, subject: str, at: int, lookup: AttestationLookup,
                       anchors: TrustAnchors) -> bool:  # fmt: skip
    if _pkh_address(subject) == b.attester.lower() or anchors.is_approved(address=b.attester, schema=KEY_BINDING):
        return True
    return _witnessed_controller(subject=subject, address=b.attester, at=at, lookup=lookup, anchors=anchors)


def by_key_binding(*, service_did: str, signer: Signer, at: int, lookup: AttestationLookup,
                   anchors: TrustAnchors) -> OnchainVouch | OnchainMiss | None:  # fmt: skip
    """The Key Binding tier (module docstring): a vouch, the nearest miss, or None (no binding names the signer).

    Raises: CouldNotCheck from ``lookup``.
    """
    miss: OnchainMiss | None = None
    for b in lookup.key_bindings(subject=subject_key(service_did)):
        rec = b.record
        if not _same_did(rec.subject, service_did):
            continue
        if not (names_signer(rec.key_id, signer) or _jwk_names_signer(rec.public_key_jwk, signer)):
            continue
        if ASSERTION_METHOD not in rec.key_purpose:
            miss = miss or OnchainMiss(Reason.KEY_PURPOSE_MISMATCH, b.uid, f"key binding {b.uid} is not for "
                                       f"{ASSERTION_METHOD} ({', '.join(rec.key_purpose)})")  # fmt: skip
            continue
        since, until = _window(issued_at=rec.issued_at, effective_at=rec.effective_at, expires_at=rec.expires_at,
                               time=b.time)  # fmt: skip
        why = _window_miss(b.uid, since, until, b.revocation_time, at, "key binding")
        if why is None and not _binding_issuer_ok(b, subject=service_did, at=at, lookup=lookup, anchors=anchors):
            detail = f"key binding {b.uid}: attester {b.attester} does not speak for {service_did}"
            why = OnchainMiss(Reason.ISSUER_NOT_APPROVED, b.uid, detail)
        if why is None:
            return OnchainVouch(AuthTier.KEY_BINDING, b.uid, since, until)
        miss = miss or why
    return miss


def by_controller_witness(*, service_did: str, signer: Signer, at: int, lookup: AttestationLookup,
                          anchors: TrustAnchors) -> OnchainVouch | OnchainMiss | None:  # fmt: skip
    """The Controller Witness tier (module docstring): a vouch, the nearest miss, or None.

    Raises: CouldNotCheck from ``lookup``.
    """
    miss: OnchainMiss | None = None
    for w in lookup.controller_witnesses(subject=subject_key(service_did)):
        rec = w.record
        if not _same_did(rec.subject, service_did) or not names_signer(rec.controller, signer):
            continue
        if not anchors.is_approved(address=w.attester, schema=CONTROLLER_WITNESS):
            miss = miss or OnchainMiss(Reason.ISSUER_NOT_APPROVED, w.uid,
                                       f"witness {w.uid}: {w.attester} is not an approved witness")  # fmt: skip
            continue
        if rec.observed_at > at:
            miss = miss or OnchainMiss(Reason.ATTESTATION_NOT_EFFECTIVE, w.uid,
                                       f"witness {w.uid} observed at {rec.observed_at}, after {at}")  # fmt: skip
            continue
        return OnchainVouch(AuthTier.CONTROLLER_WITNESS, w.uid, rec.observed_at, None)
    return miss


def payer_link(*, payer: str, attester: str, at: int, lookup: AttestationLookup) -> OnchainVouch | OnchainMiss | None:
    """Does the payer's wallet let ``attester`` use its receipts at ``at``? (module docstring)

    Raises: CouldNotCheck from ``lookup``.
    """
    payer_l, who = payer.lower(), Signer(address=attester.lower())
    key = f"eip155:{payer_l}"
    miss: OnchainMiss | None = None
    candidates: list[tuple[str, Attested[Any], str, int, int, int]] = []
    for li in lookup.linked_identifiers(subject=key):
        r = li.record
        candidates.append(("linked identifier", li, r.linked_id, r.issued_at, r.effective_at, r.expires_at))
    for kb in lookup.key_bindings(subject=key):
        r2 = kb.record
        candidates.append(("key binding", kb, r2.key_id, r2.issued_at, r2.effective_at, r2.expires_at))
    for what, att, linked, issued, effective, expires in candidates:
        if att.attester.lower() != payer_l or _pkh_address(att.record.subject) != payer_l:
            continue  # only the payer can lend its receipts
        if not names_signer(linked, who):
            continue
        since, until = _window(issued_at=issued, effective_at=effective, expires_at=expires, time=att.time)
        why = _window_miss(att.uid, since, until, att.revocation_time, at, what)
        if why is None:
            tier = AuthTier.KEY_BINDING if what == "key binding" else AuthTier.LINKED_IDENTIFIER
            return OnchainVouch(tier, att.uid, since, until)
        miss = miss or why
    return miss


@dataclass(slots=True)
class OnchainContext:
    """What the on-chain tiers need: the stored attestations, the trust anchors, and the time to judge an artifact
    without an ``issuedAt`` (an offer) at. ``windows`` remembers the window of each attestation that vouched, by
    UID, so the verdict can record it."""

    lookup: AttestationLookup
    anchors: TrustAnchors
    now: int
    windows: dict[str, tuple[int, int | None]] = field(default_factory=dict)

    def window_text(self, uid: str) -> str:
        since, until = self.windows.get(uid, (0, None))
        return f"attestation {uid} valid from {since} until {until if until is not None else 'no expiry'}"


@runtime_checkable
class HasOnchain(Protocol):
    """Tier evidence that can also answer the on-chain tiers (``None``: no attestation store configured)."""

    def onchain_context(self) -> OnchainContext | None: ...


def evidence_of(uid: str) -> str:
    """The evidence hash recorded for an attestation UID (its 64 hex digits, as evidence hashes are)."""
    return uid.lower().removeprefix("0x")


def uid_of(evidence_hash: str) -> str:
    return "0x" + evidence_hash


ONCHAIN_TIERS = frozenset({AuthTier.KEY_BINDING, AuthTier.CONTROLLER_WITNESS})

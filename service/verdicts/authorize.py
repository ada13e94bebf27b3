"""Signature ≠ authorization: decide whether a signer may speak for the service of an artifact.

The service of an artifact is ``did:web:<host of payload.resourceUrl>``. Tiers, tried in this order (the first
that matches wins and is returned with its evidence hash):

0. ``key-binding`` then ``controller-witness`` — OMATrust attestations on chain, as of the receipt's ``issuedAt``
   (rules: ``service.verdicts.onchain``; only when the evidence offers them, ``HasOnchain``). Evidence: the
   attestation UID's 64 hex digits.

1. ``did-document`` — the service's did:web document lists the signer. EIP-712: a verification method whose
   ``address`` (from ``blockchainAccountId``, chain-agnostic) or secp256k1 ``publicKeyJwk`` gives the recovered
   address, compared case-insensitively. JWS: a verification method whose public key equals the resolved key, or
   the ``kid`` is a verification method of the service's own document. **Choice:** when the document declares an
   ``assertionMethod`` list, the matching method must be in it (a key published for, say, key agreement does not
   sign receipts); when it declares none, every verification method counts (many did:web documents for x402
   services list keys only under ``verificationMethod``, and the TS SDK resolves any of them).
   Evidence: the document's ``snapshot_hash``.
2. ``dns-txt`` — a ``_controllers`` TXT record of the service's host names the signer. EIP-712: a
   ``did:pkh:eip155:<chain>:0x…`` controller with the signer's address (case-insensitive). JWS: the kid's DID
   (before ``#``) is a controller DID, or a did:jwk/did:key controller embeds the resolved key.
   Evidence: ``service.verdicts.evidence.controllers_hash``.
3. ``offer-payto`` — EIP-712 receipts only (allowed by the x402 spec, discouraged): the receipt signer is the
   ``payTo`` of one of the given ``offers`` whose ``resourceUrl`` has the same host. The caller passes only offers
   whose signature verified **and whose signer is itself authorized for the service** (tiers 1–2 or a key
   binding; ``service.verdicts.artifact`` does exactly that) — anyone can sign an offer naming their own
   ``payTo``, so an offer that is merely well-signed vouches for nothing. Evidence: the offer's ``replay_key``.

The tiers are ``TIERS``; each asks a ``TierEvidence`` for what it needs only when its turn comes (a later tier's
look-up is made only when the earlier ones did not vouch). Which evidence is asked — fresh look-ups
(``service.verdicts.artifact``) or stored snapshots (as of ``issuedAt``, ``service.verdicts.as_of``) — is the
caller's choice; this module only compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from service.dids import did_web_for_url, normalize_did
from service.domain import (
    ArtifactFormat,
    ArtifactKind,
    AuthTier,
    ControllerRecord,
    DidDocument,
    OfferPayload,
    Reason,
    ReceiptPayload,
    SignedArtifact,
    VerificationKey,
)
from service.errors import CouldNotCheck, MalformedInput, Unauthorized
from service.proofs.didkeys import embedded_public_key
from service.proofs.keys import evm_address_of_jwk, public_key_bytes, public_params, same_public_key
from service.verdicts.evidence import controller_host, controllers_hash
from service.verdicts.onchain import (
    HasOnchain,
    OnchainMiss,
    OnchainVouch,
    Signer,
    by_controller_witness,
    by_key_binding,
    evidence_of,
)


def service_did_for(artifact: SignedArtifact) -> str:
    """``did:web:<host[:port]>`` of the artifact's ``resourceUrl`` (the service the signer must speak for).

    Raises:
        MalformedInput: BAD_FIELD_VALUE when the resourceUrl has no host.
    """
    return did_web_for_url(artifact.payload.resource_url)


def _same_did(a: str, b: str) -> bool:
    return normalize_did(a, strip_www=False) == normalize_did(b, strip_www=False)


def _kid_did(kid: str) -> str:
    return kid.split("#", 1)[0]


def _document_authorizes(
    artifact: SignedArtifact, signer: str, key: VerificationKey | None, document: DidDocument, service_did: str
) -> bool:
    if not _same_did(document.id, service_did):
        return False  # a document of another DID says nothing about this service
    candidates = [vm for vm in document.keys if not document.assertion_method or vm.id in document.assertion_method]
    if artifact.format is ArtifactFormat.EIP712:
        wanted = signer.lower()
        for vm in candidates:
            address = vm.address or (evm_address_of_jwk(vm.jwk) if vm.jwk else None)
            if address is not None and address.lower() == wanted:
                return True
        return False
    for vm in candidates:
        if key is not None and key.jwk is not None and vm.jwk is not None and same_public_key(vm.jwk, key.jwk):
            return True
        if _same_did(_kid_did(signer), document.id) and vm.id in (signer, key.id if key is not None else None):
            return True
    return False


def _pkh_address(controller: str) -> str | None:
    parts = controller.split(":")
    if len(parts) == 5 and parts[:3] == ["did", "pkh", "eip155"]:
        return parts[4].lower()
    return None


def _key_equals_embedded(key: VerificationKey, controller: str) -> bool:
    if key.jwk is None:
        return False
    embedded = embedded_public_key(controller)
    if embedded is None:
        return False
    try:
        params = public_params(key.jwk)
        return embedded == (params[1], public_key_bytes(params))
    except MalformedInput:
        return False


def _dns_authorizes(
    artifact: SignedArtifact, signer: str, key: VerificationKey | None, record: ControllerRecord
) -> bool:
    host = controller_host(artifact.payload.resource_url)  # parsed already by service_did_for: cannot raise
    domain = record.domain.lower().rstrip(".")
    if domain not in (host, host.removeprefix("www.")):
        return False  # a record for another domain says nothing about this service
    if artifact.format is ArtifactFormat.EIP712:
        return any(_pkh_address(c) == signer.lower() for c in record.controllers)
    kid_did = _kid_did(signer)
    for controller in record.controllers:
        if _same_did(_kid_did(controller), kid_did):
            return True
        if key is not None and _key_equals_embedded(key, controller):
            return True
    return False


TrustedOffers = Sequence[tuple[SignedArtifact, str]]  # (offer whose signer is authorized for the service, signer)


class TierEvidence(Protocol):
    """What the tiers look at, asked for only when a tier gets its turn.

    Raises (each method): CouldNotCheck when the evidence could not be looked up.
    """

    def service_document(self, *, did: str) -> DidDocument | None: ...

    def host_controllers(self, *, host: str) -> ControllerRecord | None: ...

    def trusted_offers(self) -> TrustedOffers: ...


class Vouch(Protocol):
    """One tier: the evidence hash when the tier authorizes ``signer`` for ``service_did``, else None.

    Raises: CouldNotCheck from ``evidence``.
    """

    def __call__(
        self,
        artifact: SignedArtifact,
        signer: str,
        key: VerificationKey | None,
        service_did: str,
        evidence: TierEvidence,
    ) -> str | None: ...


def _by_document(
    artifact: SignedArtifact, signer: str, key: VerificationKey | None, service_did: str, evidence: TierEvidence
) -> str | None:
    document = evidence.service_document(did=service_did)
    if document is not None and _document_authorizes(artifact, signer, key, document, service_did):
        return document.snapshot_hash
    return None


def _by_dns(
    artifact: SignedArtifact, signer: str, key: VerificationKey | None, service_did: str, evidence: TierEvidence
) -> str | None:
    record = evidence.host_controllers(host=controller_host(artifact.payload.resource_url))
    if record is not None and _dns_authorizes(artifact, signer, key, record):
        return controllers_hash(record)
    return None


def _by_offer(
    artifact: SignedArtifact, signer: str, key: VerificationKey | None, service_did: str, evidence: TierEvidence
) -> str | None:
    if artifact.format is not ArtifactFormat.EIP712 or artifact.kind is not ArtifactKind.RECEIPT:
        return None
    for offer, _offer_signer in evidence.trusted_offers():
        if _offer_vouches(offer, signer, service_did):
            return offer.replay_key
    return None


def _onchain(
    rule: object, artifact: SignedArtifact, signer: str, key: VerificationKey | None, service_did: str,
    evidence: TierEvidence,
) -> str | None:
    """An on-chain tier (``service.verdicts.onchain``), judged as of the receipt's ``issuedAt`` (an offer: now).
    A near miss (revoked, outside its window, unapproved witness) raises ``Unauthorized`` with its reason."""
    # Not isinstance(evidence, HasOnchain): a runtime-checkable Protocol check costs ~7 µs a call on Python 3.11
    # (twice per receipt: ~1/8 of judging one); this is the same test (the method is present and not None).
    context = cast(HasOnchain, evidence).onchain_context() if _has_onchain(evidence) else None
    if context is None:
        return None
    payload = artifact.payload
    at = payload.issued_at if isinstance(payload, ReceiptPayload) else context.now
    who = Signer.of(signer=signer, jwk=key.jwk if key is not None else None)
    assert rule is by_key_binding or rule is by_controller_witness
    found = rule(service_did=service_did, signer=who, at=at, lookup=context.lookup, anchors=context.anchors)
    if isinstance(found, OnchainMiss):
        raise Unauthorized(found.reason, found.detail)
    if isinstance(found, OnchainVouch):
        context.windows[found.uid] = (found.since, found.until)
        return evidence_of(found.uid)
    return None


def _has_onchain(evidence: object) -> bool:
    return getattr(evidence, "onchain_context", None) is not None


def _by_key_binding(
    artifact: SignedArtifact, signer: str, key: VerificationKey | None, service_did: str, evidence: TierEvidence
) -> str | None:
    return _onchain(by_key_binding, artifact, signer, key, service_did, evidence)


def _by_witness(
    artifact: SignedArtifact, signer: str, key: VerificationKey | None, service_did: str, evidence: TierEvidence
) -> str | None:
    return _onchain(by_controller_witness, artifact, signer, key, service_did, evidence)


# The tiers, in the order they are tried; the first that vouches wins (a new tier: its function and a line here).
# On-chain attestations first: they survive the service's website going away (docs/authorization.md).
TIERS: tuple[tuple[AuthTier, Vouch], ...] = (
    (AuthTier.KEY_BINDING, _by_key_binding),
    (AuthTier.CONTROLLER_WITNESS, _by_witness),
    (AuthTier.DID_DOCUMENT, _by_document),
    (AuthTier.DNS_TXT, _by_dns),
    (AuthTier.OFFER_PAYTO, _by_offer),
)


def authorize_with(
    *, artifact: SignedArtifact, signer: str, key: VerificationKey | None, service_did: str, evidence: TierEvidence
) -> tuple[AuthTier, str | None]:
    """Try the tiers in order → (first tier that vouches, its evidence hash).

    A tier whose evidence could not be looked up does not stop the others; when none vouches, that failure is
    raised (the verdict is then "could not check", not "unauthorized").

    Raises:
        Unauthorized: SIGNER_NOT_AUTHORIZED (every tier was checked), or the reason an on-chain attestation naming
            the signer did not count (ATTESTATION_REVOKED, ATTESTATION_NOT_EFFECTIVE, KEY_PURPOSE_MISMATCH,
            ISSUER_NOT_APPROVED).
        CouldNotCheck: no tier vouched and a look-up failed (the first failure).
    """
    failed: CouldNotCheck | None = None
    missed: Unauthorized | None = None  # an on-chain attestation that names the signer but does not count
    for tier, vouch in TIERS:
        try:
            found = vouch(artifact, signer, key, service_did, evidence)
        except CouldNotCheck as exc:
            failed = failed or exc
            continue
        except Unauthorized as exc:
            missed = missed or exc
            continue
        if found is not None:
            return tier, found
    if failed is not None:
        raise failed
    if missed is not None:
        raise missed
    raise Unauthorized(Reason.SIGNER_NOT_AUTHORIZED, f"{signer} is not authorized for {service_did}")


@dataclass(frozen=True, slots=True)
class GivenEvidence:
    """Evidence already in hand (``TierEvidence`` that never fails)."""

    document: DidDocument | None = None
    controllers: ControllerRecord | None = None
    offers: TrustedOffers = ()

    def service_document(self, *, did: str) -> DidDocument | None:
        return self.document

    def host_controllers(self, *, host: str) -> ControllerRecord | None:
        return self.controllers

    def trusted_offers(self) -> TrustedOffers:
        return self.offers


def authorize(
    *,
    artifact: SignedArtifact,
    signer: str,
    key: VerificationKey | None,
    document: DidDocument | None,
    controllers: ControllerRecord | None,
    offers: TrustedOffers = (),
) -> tuple[AuthTier, str | None]:
    """Find how ``signer`` is authorized for the artifact's service from evidence in hand (module docstring).

    ``signer`` is the recovered address (EIP-712) or the kid (JWS); ``key`` the key resolved from the kid (JWS);
    ``document`` the did:web document of the service DID; ``controllers`` its DNS controller record; ``offers``
    pairs of (offer whose signature verified and whose signer is authorized for the service, that signer).

    Raises:
        Unauthorized: SIGNER_NOT_AUTHORIZED.
    """
    try:
        service_did = service_did_for(artifact)
    except MalformedInput:
        raise Unauthorized(Reason.SIGNER_NOT_AUTHORIZED, "resourceUrl has no host, so no service") from None
    evidence = GivenEvidence(document=document, controllers=controllers, offers=offers)
    return authorize_with(artifact=artifact, signer=signer, key=key, service_did=service_did, evidence=evidence)


def _offer_vouches(offer: SignedArtifact, receipt_signer: str, service_did: str) -> bool:
    payload = offer.payload
    if not isinstance(payload, OfferPayload) or payload.pay_to.lower() != receipt_signer.lower():
        return False
    try:
        return _same_did(did_web_for_url(payload.resource_url), service_did)
    except MalformedInput:
        return False

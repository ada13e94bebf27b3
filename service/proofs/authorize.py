"""Signature ≠ authorization: decide whether a signer may speak for the service of an artifact.

The service of an artifact is ``did:web:<host of payload.resourceUrl>``. Tiers, tried in this order (the first
that matches wins and is returned with its evidence hash):

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
   Evidence: sha256 hex of the controllers joined with ``"\\n"``.
3. ``offer-payto`` — EIP-712 receipts only (allowed by the x402 spec, discouraged): the receipt signer is the
   ``payTo`` of one of the given ``offers`` whose ``resourceUrl`` has the same host. The caller passes only offers
   whose signature verified **and whose signer is itself authorized for the service** (tiers 1–2 or a key
   binding; ``service.workflows.verify`` does exactly that) — anyone can sign an offer naming their own
   ``payTo``, so an offer that is merely well-signed vouches for nothing. Evidence: the offer's ``replay_key``.

Which document/record snapshot is used (as of ``issuedAt``) is the caller's choice; this module only compares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from urllib.parse import urlsplit

from service.dids import did_web_for_url, normalize_did
from service.domain import (
    ArtifactFormat,
    ArtifactKind,
    AuthTier,
    ControllerRecord,
    DidDocument,
    OfferPayload,
    Reason,
    SignedArtifact,
    VerificationKey,
)
from service.errors import MalformedInput, Unauthorized

from .didkeys import embedded_public_key
from .keys import evm_address_of_jwk, public_key_bytes, public_params, same_public_key


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
    host = (urlsplit(artifact.payload.resource_url).hostname or "").lower().rstrip(".")
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


def _controllers_hash(record: ControllerRecord) -> str:
    return hashlib.sha256("\n".join(record.controllers).encode("utf-8")).hexdigest()


def authorize(
    *,
    artifact: SignedArtifact,
    signer: str,
    key: VerificationKey | None,
    document: DidDocument | None,
    controllers: ControllerRecord | None,
    offers: Sequence[tuple[SignedArtifact, str]] = (),
) -> tuple[AuthTier, str | None]:
    """Find how ``signer`` is authorized for the artifact's service; see the module docstring for the tiers.

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
    if document is not None and _document_authorizes(artifact, signer, key, document, service_did):
        return AuthTier.DID_DOCUMENT, document.snapshot_hash
    if controllers is not None and _dns_authorizes(artifact, signer, key, controllers):
        return AuthTier.DNS_TXT, _controllers_hash(controllers)
    if artifact.format is ArtifactFormat.EIP712 and artifact.kind is ArtifactKind.RECEIPT:
        for offer, _offer_signer in offers:
            if _offer_vouches(offer, signer, service_did):
                return AuthTier.OFFER_PAYTO, offer.replay_key
    raise Unauthorized(Reason.SIGNER_NOT_AUTHORIZED, f"{signer} is not authorized for {service_did}")


def _offer_vouches(offer: SignedArtifact, receipt_signer: str, service_did: str) -> bool:
    payload = offer.payload
    if not isinstance(payload, OfferPayload) or payload.pay_to.lower() != receipt_signer.lower():
        return False
    try:
        return _same_did(did_web_for_url(payload.resource_url), service_did)
    except MalformedInput:
        return False

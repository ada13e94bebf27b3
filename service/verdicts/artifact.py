"""The artifact verdict: one x402 offer or receipt → parse → signature → authorization → ``ProofOutcome``.

Every typed error becomes a frozen verdict here, never re-raised:

* ``CheckFailed`` subclasses → their own status (``invalid`` / ``unsupported`` / ``unauthorized``) and reason;
* ``CouldNotCheck`` (HTTP, DNS) → ``indeterminate`` with the look-up's reason — never a negative verdict.

Authorization tiers are tried in order — the did:web document of the ``resourceUrl`` host, then DNS
``_controllers`` TXT of that host, then (EIP-712 receipts) ``payTo`` of an authorized signed offer — and the first
match wins; a later tier's look-up is only made when the earlier ones did not match. ``unauthorized`` is only
reported when every tier was actually checked: if one look-up failed and no other tier matched, the verdict is
``indeterminate``.

Look-ups come in through ``service.verdicts.sources``; functions hold no state of their own, so they may be called
from many threads at once when the sources are thread-safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.dids import did_web_for_url
from service.domain import (
    ArtifactFormat,
    ArtifactKind,
    AuthTier,
    ControllerRecord,
    DidDocument,
    ProofOutcome,
    ProofStatus,
    Reason,
    SignedArtifact,
    VerificationKey,
)
from service.errors import CheckFailed, CouldNotCheck, MalformedInput, OmaTrustError
from service.proofs import parse_artifact, recover_eip712_signer, verify_jws
from service.verdicts.authorize import TrustedOffers, authorize_with
from service.verdicts.onchain import ONCHAIN_TIERS, OnchainContext, uid_of
from service.verdicts.registry import order_of_kind, spec_for_kind
from service.verdicts.sources import ControllerSource, DocumentSource, KeySource

ArtifactData = bytes | str | Mapping[str, Any]

# Tiers an offer must have been authorized by before its payTo may authorize a receipt signer (no recursion:
# an offer authorized only through another offer proves nothing).
OFFER_TRUST_TIERS = frozenset(
    {AuthTier.DID_DOCUMENT, AuthTier.DNS_TXT, AuthTier.KEY_BINDING, AuthTier.CONTROLLER_WITNESS}
)


@dataclass(frozen=True, slots=True)
class Checked:
    """A verdict plus the parsed artifact it is about (``None`` when the input did not parse)."""

    outcome: ProofOutcome
    artifact: SignedArtifact | None


def vouching_signer(artifact: SignedArtifact | None, outcome: ProofOutcome) -> str | None:
    """The signer of a verified artifact whose ``payTo`` may authorize receipt signers (see ``OFFER_TRUST_TIERS``
    and ``ProofTypeSpec.vouches``), else None."""
    if artifact is None or outcome.status is not ProofStatus.VERIFIED or outcome.tier not in OFFER_TRUST_TIERS:
        return None
    spec = spec_for_kind(artifact.kind)
    return outcome.signer if spec is not None and spec.vouches and outcome.signer else None


def check_artifact(
    *,
    data: ArtifactData,
    documents: DocumentSource | None,
    controllers: ControllerSource | None,
    now: int,
    local_keys: KeySource | None = None,
    offline: bool = False,
    offers: TrustedOffers = (),
    expect: ArtifactKind | None = None,
    onchain: OnchainContext | None = None,
) -> Checked:
    """Verify one offer or receipt (bare envelope or OMATrust proof wrapper): its verdict and parsed artifact.

    ``documents`` resolves did:web documents and kids; ``local_keys`` resolves the kids that need no look-up
    (did:key, did:jwk) when ``documents`` is missing or ``offline``. ``offers`` are already verified offers with
    their authorized signers; they only matter for the offer-payto tier. ``offline=True`` makes no look-up: a valid
    signature gives ``verified`` with ``tier=None`` and a JWS whose ``kid`` is a did:web is ``indeterminate``
    (``lookup-skipped``). A missing ``documents``/``controllers`` skips what needs it the same way.

    Never raises for bad or unreachable input; the verdict says what happened.
    """
    try:
        artifact = parse_artifact(data=data, expect=expect)
    except OmaTrustError as exc:
        return Checked(proof_outcome(status=exc.status, reason=exc.reason, now=now, detail=exc.detail), None)

    keys = documents if documents is not None and not offline else local_keys
    try:
        signer, key = _check_signature(artifact=artifact, keys=keys, web=documents is not None and not offline)
    except OmaTrustError as exc:
        return Checked(_from_error(exc, artifact=artifact, signer=None, now=now), artifact)

    tier: AuthTier | None = None
    evidence: str | None = None
    detail = "offline: signature only, authorization not checked"
    if not offline:
        try:
            tier, evidence = authorize_signer(
                artifact=artifact, signer=signer, key=key, documents=documents, controllers=controllers, offers=offers,
                onchain=onchain,
            )
        except OmaTrustError as exc:
            return Checked(_from_error(exc, artifact=artifact, signer=signer, now=now), artifact)
        detail = onchain.window_text(uid_of(evidence)) if onchain and tier in ONCHAIN_TIERS and evidence else ""
    outcome = proof_outcome(
        status=ProofStatus.VERIFIED,
        reason=None,
        now=now,
        artifact=artifact,
        signature_valid=True,
        signer=signer,
        tier=tier,
        evidence_hash=evidence,
        detail=detail,
    )
    return Checked(outcome, artifact)


def check_in_order(
    *,
    items: Sequence[tuple[ArtifactData, ArtifactKind | None]],
    documents: DocumentSource | None,
    controllers: ControllerSource | None,
    now: int,
    local_keys: KeySource | None = None,
    offline: bool = False,
    onchain: OnchainContext | None = None,
) -> list[Checked]:
    """Verify artifacts that travel together, each ``(data, expected kind)``; verdicts in input order.

    They are checked in the registry's order (offers first) so that an offer verified through the did:web
    document, DNS or a key binding may authorize an EIP-712 receipt whose signer is its ``payTo``. Never raises.
    """
    order = sorted(range(len(items)), key=lambda i: order_of_kind(items[i][1] or _kind_of(items[i][0])))
    checked: dict[int, Checked] = {}
    offers: list[tuple[SignedArtifact, str]] = []
    for index in order:
        data, expect = items[index]
        result = check_artifact(
            data=data,
            documents=documents,
            controllers=controllers,
            now=now,
            local_keys=local_keys,
            offline=offline,
            offers=tuple(offers),
            expect=expect,
            onchain=onchain,
        )
        checked[index] = result
        if result.artifact is not None and (signer := vouching_signer(result.artifact, result.outcome)) is not None:
            offers.append((result.artifact, signer))
    return [checked[index] for index in range(len(items))]


# ---- steps --------------------------------------------------------------------------------------------------


def _check_signature(
    *, artifact: SignedArtifact, keys: KeySource | None, web: bool
) -> tuple[str, VerificationKey | None]:
    """→ (signer, resolved JWS key). Signer is the recovered checksummed address (EIP-712) or the kid (JWS).

    Raises:
        CheckFailed: bad signature, unknown key, unsupported DID method.
        CouldNotCheck: the kid's document could not be fetched, or a fetch was needed but not allowed.
    """
    if artifact.format is ArtifactFormat.EIP712:
        return recover_eip712_signer(artifact=artifact), None
    kid = artifact.kid
    if not kid:
        raise MalformedInput(Reason.KID_MISSING, "JWS header has no kid")
    if kid.startswith("did:web:") and not web:
        raise CouldNotCheck(Reason.LOOKUP_SKIPPED, f"offline: the key of {kid} is in a did:web document")
    if keys is None:
        raise CouldNotCheck(Reason.LOOKUP_SKIPPED, f"no key resolver for {kid}")
    key, _document = keys.resolve_key(kid=kid)
    verify_jws(artifact=artifact, key=key)
    return kid, key


def authorize_signer(
    *,
    artifact: SignedArtifact,
    signer: str,
    key: VerificationKey | None,
    documents: DocumentSource | None,
    controllers: ControllerSource | None,
    offers: TrustedOffers = (),
    onchain: OnchainContext | None = None,
) -> tuple[AuthTier, str | None]:
    """The authorization tiers with fresh look-ups → (first tier that vouches, its evidence hash).

    Raises:
        Unauthorized: every tier was checked and none lists the signer.
        CouldNotCheck: no tier matched and at least one look-up failed or was skipped.
        MalformedInput: the resourceUrl has no host.
    """
    return authorize_with(
        artifact=artifact,
        signer=signer,
        key=key,
        service_did=did_web_for_url(artifact.payload.resource_url),
        evidence=_LookedUp(documents, controllers, offers, onchain),
    )


@dataclass(slots=True)
class _LookedUp:
    """``TierEvidence`` from the look-up sources. A missing source is a skipped look-up; a document that is missing
    or broken authorizes nobody (the other tiers still may)."""

    documents: DocumentSource | None
    controllers: ControllerSource | None
    offers: TrustedOffers
    onchain: OnchainContext | None = None

    def onchain_context(self) -> OnchainContext | None:
        return self.onchain

    def service_document(self, *, did: str) -> DidDocument | None:
        if self.documents is None:
            raise CouldNotCheck(Reason.LOOKUP_SKIPPED, "no DID resolver")
        try:
            return self.documents.resolve_document(did=did)
        except CheckFailed:
            return None

    def host_controllers(self, *, host: str) -> ControllerRecord | None:
        if self.controllers is None:
            raise CouldNotCheck(Reason.LOOKUP_SKIPPED, "no DNS resolver")
        return self.controllers.lookup(domain=host)

    def trusted_offers(self) -> TrustedOffers:
        return self.offers


def _kind_of(data: ArtifactData) -> ArtifactKind | None:
    try:
        return parse_artifact(data=data).kind
    except OmaTrustError:
        return None


def _from_error(exc: OmaTrustError, *, artifact: SignedArtifact, signer: str | None, now: int) -> ProofOutcome:
    # ``signer`` is only known once the signature verified: errors after that point (authorization, look-ups
    # for it) keep signature_valid=True.
    return proof_outcome(
        status=exc.status,
        reason=exc.reason,
        now=now,
        artifact=artifact,
        signature_valid=signer is not None,
        signer=signer,
        detail=exc.detail,
    )


def proof_outcome(
    *,
    status: ProofStatus,
    reason: Reason | None,
    now: int,
    artifact: SignedArtifact | None = None,
    signature_valid: bool = False,
    signer: str | None = None,
    tier: AuthTier | None = None,
    evidence_hash: str | None = None,
    detail: str = "",
) -> ProofOutcome:
    """A verdict about ``artifact`` (None: the input did not parse into one)."""
    return ProofOutcome(
        status=status,
        reason=reason,
        kind=artifact.kind if artifact else None,
        format=artifact.format if artifact else None,
        signature_valid=signature_valid,
        signer=signer,
        tier=tier,
        replay_key=artifact.replay_key if artifact else None,
        checked_at=now,
        evidence_hash=evidence_hash,
        detail=detail,
    )

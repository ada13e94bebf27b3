"""Verify x402 offers and receipts end to end: parse → signature → authorization → ``ProofOutcome``.

This is where the pure checks (``service.proofs``) meet the look-ups (``service.identity``). Every typed error is
turned into a frozen verdict here, never re-raised:

* ``CheckFailed`` subclasses → their own status (``invalid`` / ``unsupported`` / ``unauthorized``) and reason;
* ``CouldNotCheck`` (HTTP, DNS) → ``indeterminate`` with the look-up's reason — never a negative verdict.

Authorization tiers are tried in order — the did:web document of the ``resourceUrl`` host, then DNS
``_controllers`` TXT of that host, then (EIP-712 receipts) ``payTo`` of an authorized signed offer — and the first
match wins; a later tier's look-up is only made when the earlier ones did not match. ``unauthorized`` is only
reported when every tier was actually checked: if one look-up failed and no other tier matched, the verdict is
``indeterminate``.

Functions hold no state of their own, so they may be called from many threads at once (the resolvers they are given
must be thread-safe, as ``DidResolver`` / ``ControllerResolver`` are).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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
from service.errors import CheckFailed, CouldNotCheck, FetchFailed, MalformedInput, OmaTrustError, Unauthorized
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.proofs import authorize, parse_artifact, recover_eip712_signer, verify_jws

ArtifactData = bytes | str | Mapping[str, Any]

# Tiers an offer must have been authorized by before its payTo may authorize a receipt signer (no recursion:
# an offer authorized only through another offer proves nothing).
OFFER_TRUST_TIERS = frozenset({AuthTier.DID_DOCUMENT, AuthTier.DNS_TXT, AuthTier.KEY_BINDING})


@dataclass(frozen=True, slots=True)
class Checked:
    """A verdict plus the parsed artifact it is about (``None`` when the input did not parse)."""

    outcome: ProofOutcome
    artifact: SignedArtifact | None


def verify_artifact(
    *,
    data: ArtifactData,
    resolver: DidResolver | None,
    controllers: ControllerResolver | None,
    now: int,
    offline: bool = False,
    offers: Sequence[tuple[SignedArtifact, str]] = (),
    expect: ArtifactKind | None = None,
) -> ProofOutcome:
    """Verify one offer or receipt (bare envelope or OMATrust proof wrapper) and return its verdict.

    ``offers`` are already verified and authorized offers with their signers (see ``verify_batch``); they only
    matter for the offer-payto tier. ``offline=True`` makes no network look-up at all: authorization is skipped
    (a valid signature gives ``verified`` with ``tier=None``), and a JWS whose ``kid`` is a did:web — its key lives
    in a fetched document — is ``indeterminate`` with reason ``lookup-skipped``. did:key / did:jwk kids and EIP-712
    need no look-up. A missing ``resolver``/``controllers`` skips what needs it the same way.

    Never raises for bad or unreachable input; the verdict says what happened.
    """
    return check_artifact(
        data=data,
        resolver=resolver,
        controllers=controllers,
        now=now,
        offline=offline,
        offers=offers,
        expect=expect,
    ).outcome


def check_artifact(
    *,
    data: ArtifactData,
    resolver: DidResolver | None,
    controllers: ControllerResolver | None,
    now: int,
    offline: bool = False,
    offers: Sequence[tuple[SignedArtifact, str]] = (),
    expect: ArtifactKind | None = None,
) -> Checked:
    """Like ``verify_artifact`` but also returns the parsed artifact (for callers that collect offers)."""
    try:
        artifact = parse_artifact(data=data, expect=expect)
    except OmaTrustError as exc:
        return Checked(_outcome(status=exc.status, reason=exc.reason, now=now, detail=exc.detail), None)

    try:
        signer, key = _check_signature(artifact=artifact, resolver=resolver, offline=offline)
    except OmaTrustError as exc:
        return Checked(_from_error(exc, artifact=artifact, signer=None, now=now), artifact)

    if offline:
        outcome = _outcome(
            status=ProofStatus.VERIFIED,
            reason=None,
            now=now,
            artifact=artifact,
            signature_valid=True,
            signer=signer,
            detail="offline: signature only, authorization not checked",
        )
        return Checked(outcome, artifact)

    try:
        tier, evidence = _authorize(
            artifact=artifact, signer=signer, key=key, resolver=resolver, controllers=controllers, offers=offers
        )
    except OmaTrustError as exc:
        return Checked(_from_error(exc, artifact=artifact, signer=signer, now=now), artifact)
    outcome = _outcome(
        status=ProofStatus.VERIFIED,
        reason=None,
        now=now,
        artifact=artifact,
        signature_valid=True,
        signer=signer,
        tier=tier,
        evidence_hash=evidence,
    )
    return Checked(outcome, artifact)


def verify_batch(
    *,
    items: Sequence[ArtifactData],
    resolver: DidResolver | None,
    controllers: ControllerResolver | None,
    now: int,
    offline: bool = False,
) -> list[ProofOutcome]:
    """Verify several artifacts that travel together (e.g. a review's proofs); verdicts in input order.

    Offers are verified first; those authorized through the did:web document, DNS or a key binding may then
    authorize an EIP-712 receipt whose signer is their ``payTo`` (offer-payto tier). Never raises.
    """
    kinds = [_kind_of(data) for data in items]
    outcomes: dict[int, ProofOutcome] = {}
    offers: list[tuple[SignedArtifact, str]] = []
    for index, data in enumerate(items):
        if kinds[index] is ArtifactKind.RECEIPT:
            continue  # checked below, once every offer is known
        checked = check_artifact(data=data, resolver=resolver, controllers=controllers, now=now, offline=offline)
        outcomes[index] = checked.outcome
        if (
            checked.artifact is not None
            and checked.outcome.status is ProofStatus.VERIFIED
            and checked.outcome.tier in OFFER_TRUST_TIERS
            and checked.outcome.signer is not None
        ):
            offers.append((checked.artifact, checked.outcome.signer))
    for index, data in enumerate(items):
        if kinds[index] is ArtifactKind.RECEIPT:
            outcomes[index] = verify_artifact(
                data=data, resolver=resolver, controllers=controllers, now=now, offline=offline, offers=offers
            )
    return [outcomes[index] for index in range(len(items))]


# ---- steps --------------------------------------------------------------------------------------------------


def _check_signature(
    *, artifact: SignedArtifact, resolver: DidResolver | None, offline: bool
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
    if kid.startswith("did:web:") and (offline or resolver is None):
        raise CouldNotCheck(Reason.LOOKUP_SKIPPED, f"offline: the key of {kid} is in a did:web document")
    key, _document = (resolver or _offline_resolver()).resolve_key(kid=kid)
    verify_jws(artifact=artifact, key=key)
    return kid, key


def _authorize(
    *,
    artifact: SignedArtifact,
    signer: str,
    key: VerificationKey | None,
    resolver: DidResolver | None,
    controllers: ControllerResolver | None,
    offers: Sequence[tuple[SignedArtifact, str]],
) -> tuple[AuthTier, str | None]:
    """First matching tier → (tier, evidence hash).

    Raises:
        Unauthorized: every tier was checked and none lists the signer.
        CouldNotCheck: no tier matched and at least one look-up failed or was skipped.
        MalformedInput: the resourceUrl has no host.
    """
    resource_url = artifact.payload.resource_url
    service_did = did_web_for_url(resource_url)
    failed: CouldNotCheck | None = None

    def attempt(
        document: DidDocument | None = None,
        record: ControllerRecord | None = None,
        trusted_offers: Sequence[tuple[SignedArtifact, str]] = (),
    ) -> tuple[AuthTier, str | None] | None:
        try:
            return authorize(
                artifact=artifact,
                signer=signer,
                key=key,
                document=document,
                controllers=record,
                offers=trusted_offers,
            )
        except Unauthorized:
            return None

    # 1. the service's did:web document (already cached when the kid is a key of that same document)
    if resolver is None:
        failed = CouldNotCheck(Reason.LOOKUP_SKIPPED, "no DID resolver")
    else:
        document: DidDocument | None = None
        try:
            document = resolver.resolve_document(did=service_did)
        except CouldNotCheck as exc:
            failed = exc
        except CheckFailed:
            pass  # a missing or broken document authorizes nobody; the other tiers still may
        if document is not None and (found := attempt(document=document)) is not None:
            return found

    # 2. DNS controllers of the host
    if controllers is None:
        failed = failed or CouldNotCheck(Reason.LOOKUP_SKIPPED, "no DNS resolver")
    else:
        host = (urlsplit(resource_url).hostname or "").rstrip(".")
        try:
            record = controllers.lookup(domain=host)
        except CouldNotCheck as exc:
            failed = failed or exc
            record = None
        if record is not None and (found := attempt(record=record)) is not None:
            return found

    # 3. payTo of an authorized signed offer
    if offers and (found := attempt(trusted_offers=offers)) is not None:
        return found

    if failed is not None:
        raise failed
    raise Unauthorized(Reason.SIGNER_NOT_AUTHORIZED, f"{signer} is not authorized for {service_did}")


# ---- helpers ------------------------------------------------------------------------------------------------


class _NoNetwork:
    """Fetcher for offline use: did:key / did:jwk never fetch; anything that would is refused."""

    def fetch(self, *, url: str) -> bytes:
        raise FetchFailed(Reason.LOOKUP_SKIPPED, f"offline: not fetching {url}")


def _kind_of(data: ArtifactData) -> ArtifactKind | None:
    try:
        return parse_artifact(data=data).kind
    except OmaTrustError:
        return None


def _offline_resolver() -> DidResolver:
    return DidResolver(fetcher=_NoNetwork())


def _from_error(
    exc: OmaTrustError, *, artifact: SignedArtifact, signer: str | None, now: int
) -> ProofOutcome:
    # ``signer`` is only known once the signature verified: errors after that point (authorization, look-ups
    # for it) keep signature_valid=True.
    return _outcome(
        status=exc.status,
        reason=exc.reason,
        now=now,
        artifact=artifact,
        signature_valid=signer is not None,
        signer=signer,
        detail=exc.detail,
    )


def _outcome(
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

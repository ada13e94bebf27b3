"""Verify x402 offers and receipts with the service's look-ups: ``service.identity`` resolvers in, the artifact
verdict of ``service.verdicts`` out (``omatrust verify``, ``POST /v1/proofs/verify``).

A missing resolver, or ``offline=True``, still decodes the kids that need no look-up (did:key, did:jwk) with a
resolver that never fetches.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.domain import ArtifactKind, ProofOutcome, Reason, SignedArtifact
from service.errors import FetchFailed
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.verdicts import ArtifactData, Checked, check_in_order
from service.verdicts import check_artifact as artifact_verdict

__all__ = ["ArtifactData", "Checked", "check_artifact", "local_keys", "verify_artifact", "verify_batch"]


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
    """The verdict of one offer or receipt (``service.verdicts.check_artifact``). Never raises."""
    return check_artifact(
        data=data, resolver=resolver, controllers=controllers, now=now, offline=offline, offers=offers, expect=expect
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
    """Like ``verify_artifact`` but also returns the parsed artifact. Never raises."""
    return artifact_verdict(
        data=data,
        documents=resolver,
        controllers=controllers,
        now=now,
        local_keys=local_keys(resolver, offline=offline),
        offline=offline,
        offers=offers,
        expect=expect,
    )


def verify_batch(
    *,
    items: Sequence[ArtifactData],
    resolver: DidResolver | None,
    controllers: ControllerResolver | None,
    now: int,
    offline: bool = False,
) -> list[ProofOutcome]:
    """Verify artifacts that travel together (offers first, see ``service.verdicts.check_in_order``); verdicts in
    input order. Never raises."""
    checked = check_in_order(
        items=[(data, None) for data in items],
        documents=resolver,
        controllers=controllers,
        now=now,
        local_keys=local_keys(resolver, offline=offline),
        offline=offline,
    )
    return [c.outcome for c in checked]


def local_keys(resolver: DidResolver | None, *, offline: bool = False) -> DidResolver | None:
    """The resolver for kids that need no look-up when ``resolver`` may not be used (missing, or offline)."""
    return DidResolver(fetcher=_NoNetwork()) if resolver is None or offline else None


class _NoNetwork:
    """Fetcher for offline use: did:key / did:jwk never fetch; anything that would is refused."""

    def fetch(self, *, url: str) -> bytes:
        raise FetchFailed(Reason.LOOKUP_SKIPPED, f"offline: not fetching {url}")

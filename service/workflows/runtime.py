"""The wired-up parts a workflow needs, built once by the app factory or the CLI and passed in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from service.chain.eas_relayer import EasClient
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.payments.reader import PaymentReader
from service.scoring import DEFAULT_PARAMS, ScoringParams
from service.store.batch import Rider
from service.store.omatrust import RecentAttestations
from service.verdicts.anchors import TrustAnchors
from service.workflows.evaluate import ReviewPolicy
from service.workflows.group_commit import GroupCommit
from service.workflows.nonces import NonceBook, SeenHashes


def _noop() -> None:
    return None


@dataclass
class Runtime:
    engine: Engine
    eas: EasClient
    resolver: DidResolver | None
    controllers: ControllerResolver | None
    policy: ReviewPolicy = field(default_factory=ReviewPolicy)
    clock: Callable[[], float] = time.time
    # Called after a review is enqueued so the in-process publisher does not wait for its next tick.
    publisher_wakeup: Callable[[], None] = _noop
    # True on the embedded in-process EVM: attestations vanish when the process exits.
    ephemeral_chain: bool = False
    # The configured chain's row in ``chains`` (recorded with every attestation; set by wiring after the identity
    # check) and the confirmations a published attestation needs before it is "confirmed" (service.chain.confirmations).
    chain_ref: int | None = None
    confirmations: int = 1
    # The scoring parameters reads and writes use; aggregates stored under other units are stale.
    params: ScoringParams = DEFAULT_PARAMS
    # Called when a read or write met a stale aggregate: the wired service rebuilds them in the background.
    aggregates_stale: Callable[[], None] = _noop
    # Reads payment evidence from the payment networks (service.payments); None → every payment check is
    # indeterminate (network-not-configured).
    payments: PaymentReader | None = None
    # Recent chain reads of attesters' EAS nonces (service.workflows.nonces), per process.
    nonces: NonceBook = field(default_factory=lambda: NonceBook())
    # Evidence snapshots known committed (service.workflows.submit.keep_proof_evidence skips them), per process.
    kept_snapshots: SeenHashes = field(default_factory=lambda: SeenHashes())
    # Set when workers publish (PostgreSQL, no in-process publisher): attester → the insert of the publish job of
    # the attester's relayer key, written with the review's rows in the submit transaction (service.store.jobqueue).
    publish_job: Callable[[str], Rider] | None = None
    # Concurrent submissions stored together, one transaction a group (service.workflows.submit), per process.
    submissions: GroupCommit[Any, Any] = field(default_factory=GroupCommit)
    # OMATrust trust anchors (service.verdicts.anchors): which schema UIDs sync indexes besides User Reviews and
    # which witnesses are approved; None → no on-chain authorization tiers (key-binding, controller-witness).
    anchors: TrustAnchors | None = None
    # The stored OMATrust attestations of recently judged services, shared by submissions and prepares
    # (service.store.omatrust.RecentAttestations), per process; sync and witness writes here clear it.
    onchain_recent: RecentAttestations = field(default_factory=lambda: RecentAttestations(ttl=2.0))

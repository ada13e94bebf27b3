"""Judge stored reviews again — the CPU-bound half of ``omatrust reverify``, run in worker processes.

A task carries plain data only: the stored reviews (raw proof JSON + stored outcomes) and the evidence the parent
process gathered (did:web documents as fetched bytes, DNS ``_controllers`` answers, stored evidence snapshots). No
database, no network: a worker never looks anything up. When a review needs a document or DNS answer the parent
did not send, the worker reports it as *needed*; the parent fetches it (once per run) and sends the review again.

Verification is the shared core, ``evaluate_review``, run against the *fresh* evidence. Then the rule
"authorized as of issuedAt" (docs/batch.md) is applied to proofs the fresh evidence no longer authorizes:

    A signer whose stored verdict was established with evidence snapshot E (``ProofRow.evidence_hash``), observed
    at ``t_E`` (``ProofRow.checked_at``), stays authorized for an artifact of reference time ``T`` (a receipt's
    ``issuedAt``; an offer's review time) when
      1. every fresh look-up succeeded (otherwise the result is ``indeterminate`` and the stored verdict is kept),
      2. E is stored and, checked again with the same pure ``authorize``, still authorizes the signer (for a JWS
         whose key left the document, the key is read from E and the signature verified with it),
      3. ``T <= t_E + skew`` — we saw the signer published at (or after) the time the artifact was made. The fresh
         evidence that lacks the signer is newer than E, so it cannot show the signer was already absent at ``T``.
    Otherwise the fresh verdict stands. Revocation is prospective: removing a key from did.json (or a controller
    from DNS) does not retract receipts it signed before; a stored verdict whose evidence predates the artifact
    (``T > t_E + skew``) proves nothing about ``T`` and is not kept.

An ``indeterminate`` judgement never replaces a stored verdict: the stored row is kept and the attempt is reported.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

from service.domain import (
    ArtifactFormat,
    ArtifactKind,
    AuthTier,
    ControllerRecord,
    DidDocument,
    ProofOutcome,
    ProofStatus,
    Reason,
    ReceiptPayload,
    Review,
    SignedArtifact,
    VerificationKey,
)
from service.errors import (
    CheckFailed,
    DnsFailed,
    FetchFailed,
    MalformedInput,
    OmaTrustError,
    Unauthorized,
    Unsupported,
)
from service.identity.dns import ControllerResolver
from service.identity.documents import ParsedDocument, find_key, read_did_document
from service.identity.resolver import DidResolver
from service.proofs import authorize, check_binding, verify_jws
from service.store.batch import BatchProof, BatchReview, Snapshot
from service.workflows.evaluate import ProofEvaluation, ReviewPolicy, evaluate_review
from service.workflows.review_facts import summarize, with_store_facts
from service.workflows.verify import OFFER_TRUST_TIERS

# Fresh JWS failures that a key rotated out of (or replaced in) the document explains: the stored snapshot may
# still hold the key the artifact was signed with.
_JWS_KEY_GONE = frozenset(
    {Reason.KEY_NOT_FOUND, Reason.SIGNATURE_INVALID, Reason.ALG_KEY_MISMATCH, Reason.UNSUPPORTED_KEY_TYPE}
)
_SNAPSHOT_TIERS = frozenset({AuthTier.DID_DOCUMENT.value, AuthTier.DNS_TXT.value})
INDETERMINATE = ProofStatus.INDETERMINATE.value
_REPLAYED = Reason.RECEIPT_REPLAYED.value


class Failure(NamedTuple):
    """A look-up that failed in the parent, re-raised identically in the worker."""

    status: str  # indeterminate | invalid | unsupported
    reason: str
    detail: str

    @classmethod
    def of(cls, exc: OmaTrustError) -> Failure:
        return cls(exc.status.value, exc.reason.value, exc.detail)

    def error(self, *, dns: bool = False) -> OmaTrustError:
        reason = Reason(self.reason)
        if self.status == INDETERMINATE:
            return DnsFailed(reason, self.detail) if dns else FetchFailed(reason, self.detail)
        if self.status == ProofStatus.UNSUPPORTED.value:
            return Unsupported(reason, self.detail)
        return MalformedInput(reason, self.detail)


DocEvidence = bytes | Failure
DnsEvidence = ControllerRecord | None | Failure


class Evidence(NamedTuple):
    docs: dict[str, DocEvidence]  # did:web → the document bytes as fetched, or why it could not be had
    dns: dict[str, DnsEvidence]  # host → its controller record (None: no record)
    snapshots: dict[str, Snapshot]  # evidence hash → stored snapshot


class Task(NamedTuple):
    token: str  # identifies the run invocation: worker caches are only valid within one
    reviews: list[tuple[BatchReview, list[BatchProof]]]
    evidence: Evidence
    now: int
    policy: ReviewPolicy
    allow_need: bool = True  # False: a missing look-up is judged "indeterminate" instead of being asked for


class ProofChange(NamedTuple):
    proof_id: int
    review_id: str
    position: int
    before_status: str
    before_reason: str | None
    values: dict[str, object]  # every column of the new outcome (same keys for every change)
    detail: str


class Attempt(NamedTuple):
    """A proof whose re-check could not be completed; its stored verdict was kept."""

    proof_id: int
    review_id: str
    kept_status: str
    reason: str | None
    detail: str


class ReviewChange(NamedTuple):
    review_id: str
    before: tuple[bool, str]  # (verified_purchase, evidence)
    after: tuple[bool, str]


class Need(NamedTuple):
    review_id: str
    dids: tuple[str, ...]
    hosts: tuple[str, ...]


class TaskResult(NamedTuple):
    reviews: int  # judged (not counting those returned as needs)
    proofs: int
    transitions: Counter[tuple[str, str]]  # (stored status, judged status) per proof
    proof_changes: list[ProofChange]
    attempts: list[Attempt]
    review_changes: list[ReviewChange]
    needs: list[Need]
    cpu_seconds: float


class NotLookedUp(FetchFailed):
    """The parent has not sent this look-up yet (never leaves the worker)."""


class NotLookedUpDns(DnsFailed):
    """The parent has not sent this DNS answer yet (never leaves the worker)."""


def dns_host(domain: str) -> str:
    """The key a DNS answer is stored under: ``ControllerResolver.lookup``'s normalization of ``domain``."""
    host = domain.strip().lower().rstrip(".")
    if host.startswith("[") or host.count(":") == 1:
        host = host.rsplit(":", 1)[0].strip("[]")
    return host


class EvidenceResolver(DidResolver):
    """A ``DidResolver`` over the documents the parent fetched; did:key / did:jwk are decoded as usual."""

    def __init__(self) -> None:
        super().__init__(fetcher=_NoFetch())
        self.parsed: dict[str, ParsedDocument] = {}
        self.failures: dict[str, Failure] = {}
        self.needed: set[str] = set()
        self.allow_need = True

    def add(self, did: str, evidence: DocEvidence) -> None:
        if did in self.parsed or did in self.failures:
            return
        if isinstance(evidence, Failure):
            self.failures[did] = evidence
            return
        try:
            self.parsed[did] = read_did_document(did=did, raw=evidence)
        except OmaTrustError as exc:  # the parent only sends documents that parsed; keep the worker honest anyway
            self.failures[did] = Failure.of(exc)

    def _lookup(self, did: str) -> ParsedDocument:
        parsed = self.parsed.get(did)
        if parsed is not None:
            return parsed
        failure = self.failures.get(did)
        if failure is not None:
            raise failure.error()
        if self.allow_need:
            self.needed.add(did)
        raise NotLookedUp(Reason.LOOKUP_SKIPPED, f"{did} was not looked up")

    def resolve_document(self, *, did: str) -> DidDocument:
        if did.startswith("did:web:"):
            return self._lookup(did).document
        return super().resolve_document(did=did)

    def resolve_key(self, *, kid: str) -> tuple[VerificationKey, DidDocument]:
        did = kid.partition("#")[0] if isinstance(kid, str) else ""
        if did.startswith("did:web:"):
            parsed = self._lookup(did)
            return find_key(parsed=parsed, kid=kid), parsed.document
        return super().resolve_key(kid=kid)


class EvidenceControllers(ControllerResolver):
    """A ``ControllerResolver`` over the DNS answers the parent looked up (it never sends a query)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DnsEvidence] = {}
        self.needed: set[str] = set()
        self.allow_need = True

    def lookup(self, *, domain: str) -> ControllerRecord | None:
        host = dns_host(domain)
        if host in self.records:
            found = self.records[host]
            if isinstance(found, Failure):
                raise found.error(dns=True)
            return found
        if self.allow_need:
            self.needed.add(host)
        raise NotLookedUpDns(Reason.LOOKUP_SKIPPED, f"{host} was not looked up")


class _NoFetch:
    def fetch(self, *, url: str) -> bytes:
        raise NotLookedUp(Reason.LOOKUP_SKIPPED, f"workers do not fetch ({url})")


class _State:
    """Per-process caches, valid for one run invocation (``Task.token``)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.resolver = EvidenceResolver()
        self.controllers = EvidenceControllers()
        self.snapshot_docs: dict[str, ParsedDocument | None] = {}
        self.snapshot_records: dict[str, ControllerRecord | None] = {}


_STATE: _State | None = None


def _state_for(task: Task) -> _State:
    global _STATE
    if _STATE is None or _STATE.token != task.token:
        _STATE = _State(task.token)
    state = _STATE
    for did, doc in task.evidence.docs.items():
        state.resolver.add(did, doc)
    for host, answer in task.evidence.dns.items():
        state.controllers.records.setdefault(host, answer)
    state.resolver.allow_need = state.controllers.allow_need = task.allow_need
    return state


def judge_task(task: Task) -> TaskResult:
    """Judge every review of ``task`` (entry point of the worker processes; also callable in-process)."""
    started = time.process_time()
    state = _state_for(task)
    transitions: Counter[tuple[str, str]] = Counter()
    out = TaskResult(0, 0, transitions, [], [], [], [], 0.0)
    judged = proofs = 0
    for review, stored in task.reviews:
        need = _judge_review(state, task, review, stored, out)
        if need is not None:
            out.needs.append(need)
        else:
            judged += 1
            proofs += len(stored)
    return out._replace(reviews=judged, proofs=proofs, cpu_seconds=time.process_time() - started)


# ---- one review ---------------------------------------------------------------------------------------------------


def _judge_review(
    state: _State, task: Task, review: BatchReview, stored: list[BatchProof], out: TaskResult
) -> Need | None:
    state.resolver.needed.clear()
    state.controllers.needed.clear()
    verdict = evaluate_review(
        review=Review(
            subject=review.subject,
            version="",
            rating_value=review.rating_value,
            review_body="",
            screenshot_urls=(),
            proofs=_proof_texts(review.proofs_json),
        ),
        attester=review.attester,
        review_time=review.review_time,
        now=task.now,
        resolver=state.resolver,
        controllers=state.controllers,
        policy=task.policy,
    )
    if state.resolver.needed:  # documents first: they may make the DNS tier unnecessary
        return Need(review.id, tuple(sorted(state.resolver.needed)), ())
    if state.controllers.needed:
        return Need(review.id, (), tuple(sorted(state.controllers.needed)))

    stored_at = {p.position: p for p in stored}
    fresh = {p.position: p.outcome for p in verdict.proofs}
    finals: dict[int, ProofEvaluation] = {}
    kept: set[int] = set()
    trusted_offers: list[tuple[SignedArtifact, str]] = []
    replaced = False
    # Offers first: an offer authorized only as of its time may still vouch for a receipt signer (offer-payto).
    ordered = verdict.proofs if len(verdict.proofs) < 2 else sorted(verdict.proofs, key=_offers_first)
    for original in ordered:
        p = original
        sp = stored_at.get(p.position)
        if sp is not None and p.artifact is not None and p.outcome.status not in (
            ProofStatus.VERIFIED,
            ProofStatus.INDETERMINATE,
        ):
            p = _as_of_issued_at(state, task, review, p, sp, trusted_offers)
        if (
            p.artifact is not None
            and p.artifact.kind is ArtifactKind.OFFER
            and p.outcome.status is ProofStatus.VERIFIED
            and p.outcome.tier in OFFER_TRUST_TIERS
            and p.outcome.signer
        ):
            trusted_offers.append((p.artifact, p.outcome.signer))
        if p.outcome.status is ProofStatus.INDETERMINATE and sp is not None:
            kept.add(p.position)
            p = _stored_evaluation(sp, p)
        replaced = replaced or p is not original
        finals[p.position] = p

    replayed = {sp.position for sp in stored if sp.reason == _REPLAYED}
    final = with_store_facts(
        verdict=summarize(proofs=tuple(finals[i] for i in sorted(finals))) if replaced else verdict,
        attester=review.attester,
        replayed_positions=replayed - kept,
        problem=review.problem,
    )

    for p in final.proofs:
        sp = stored_at.get(p.position)
        if sp is None:
            continue  # a proof without a stored row (not written by this service): nothing to update
        if p.position in kept:
            judged = fresh[p.position]
            out.transitions[(sp.status, INDETERMINATE)] += 1
            reason = judged.reason.value if judged.reason else None
            out.attempts.append(Attempt(sp.id, review.id, sp.status, reason, judged.detail[:500]))
            continue
        out.transitions[(sp.status, p.outcome.status.value)] += 1
        if _differs(p, sp):
            values = _columns(p)
            out.proof_changes.append(
                ProofChange(sp.id, review.id, p.position, sp.status, sp.reason, values, p.outcome.detail[:500])
            )
    before = (review.verified_purchase, review.evidence)
    after = (final.verified_purchase, final.evidence)
    if before != after:
        out.review_changes.append(ReviewChange(review.id, before, after))
    return None


def _proof_texts(proofs_json: str) -> tuple[str, ...]:
    try:
        proofs = json.loads(proofs_json)
    except ValueError:
        return ()
    return tuple(p for p in proofs if isinstance(p, str)) if isinstance(proofs, list) else ()


def _as_of_issued_at(
    state: _State,
    task: Task,
    review: BatchReview,
    p: ProofEvaluation,
    sp: BatchProof,
    trusted_offers: Sequence[tuple[SignedArtifact, str]],
) -> ProofEvaluation:
    """Apply the "authorized as of issuedAt" rule (module docstring) to a proof the fresh evidence did not verify.
    Returns ``p`` unchanged when the rule does not apply."""
    artifact = p.artifact
    assert artifact is not None
    outcome = p.outcome
    if sp.tier == AuthTier.OFFER_PAYTO.value:
        return _via_offer(task, review, p, trusted_offers)
    if sp.tier not in _SNAPSHOT_TIERS or not sp.evidence_hash:
        return p
    snapshot = task.evidence.snapshots.get(sp.evidence_hash)
    if snapshot is None:
        return p  # no stored evidence: nothing to judge "as of" with
    payload = artifact.payload
    reference = payload.issued_at if isinstance(payload, ReceiptPayload) else review.review_time
    if reference > sp.checked_at + task.policy.clock_skew:
        return p  # the evidence was observed before the artifact existed: it says nothing about its time
    document = _snapshot_document(state, snapshot)
    record = _snapshot_record(state, snapshot)

    signer: str | None = outcome.signer if outcome.signature_valid else None
    key: VerificationKey | None = None
    if artifact.format is ArtifactFormat.JWS:
        kid = artifact.kid or ""
        if signer is not None:
            try:
                key = state.resolver.resolve_key(kid=kid)[0]
            except OmaTrustError:
                key = None
        elif outcome.reason in _JWS_KEY_GONE and document is not None:
            try:
                key = find_key(parsed=document, kid=kid)
                verify_jws(artifact=artifact, key=key)
            except OmaTrustError:
                return p  # the stored document does not verify it either: the fresh verdict stands
            signer = kid
    if signer is None:
        return p
    try:
        tier, evidence_hash = authorize(
            artifact=artifact,
            signer=signer,
            key=key,
            document=document.document if document is not None else None,
            controllers=record,
        )
    except Unauthorized:
        return p
    as_of = ProofOutcome(
        status=ProofStatus.VERIFIED,
        reason=None,
        kind=artifact.kind,
        format=artifact.format,
        signature_valid=True,
        signer=signer,
        tier=tier,
        replay_key=artifact.replay_key,
        checked_at=sp.checked_at,  # the time the evidence that authorizes it was observed
        evidence_hash=evidence_hash,
        detail=f"authorized as of {reference} by evidence observed at {sp.checked_at}; not in the current evidence",
    )
    return _rebind(task, review, replace(p, outcome=as_of))


def _via_offer(
    task: Task, review: BatchReview, p: ProofEvaluation, trusted_offers: Sequence[tuple[SignedArtifact, str]]
) -> ProofEvaluation:
    artifact, outcome = p.artifact, p.outcome
    if artifact is None or not outcome.signature_valid or not outcome.signer or not trusted_offers:
        return p
    try:
        tier, evidence_hash = authorize(
            artifact=artifact, signer=outcome.signer, key=None, document=None, controllers=None, offers=trusted_offers
        )
    except Unauthorized:
        return p
    as_of = replace(outcome, status=ProofStatus.VERIFIED, reason=None, tier=tier, evidence_hash=evidence_hash,
                    detail="authorized through an offer verified as of its time")  # fmt: skip
    return _rebind(task, review, replace(p, outcome=as_of))


def _rebind(task: Task, review: BatchReview, p: ProofEvaluation) -> ProofEvaluation:
    """Receipt binding for a proof whose signature was only verified now (it was not checked with the fresh key)."""
    artifact = p.artifact
    if artifact is None or not isinstance(artifact.payload, ReceiptPayload):
        return p
    try:
        check_binding(
            receipt=artifact.payload,
            subject=review.subject,
            attester=review.attester,
            review_time=review.review_time,
            max_age=task.policy.receipt_max_age,
            skew=task.policy.clock_skew,
        )
    except CheckFailed as exc:
        return replace(p, issued_at=artifact.payload.issued_at, bound=False, binding_reason=exc.reason)
    return replace(p, issued_at=artifact.payload.issued_at, bound=True, binding_reason=None)


def _snapshot_document(state: _State, snapshot: Snapshot) -> ParsedDocument | None:
    if snapshot.kind != "did-document":
        return None
    if snapshot.snapshot_hash not in state.snapshot_docs:
        try:
            parsed: ParsedDocument | None = read_did_document(did=snapshot.did, raw=snapshot.raw.encode("utf-8"))
        except OmaTrustError:
            parsed = None
        state.snapshot_docs[snapshot.snapshot_hash] = parsed
    return state.snapshot_docs[snapshot.snapshot_hash]


def _snapshot_record(state: _State, snapshot: Snapshot) -> ControllerRecord | None:
    """A stored DNS answer (``record_name`` then one controller per line, as ``keep_evidence`` writes it)."""
    if snapshot.kind != "dns-txt":
        return None
    if snapshot.snapshot_hash not in state.snapshot_records:
        lines = snapshot.raw.split("\n")
        name = lines[0]
        domain = name.split(".", 1)[1] if "." in name else name
        state.snapshot_records[snapshot.snapshot_hash] = ControllerRecord(
            domain=domain, record_name=name, controllers=tuple(lines[1:])
        )
    return state.snapshot_records[snapshot.snapshot_hash]


def _stored_evaluation(sp: BatchProof, p: ProofEvaluation) -> ProofEvaluation:
    """The stored verdict of a proof, as an evaluation (used when the re-check was indeterminate)."""
    stored_reason = Reason(sp.reason) if sp.reason is not None and sp.reason in Reason._value2member_map_ else None
    binding_reasons = {Reason.SUBJECT_MISMATCH, Reason.PAYER_MISMATCH, Reason.RECEIPT_FROM_FUTURE,
                       Reason.RECEIPT_STALE, Reason.RECEIPT_REPLAYED, Reason.SELF_REVIEW}  # fmt: skip
    is_binding = stored_reason in binding_reasons
    outcome = ProofOutcome(
        status=ProofStatus(sp.status),
        reason=None if is_binding else stored_reason,
        kind=ArtifactKind(sp.kind) if sp.kind else None,
        format=ArtifactFormat(sp.format) if sp.format else None,
        signature_valid=sp.signature_valid,
        signer=sp.signer,
        tier=AuthTier(sp.tier) if sp.tier else None,
        replay_key=sp.replay_key,
        checked_at=sp.checked_at,
        evidence_hash=sp.evidence_hash,
    )
    return replace(p, outcome=outcome, bound=sp.bound, binding_reason=stored_reason if is_binding else None)


def _columns(p: ProofEvaluation) -> dict[str, object]:
    o = p.outcome
    reason = p.binding_reason or o.reason
    return {
        "status": o.status.value,
        "reason": reason.value if reason else None,
        "kind": o.kind.value if o.kind else None,
        "format": o.format.value if o.format else None,
        "signature_valid": o.signature_valid,
        "signer": o.signer,
        "tier": o.tier.value if o.tier else None,
        "replay_key": o.replay_key,
        "bound": p.bound,
        "issued_at": p.issued_at,
        "evidence_hash": o.evidence_hash,
        "checked_at": o.checked_at,
        "detail": o.detail[:500],
    }


def _differs(p: ProofEvaluation, sp: BatchProof) -> bool:
    """Whether the judged outcome differs from the stored row in anything but the time and detail text."""
    o = p.outcome
    reason = p.binding_reason or o.reason
    return (
        o.status != sp.status
        or (reason.value if reason else None) != sp.reason
        or o.signature_valid != sp.signature_valid
        or o.signer != sp.signer
        or (o.tier.value if o.tier else None) != sp.tier
        or p.bound != sp.bound
        or o.evidence_hash != sp.evidence_hash
        or o.replay_key != sp.replay_key
        or p.issued_at != sp.issued_at
        or (o.kind.value if o.kind else None) != sp.kind
        or (o.format.value if o.format else None) != sp.format
    )


def _offers_first(p: ProofEvaluation) -> int:
    return 0 if p.outcome.kind is ArtifactKind.OFFER else 1

"""Check that the payment a receipt names really happened: read the transaction (``service.payments``), judge it
(``service.verdicts.payment``), attach the verdict to the receipt proof.

Only receipts that are verified, bound to the review (payer == attester, subject, fresh) and name a
``transaction`` are checked: a payment proves nothing about a review its receipt does not back. The payment terms
(asset, payTo, amount) come from a signed offer of the same review for the same resource whose signer is authorized
for the service; without one, the address paid must itself be authorized for the service (the signer tiers:
did:web document, DNS ``_controllers``) and the amount is recorded as observed.

``indeterminate`` (network not configured, RPC down, a look-up failed) never refuses and never downgrades.

Latency: ``start_chain_reads`` starts the reads a review's receipts and ``tx-interaction`` proofs will need before
its proofs are checked (submission calls it once the review is validated; the network and transaction are taken
from the proofs' text without a full parse: ``service.verdicts.payment_reads``), so the round trip overlaps the
signature checks and did:web resolution; the check then waits for that read (``PaymentReader.prefetch``). The
payee decision (is this address authorized for the service?) is remembered with the look-up answers it was made
on (``PayeeMemo``): a repeat costs the identity caches' own look-ups, never a decision, and never outlives them.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from service.domain import (
    ArtifactKind,
    ControllerRecord,
    DidDocument,
    OfferPayload,
    PaymentCheck,
    PaymentStatus,
    ProofStatus,
    Reason,
    ReceiptPayload,
    Review,
    SignedArtifact,
    VerificationKey,
)
from service.errors import CheckFailed, CouldNotCheck, MalformedInput, OmaTrustError
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.payments.reader import PaymentReader
from service.verdicts import OFFER_TRUST_TIERS, ProofEvaluation, ReviewVerdict
from service.verdicts.payment import (
    PayeeCheck,
    PaymentTerms,
    evidence_with_payment,
    judge_payment,
    payee_check,
    payment_method,
    refusal,
    service_probe,
    transfers,
    unchecked,
)
from service.verdicts.payment_reads import TX_HASH, chain_read_of
from service.verdicts.registry import CHAIN_PROOFS
from service.verdicts.review import with_chain_proofs
from service.verdicts.sources import ControllerSource, DocumentSource
from service.verdicts.tx_interaction import judge_tx_interaction, parse_tx_proof

MAX_PREFETCH = 4  # reads started ahead per review (a review may carry more proofs; the rest are read in line)


def start_chain_reads(*, review: Review, payments: PaymentReader | None) -> int:
    """Start, in the background, the chain reads the payment and ``tx-interaction`` checks of ``review`` will make
    (receipts naming a ``transaction``; ``tx-interaction`` proofs), so they overlap the proofs' signature checks.
    Only the network and transaction are taken from the proofs here — nothing is judged, and a proof that turns
    out invalid only costs a cached read. Returns how many reads were asked for. Never raises."""
    if payments is None:
        return 0
    wanted: list[tuple[str, str]] = []
    for raw in review.proofs:
        if len(wanted) >= MAX_PREFETCH:
            break
        target = chain_read_of(raw=raw)
        if target is not None and target not in wanted:
            wanted.append(target)
    for network, transaction in wanted:
        payments.prefetch(network=network, transaction=transaction)
    return len(wanted)


@functools.lru_cache(maxsize=4096)
def _authority(url: str) -> str:
    return urlsplit(url).netloc.lower()  # host[:port]: all the payee decision reads of the resource URL


@dataclass(slots=True)
class _Answers:
    """Look-up answers a decision was made on, recorded as the sources give them. ``known``: answers (or failures)
    already obtained for this decision, given again instead of asking twice."""

    documents: DocumentSource | None
    controllers: ControllerSource | None
    known: dict[tuple[str, str], object] = field(default_factory=dict)
    seen: list[tuple[str, str, object]] = field(default_factory=list)  # ("did"|"dns", argument, answer)
    clean: bool = True  # False: a look-up raised or a key was resolved — the decision is not remembered

    def _ask(self, what: str, argument: str) -> Any:
        if (what, argument) in self.known:
            answer = self.known[(what, argument)]
        else:
            try:
                answer = self._source_answer(what, argument)
            except OmaTrustError as exc:
                answer = exc
        if isinstance(answer, BaseException):
            self.clean = False
            raise answer
        self.seen.append((what, argument, answer))
        return answer

    def _source_answer(self, what: str, argument: str) -> object:
        if what == "did":
            assert self.documents is not None
            return self.documents.resolve_document(did=argument)
        assert self.controllers is not None
        return self.controllers.lookup(domain=argument)

    def resolve_document(self, *, did: str) -> DidDocument:
        answer: DidDocument = self._ask("did", did)
        return answer

    def resolve_key(self, *, kid: str) -> tuple[VerificationKey, DidDocument]:
        assert self.documents is not None
        self.clean = False
        return self.documents.resolve_key(kid=kid)

    def lookup(self, *, domain: str) -> ControllerRecord | None:
        answer: ControllerRecord | None = self._ask("dns", domain)
        return answer

    def replay(self, documents: DocumentSource | None, controllers: ControllerSource | None) -> _Answers | None:
        """None when the sources still give the very answers recorded (the identity caches have not moved on);
        else a fresh recorder for deciding again, holding the answers just obtained (nothing is asked twice)."""
        fresh = _Answers(documents, controllers)
        if documents is not self.documents or controllers is not self.controllers:
            return fresh
        for what, argument, answer in self.seen:
            try:
                now = fresh._source_answer(what, argument)
            except OmaTrustError as exc:
                fresh.known[(what, argument)] = exc
                return fresh
            fresh.known[(what, argument)] = now
            if now is not answer and now != answer:
                return fresh
        return None


class PayeeMemo:
    """Payee decisions by (service host[:port], address), each with the look-up answers it was made on.

    A decision is a pure function of those answers (the did:web document, the DNS ``_controllers`` record), so a
    repeat is served only while the same sources still give the same answers: the memo asks them again (their
    own caches answer) and compares. A did.json or DNS record re-fetched after the identity cache TTL is a new
    answer and the decision is made again — a memo entry never outlives the identity cache entries it was made on.
    Decisions whose look-ups failed are not remembered. Thread-safe; bounded (oldest first out)."""

    def __init__(self, *, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[_Answers, bool]] = OrderedDict()
        self._lock = threading.Lock()

    def check(
        self, *, artifact: SignedArtifact, documents: DocumentSource | None, controllers: ControllerSource | None
    ) -> PayeeCheck:
        """``payee_check`` with memory: ``address → bool``. Raises CouldNotCheck as ``payee_check`` does."""
        authority = _authority(artifact.payload.resource_url)

        def is_payee(address: str) -> bool:
            key = (authority, address.lower())
            with self._lock:
                hit = self._entries.get(key)
            if hit is None:
                answers = _Answers(documents, controllers)
            else:
                again = hit[0].replay(documents, controllers)
                if again is None:
                    return hit[1]
                answers = again
            decide = payee_check(artifact=artifact, documents=answers if documents is not None else None,
                                 controllers=answers if controllers is not None else None)  # fmt: skip
            decision = decide(address)
            if answers.clean:
                with self._lock:
                    self._entries[key] = (answers, decision)
                    self._entries.move_to_end(key)
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
            return decision

        return is_payee

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


PAYEES = PayeeMemo()


@functools.lru_cache(maxsize=4096)
def _resource(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.path or "/"


def offer_terms(proofs: Sequence[ProofEvaluation], *, receipt: ReceiptPayload) -> list[PaymentTerms]:
    """Terms of the authorized signed offers in ``proofs`` for the receipt's resource (same scheme, host and path:
    the query may differ — an offer names the route, a receipt the request), those on the receipt's network
    first."""
    found: list[PaymentTerms] = []
    for p in proofs:
        if p.artifact is None or p.artifact.kind is not ArtifactKind.OFFER:
            continue
        if p.outcome.status is not ProofStatus.VERIFIED or p.outcome.tier not in OFFER_TRUST_TIERS:
            continue
        offer = p.artifact.payload
        if isinstance(offer, OfferPayload) and _resource(offer.resource_url) == _resource(receipt.resource_url):
            found.append(PaymentTerms(network=offer.network, asset=offer.asset, pay_to=offer.pay_to,
                                      amount=offer.amount))  # fmt: skip
    return sorted(found, key=lambda t: t.network != receipt.network)


def check_receipt_payment(
    *,
    proof: ProofEvaluation,
    proofs: Sequence[ProofEvaluation],
    payments: PaymentReader | None,
    resolver: DidResolver | None,
    controllers: ControllerResolver | None,
    now: int,
    fresh: bool = False,
) -> PaymentCheck | None:
    """The payment verdict of one receipt proof, or None when it is not checked (not a verified, bound receipt
    naming a transaction). Never raises for what the network says: failures are ``indeterminate``."""
    if (
        proof.artifact is None
        or proof.artifact.kind is not ArtifactKind.RECEIPT
        or proof.outcome.status is not ProofStatus.VERIFIED
        or not proof.bound
    ):
        return None
    receipt = proof.artifact.payload
    if not isinstance(receipt, ReceiptPayload) or not receipt.transaction:
        return None
    if payments is None:
        return unchecked(receipt=receipt, reason=Reason.NETWORK_NOT_CONFIGURED, detail="no payment networks", now=now)
    try:
        observation = payments.observe(network=receipt.network, transaction=receipt.transaction, fresh=fresh)
    except CouldNotCheck as exc:
        return unchecked(receipt=receipt, reason=exc.reason, detail=exc.detail, now=now)
    is_payee = PAYEES.check(artifact=proof.artifact, documents=resolver, controllers=controllers)
    candidates: list[PaymentTerms | None] = [*offer_terms(proofs, receipt=receipt)] or [None]
    first: PaymentCheck | None = None
    for terms in candidates:
        check = judge_payment(
            receipt=receipt, observation=observation, terms=terms, is_payee=is_payee,
            min_confirmations=payments.min_confirmations, now=now,
        )  # fmt: skip
        if check.status in (PaymentStatus.SETTLED, PaymentStatus.PENDING):
            return check
        first = first or check
    return first


def check_payments(
    *,
    verdict: ReviewVerdict,
    payments: PaymentReader | None,
    resolver: DidResolver | None,
    controllers: ControllerResolver | None,
    now: int,
    fresh: bool = False,
) -> dict[int, PaymentCheck]:
    """Payment verdicts of the review's checked receipts, by proof position."""
    out: dict[int, PaymentCheck] = {}
    for p in verdict.proofs:
        check = check_receipt_payment(proof=p, proofs=verdict.proofs, payments=payments, resolver=resolver,
                                      controllers=controllers, now=now, fresh=fresh)  # fmt: skip
        if check is not None:
            out[p.position] = check
    return out


def raise_for_payment(checks: Mapping[int, PaymentCheck]) -> None:
    """Refuse a submission whose receipt names a transaction that does not pay for it.

    Raises:
        CheckFailed: ``payment-mismatch`` / ``payment-reverted`` / ``payment-not-found`` (422); the detail names the
            proof and the finer reason.
    """
    for position in sorted(checks):
        check = checks[position]
        code = refusal(check)
        if code is not None:
            finer = check.reason.value if check.reason else check.status.value
            raise CheckFailed(code, f"proofs[{position}]: {finer}: {check.detail}".rstrip(": "))


def with_payments(verdict: ReviewVerdict, checks: Mapping[int, PaymentCheck]) -> ReviewVerdict:
    """The verdict with its evidence class raised to ``payment-backed`` when a verified purchase's payment settled."""
    evidence = evidence_with_payment(evidence=verdict.evidence, verified_purchase=verdict.verified_purchase,
                                     checks=checks.values())  # fmt: skip
    return verdict if evidence == verdict.evidence else replace(verdict, evidence=evidence)


@dataclass(frozen=True, slots=True)
class PaymentTransfer:
    asset: str
    payer: str
    pay_to: str
    amount: str
    method: str


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """What a payment network says about one transaction, for the ``write`` link of the x402 reviews extension."""

    network: str
    transaction: str
    status: PaymentStatus  # settled | pending | not-found | reverted (mismatch needs a receipt to compare with)
    block_number: int | None
    confirmations: int
    transfers: tuple[PaymentTransfer, ...]


def describe_payment(*, payments: PaymentReader | None, network: str, transaction: str) -> PaymentFacts:
    """Read ``transaction`` on ``network`` and list the token transfers it made (payer → payTo, amount, how).

    Raises:
        CouldNotCheck: NETWORK_NOT_CONFIGURED (no node for the network) or RPC_FAILED (the node could not be read).
        MalformedInput: BAD_FIELD_VALUE — the transaction is not a 0x-prefixed 32-byte hash.
    """
    if not TX_HASH.match(transaction):
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "transaction must be 0x + 64 hex digits")
    if payments is None:
        raise CouldNotCheck(Reason.NETWORK_NOT_CONFIGURED, "no payment networks are configured")
    seen = payments.observe(network=network, transaction=transaction)
    if not seen.known:
        status = PaymentStatus.NOT_FOUND
    elif not seen.mined:
        status = PaymentStatus.PENDING
    elif seen.status != 1:
        status = PaymentStatus.REVERTED
    else:
        status = PaymentStatus.SETTLED if seen.confirmations >= payments.min_confirmations else PaymentStatus.PENDING
    moved = tuple(
        PaymentTransfer(asset=t.asset, payer=t.sender, pay_to=t.recipient, amount=str(t.value),
                        method=payment_method(seen.logs, transfer=t))
        for t in transfers(seen.logs)
    )  # fmt: skip
    return PaymentFacts(network=network, transaction=transaction.lower(), status=status,
                        block_number=seen.block_number, confirmations=seen.confirmations, transfers=moved)  # fmt: skip


def check_tx_interactions(
    *,
    verdict: ReviewVerdict,
    review: Review,
    attester: str,
    payments: PaymentReader | None,
    resolver: DidResolver | None,
    controllers: ControllerResolver | None,
    now: int,
    fresh: bool = False,
) -> ReviewVerdict:
    """The verdict with every ``tx-interaction`` proof checked on its chain (the artifact pipeline left it
    ``unsupported``) and the evidence class raised to ``tx-interaction`` when one verified and nothing stronger
    backs the review. Never raises: malformed → invalid, look-up failures → indeterminate."""
    return with_chain_proofs(
        verdict=verdict, review=review, spec=CHAIN_PROOFS["tx-interaction"], now=now, marks_signature=True,
        judge=lambda raw: tx_interaction_verdict(subject=review.subject, raw=raw, attester=attester,
                                                 payments=payments, resolver=resolver, controllers=controllers,
                                                 fresh=fresh),
    )  # fmt: skip


def tx_interaction_verdict(
    *, subject: str, raw: str, attester: str, payments: PaymentReader | None, resolver: DidResolver | None,
    controllers: ControllerResolver | None, fresh: bool = False,
) -> tuple[ProofStatus, Reason | None, str]:  # fmt: skip
    """(status, reason, detail) of one ``tx-interaction`` proof (raw wrapper JSON) of a review of ``subject`` by
    ``attester``, read on its chain (``fresh``: not from the cache — re-verification). Never raises: malformed →
    invalid; network not configured, RPC down, a look-up failed, not yet confirmed → indeterminate."""
    try:
        network, tx = parse_tx_proof(raw)
    except MalformedInput as exc:
        return ProofStatus.INVALID, exc.reason, exc.detail
    if payments is None:
        return ProofStatus.INDETERMINATE, Reason.NETWORK_NOT_CONFIGURED, "no payment networks"
    try:
        observation = payments.observe(network=network, transaction=tx, fresh=fresh)
    except CouldNotCheck as exc:
        return ProofStatus.INDETERMINATE, exc.reason, exc.detail

    def is_subject_address(address: str) -> bool:
        if not subject.startswith("did:web:"):
            return False
        check = PAYEES.check(artifact=service_probe(subject), documents=resolver, controllers=controllers)
        return check(address)

    return judge_tx_interaction(observation=observation, attester=attester, subject=subject,
                                is_subject_address=is_subject_address,
                                min_confirmations=payments.min_confirmations)  # fmt: skip


def raise_for_tx_interaction(verdict: ReviewVerdict) -> None:
    """Refuse a submission whose ``tx-interaction`` proof is invalid (malformed, unknown, reverted, or sent by
    someone else). Unauthorized (the tx went elsewhere) and indeterminate ones are stored: they weigh nothing.

    Raises:
        CheckFailed: the proof's reason (``tx-not-found``, ``tx-reverted``, ``tx-sender-mismatch``, …) — 422.
    """
    for p in verdict.proofs:
        if p.proof_type in CHAIN_PROOFS and p.outcome.status is ProofStatus.INVALID:
            raise CheckFailed(p.outcome.reason or Reason.INVALID_REVIEW, f"proofs[{p.position}]: {p.outcome.detail}")

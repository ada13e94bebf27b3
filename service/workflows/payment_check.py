"""Check that the payment a receipt names really happened: read the transaction (``service.payments``), judge it
(``service.verdicts.payment``), attach the verdict to the receipt proof.

Only receipts that are verified, bound to the review (payer == attester, subject, fresh) and name a
``transaction`` are checked: a payment proves nothing about a review its receipt does not back. The payment terms
(asset, payTo, amount) come from a signed offer of the same review for the same resource whose signer is authorized
for the service; without one, the address paid must itself be authorized for the service (the signer tiers:
did:web document, DNS ``_controllers``) and the amount is recorded as observed.

``indeterminate`` (network not configured, RPC down, a look-up failed) never refuses and never downgrades.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from service.domain import (
    ArtifactKind,
    OfferPayload,
    PaymentCheck,
    PaymentStatus,
    ProofStatus,
    Reason,
    ReceiptPayload,
    Review,
)
from service.errors import CheckFailed, CouldNotCheck, MalformedInput
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.payments.reader import PaymentReader
from service.verdicts import OFFER_TRUST_TIERS, ProofEvaluation, ReviewVerdict
from service.verdicts.payment import (
    PaymentTerms,
    evidence_with_payment,
    judge_payment,
    payee_check,
    payment_method,
    refusal,
    service_address_check,
    transfers,
    unchecked,
)
from service.verdicts.registry import CHAIN_PROOFS, stronger_evidence
from service.verdicts.tx_interaction import judge_tx_interaction, parse_tx_proof

_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


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
    is_payee = payee_check(artifact=proof.artifact, documents=resolver, controllers=controllers)
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
    if not _TX_HASH.match(transaction):
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
    )
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
    spec = CHAIN_PROOFS["tx-interaction"]
    changed = False
    proofs = list(verdict.proofs)
    for i, p in enumerate(proofs):
        if p.proof_type != spec.proof_type or p.position >= len(review.proofs):
            continue
        status, reason, detail = _tx_verdict(review=review, raw=review.proofs[p.position], attester=attester,
                                             payments=payments, resolver=resolver, controllers=controllers,
                                             fresh=fresh)  # fmt: skip
        outcome = replace(p.outcome, status=status, reason=reason, detail=detail, checked_at=now,
                          signature_valid=status is ProofStatus.VERIFIED)  # fmt: skip
        proofs[i] = replace(p, outcome=outcome, bound=status is ProofStatus.VERIFIED)
        changed = True
    if not changed:
        return verdict
    evidence = verdict.evidence
    if any(p.proof_type == spec.proof_type and p.outcome.status is ProofStatus.VERIFIED for p in proofs):
        evidence = stronger_evidence(evidence, spec.verified_evidence)
    return replace(verdict, proofs=tuple(proofs), evidence=evidence)


def _tx_verdict(
    *, review: Review, raw: str, attester: str, payments: PaymentReader | None, resolver: DidResolver | None,
    controllers: ControllerResolver | None, fresh: bool,
) -> tuple[ProofStatus, Reason | None, str]:  # fmt: skip
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
        if not review.subject.startswith("did:web:"):
            return False
        check = service_address_check(service_did=review.subject, documents=resolver, controllers=controllers)
        return check(address)

    return judge_tx_interaction(observation=observation, attester=attester, subject=review.subject,
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

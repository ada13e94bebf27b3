"""PURE payment-evidence rules (PROTOCOLS.md §6): does a transaction show that the receipt's payer paid?

Input: the receipt, the payment terms of a signed offer for the same resource (when one is attached), and what the
payment network said about the receipt's ``transaction`` (a :class:`~service.domain.TxObservation`, read elsewhere in
one round trip). Output: a frozen :class:`~service.domain.PaymentCheck`.

The rule, in order:

1. an offer naming another network than the receipt → ``mismatch`` (``payment-network-mismatch``);
2. the node does not know the transaction → ``not-found``; it is known but not mined → ``pending``;
3. mined with status 0 → ``reverted``;
4. the receipt carries a ``Transfer(from, to, value)`` log emitted by the asset contract with ``from == payer``,
   ``to == payTo``, ``value == amount`` — asset/payTo/amount from the offer; without an offer ``to`` must be an
   address authorized for the service (``is_payee``) and the amount is recorded as observed. No such log →
   ``mismatch`` with the closest explanation (wrong payee / amount / asset / payer, or no transfer at all);
5. fewer than ``min_confirmations`` confirmations → ``pending`` (fields filled), else ``settled``.

How the money moved is recorded as ``method``: ``eip3009`` (the asset emitted ``AuthorizationUsed`` by the payer in
the same transaction: ``transferWithAuthorization``, sent by a facilitator, so ``tx.from`` is never the payer),
``permit2`` (the x402 Permit2 proxy emitted ``x402PermitTransfer(from, to, amount, asset)`` for this payment), or
``transfer`` (any other way the payer's tokens reached ``payTo``). All three back a purchase: the ``Transfer`` log from
the payer is the evidence; the method only says how it got there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from service.dids import did_web_host
from service.domain import (
    ArtifactFormat,
    ArtifactKind,
    OfferPayload,
    PaymentCheck,
    PaymentStatus,
    Reason,
    ReceiptPayload,
    SignedArtifact,
    TxLog,
    TxObservation,
)
from service.errors import CouldNotCheck, Unauthorized
from service.verdicts.artifact import authorize_signer
from service.verdicts.registry import CHAIN_PROOFS, PAYMENT_BACKED, VERIFIED, stronger_evidence
from service.verdicts.sources import ControllerSource, DocumentSource

# topic0 values (keccak256 of the event signatures; checked in tests/payments/test_rules.py).
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
AUTHORIZATION_USED_TOPIC = "0x98de503528ee59b575ef0c0a2576a82497bfc029a5685b209e9ec333479b10a5"
X402_PERMIT_TRANSFER_TOPIC = "0xc0482a187556d776f2ef86c70df26debca6009f9d1647f6ce59e2f57fea17dc6"
# x402's exact-scheme Permit2 proxy (same address on every chain).
PERMIT2_PROXY = "0x402085c248eea27d92e8b30b2c58ed07f9e20001"

# Evidence classes given by proofs checked outside the signature pipeline (kept by re-judging signatures).
_CHAIN_EVIDENCE = frozenset(spec.verified_evidence for spec in CHAIN_PROOFS.values())

# (address) -> is it an address of the receipt's service? May raise CouldNotCheck (a look-up failed).
PayeeCheck = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class PaymentTerms:
    """What a signed offer for the same resource fixed: where, what and how much."""

    network: str
    asset: str
    pay_to: str
    amount: str


@dataclass(frozen=True, slots=True)
class Transfer:
    asset: str
    sender: str
    recipient: str
    value: int


def _word_address(word: str) -> str | None:
    raw = word.removeprefix("0x")
    if len(raw) != 64 or raw[:24].strip("0"):
        return None
    return "0x" + raw[24:].lower()


def _words(data: str) -> list[str]:
    raw = data.removeprefix("0x")
    return [raw[i : i + 64] for i in range(0, len(raw) - len(raw) % 64, 64)]


@functools.lru_cache(maxsize=4096)  # observations are cached by the reader: decode each log set once
def transfers(logs: tuple[TxLog, ...]) -> tuple[Transfer, ...]:
    """ERC-20 ``Transfer`` logs (3 topics, 32-byte value), decoded. Malformed ones are ignored."""
    out: list[Transfer] = []
    for log in logs:
        if len(log.topics) != 3 or log.topics[0].lower() != TRANSFER_TOPIC:
            continue
        sender, recipient = _word_address(log.topics[1]), _word_address(log.topics[2])
        words = _words(log.data)
        if sender is None or recipient is None or len(words) != 1:
            continue
        out.append(Transfer(asset=log.address.lower(), sender=sender, recipient=recipient, value=int(words[0], 16)))
    return tuple(out)


def payment_method(logs: tuple[TxLog, ...], *, transfer: Transfer) -> str:
    """``eip3009``, ``permit2`` or ``transfer`` (see the module docstring)."""
    for log in logs:
        topic0 = log.topics[0].lower() if log.topics else ""
        if (
            topic0 == AUTHORIZATION_USED_TOPIC
            and log.address.lower() == transfer.asset
            and len(log.topics) == 3
            and _word_address(log.topics[1]) == transfer.sender
        ):
            return "eip3009"
        if topic0 == X402_PERMIT_TRANSFER_TOPIC and log.address.lower() == PERMIT2_PROXY:
            words = _words(log.data)
            if len(words) == 4 and (
                _word_address(words[0]),
                _word_address(words[1]),
                int(words[2], 16),
                _word_address(words[3]),
            ) == (transfer.sender, transfer.recipient, transfer.value, transfer.asset):
                return "permit2"
    return "transfer"


def _amount(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def judge_payment(
    *,
    receipt: ReceiptPayload,
    observation: TxObservation,
    terms: PaymentTerms | None,
    is_payee: PayeeCheck,
    min_confirmations: int,
    now: int,
) -> PaymentCheck:
    """Decide what ``observation`` proves about ``receipt``'s payment. Never raises: a failed payee look-up gives
    ``indeterminate``."""
    payer = receipt.payer.lower()

    def verdict(
        status: PaymentStatus, reason: Reason | None, detail: str = "", paid: Transfer | None = None
    ) -> PaymentCheck:
        return PaymentCheck(
            status=status, reason=reason, network=receipt.network, transaction=receipt.transaction,
            asset=paid.asset if paid else (terms.asset.lower() if terms else None),
            pay_to=paid.recipient if paid else (terms.pay_to.lower() if terms else None),
            amount=str(paid.value) if paid else (terms.amount if terms else None),
            payer=payer, method=payment_method(observation.logs, transfer=paid) if paid else None,
            block_number=observation.block_number, confirmations=observation.confirmations, checked_at=now,
            detail=detail,
        )  # fmt: skip

    if terms is not None and terms.network != receipt.network:
        return verdict(
            PaymentStatus.MISMATCH, Reason.PAYMENT_NETWORK_MISMATCH,
            f"the offer is for {terms.network}, the receipt for {receipt.network}",
        )  # fmt: skip
    if not observation.known:
        return verdict(PaymentStatus.NOT_FOUND, Reason.PAYMENT_NOT_FOUND, f"no transaction {receipt.transaction}")
    if not observation.mined:
        return verdict(PaymentStatus.PENDING, Reason.PAYMENT_PENDING, "in the mempool, not mined yet")
    if observation.status != 1:
        return verdict(PaymentStatus.REVERTED, Reason.PAYMENT_REVERTED, "the transaction reverted")

    found = list(transfers(observation.logs))
    if terms is not None:
        chosen, problem = _match_terms(found, payer=payer, terms=terms)
    else:
        try:
            chosen, problem = _match_authorized(found, payer=payer, is_payee=is_payee)
        except CouldNotCheck as exc:
            return verdict(PaymentStatus.INDETERMINATE, exc.reason, f"payee authorization: {exc.detail}")
    if chosen is None:
        reason, detail = problem
        return verdict(PaymentStatus.MISMATCH, reason, detail)

    if observation.confirmations < min_confirmations:
        detail = f"{observation.confirmations} of {min_confirmations} confirmations"
        return verdict(PaymentStatus.PENDING, Reason.PAYMENT_PENDING, detail, paid=chosen)
    return verdict(PaymentStatus.SETTLED, None, paid=chosen)


def _match_terms(
    found: list[Transfer], *, payer: str, terms: PaymentTerms
) -> tuple[Transfer | None, tuple[Reason, str]]:
    asset, pay_to, amount = terms.asset.lower(), terms.pay_to.lower(), _amount(terms.amount)
    for t in found:
        if (t.asset, t.sender, t.recipient, t.value) == (asset, payer, pay_to, amount):
            return t, (Reason.PAYMENT_MISMATCH, "")
    from_payer = [t for t in found if t.sender == payer]
    if any(t.asset == asset and t.recipient == pay_to for t in from_payer):
        return None, (Reason.PAYMENT_WRONG_AMOUNT, f"the payer sent another amount than {terms.amount}")
    if any(t.asset == asset for t in from_payer):
        return None, (Reason.PAYMENT_WRONG_PAYEE, f"the payer paid someone else than {terms.pay_to}")
    if any(t.recipient == pay_to for t in from_payer):
        return None, (Reason.PAYMENT_WRONG_ASSET, f"the payer paid in another asset than {terms.asset}")
    if any(t.asset == asset and t.recipient == pay_to for t in found):
        return None, (Reason.PAYMENT_WRONG_PAYER, f"{terms.pay_to} was paid by someone else than {payer}")
    return None, (Reason.PAYMENT_NO_TRANSFER, "no transfer from the payer in this transaction")


def _match_authorized(
    found: list[Transfer], *, payer: str, is_payee: PayeeCheck
) -> tuple[Transfer | None, tuple[Reason, str]]:
    """First transfer from the payer to an address of the service. Raises CouldNotCheck when no transfer matched
    and a look-up failed (unknown is not a mismatch)."""
    from_payer = [t for t in found if t.sender == payer]
    failed: CouldNotCheck | None = None
    for t in from_payer:
        try:
            if is_payee(t.recipient):
                return t, (Reason.PAYMENT_MISMATCH, "")
        except CouldNotCheck as exc:
            failed = failed or exc
    if failed is not None:
        raise failed
    if from_payer:
        return None, (Reason.PAYMENT_PAYEE_NOT_AUTHORIZED, "the payer paid an address not authorized for the service")
    if found:
        return None, (Reason.PAYMENT_WRONG_PAYER, f"no transfer from {payer} in this transaction")
    return None, (Reason.PAYMENT_NO_TRANSFER, "no token transfer in this transaction")


def unchecked(*, receipt: ReceiptPayload, reason: Reason, detail: str, now: int) -> PaymentCheck:
    """``indeterminate``: the network is not configured or could not be read. Never a negative verdict."""
    return PaymentCheck(
        status=PaymentStatus.INDETERMINATE,
        reason=reason,
        network=receipt.network,
        transaction=receipt.transaction,
        payer=receipt.payer.lower(),
        checked_at=now,
        detail=detail,
    )


def evidence_with_payment(*, evidence: str, verified_purchase: bool, checks: Iterable[PaymentCheck]) -> str:
    """The evidence class of a review given its receipts' payment verdicts: a verified purchase whose payment
    settled is ``payment-backed`` (the top of the ladder); anything else keeps its class — a pending or
    indeterminate payment leaves a verified purchase ``verified``."""
    if verified_purchase and any(c.status is PaymentStatus.SETTLED for c in checks):
        return PAYMENT_BACKED
    return evidence


def payee_check(
    *, artifact: SignedArtifact, documents: DocumentSource | None, controllers: ControllerSource | None
) -> PayeeCheck:
    """``address → bool``: is the address authorized for the service of ``artifact``'s resourceUrl by the signer
    tiers an EIP-712 signer would be (the did:web document, DNS ``_controllers``; never offer-payto)? The returned
    function raises CouldNotCheck when no tier matched and a look-up failed."""

    def is_payee(address: str) -> bool:
        probe = replace(artifact, format=ArtifactFormat.EIP712, kind=ArtifactKind.OFFER)  # only when asked
        try:
            authorize_signer(artifact=probe, signer=address, key=None, documents=documents, controllers=controllers,
                             offers=())  # fmt: skip
        except Unauthorized:
            return False
        return True

    return is_payee


def service_probe(service_did: str) -> SignedArtifact:
    """An artifact standing for the did:web service itself (resource ``https://<host>/``): what the payee and
    subject-address checks authorize an address against.

    Raises:
        MalformedInput: ``service_did`` is not a did:web DID.
    """
    url = f"https://{did_web_host(service_did)}/"
    return SignedArtifact(
        kind=ArtifactKind.OFFER, format=ArtifactFormat.EIP712,
        payload=OfferPayload(version=1, resource_url=url, scheme="", network="", asset="", pay_to="", amount="0",
                             valid_until=0),
        signature="", signing_input=b"", replay_key="",
    )  # fmt: skip


def service_address_check(
    *, service_did: str, documents: DocumentSource | None, controllers: ControllerSource | None
) -> PayeeCheck:
    """``address → bool`` for a did:web service DID: the same look-ups as :func:`payee_check`, for the service
    itself rather than for an artifact's resource.

    Raises:
        MalformedInput: ``service_did`` is not a did:web DID.
    """
    return payee_check(artifact=service_probe(service_did), documents=documents, controllers=controllers)


def stored_evidence(
    *, signed_evidence: str, verified_chain_proofs: Iterable[str], verified_purchase: bool,
    checks: Iterable[PaymentCheck],
) -> str:  # fmt: skip
    """The evidence class of a stored review from its parts: what its signed proofs give (``review.evidence_class``
    over the stored outcomes), raised by each verified chain-checked proof (``tx-interaction``,
    ``evidence-pointer``: their registry class) and by a settled payment of a verified purchase."""
    evidence = signed_evidence
    for proof_type in verified_chain_proofs:
        spec = CHAIN_PROOFS.get(proof_type)
        if spec is not None:
            evidence = stronger_evidence(evidence, spec.verified_evidence)
    return evidence_with_payment(evidence=evidence, verified_purchase=verified_purchase, checks=checks)


def unbacked_evidence(evidence: str) -> str:
    """The evidence class a review has before its payments count: a payment-backed review is a verified purchase
    (payment-backed is only ever reached from verified)."""
    return VERIFIED if evidence == PAYMENT_BACKED else evidence


def keep_payment_backing(*, stored: str, judged: str, verified_purchase: bool) -> str:
    """Re-judging a review's signatures (which knows nothing of chain evidence) must not drop what the chain checks
    established: a stored ``payment-backed`` review judged ``verified`` again stays ``payment-backed`` (the payment
    re-check alone moves it), and a stored class of a chain-checked proof (``tx-interaction``, ``evidence-pointer``)
    is kept unless something stronger now backs the review (those proofs are re-checked by reading their chain or
    document: ``service.workflows.payment_recheck`` for ``tx-interaction``)."""
    if stored == PAYMENT_BACKED and judged == VERIFIED and verified_purchase:
        return PAYMENT_BACKED
    if stored in _CHAIN_EVIDENCE:  # tx-interaction, evidence-pointer: established by reading chain / a document
        return stronger_evidence(judged, stored)
    return judged


# Statuses that refuse a submission (422), each with its problem code.
REFUSING = {
    PaymentStatus.MISMATCH: Reason.PAYMENT_MISMATCH,
    PaymentStatus.REVERTED: Reason.PAYMENT_REVERTED,
    PaymentStatus.NOT_FOUND: Reason.PAYMENT_NOT_FOUND,
}


def refusal(check: PaymentCheck) -> Reason | None:
    """The 422 code a submission gets for this payment verdict, or None when it is acceptable."""
    return REFUSING.get(check.status)

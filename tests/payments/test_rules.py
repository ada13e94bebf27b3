"""Unit tests of the pure payment rules (service.verdicts.payment) on hand-built observations.

The same rules run against real chains in test_anvil_payments.py / test_embedded_payments.py.
"""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak

from service.domain import PaymentStatus, ProofStatus, Reason, ReceiptPayload, TxLog, TxObservation
from service.errors import DnsFailed
from service.verdicts import payment as rules
from service.verdicts.payment import PaymentTerms, judge_payment
from service.verdicts.tx_interaction import keeps_stored

NET = "eip155:84532"
TX = "0x" + "ab" * 32
PAYER = "0x" + "11" * 20
PAYTO = "0x" + "22" * 20
OTHER = "0x" + "33" * 20
ASSET = "0x" + "44" * 20
ASSET2 = "0x" + "55" * 20


def word(value: int | str) -> str:
    if isinstance(value, str):
        return "0x" + value.removeprefix("0x").rjust(64, "0")
    return "0x" + f"{value:064x}"


def transfer(asset: str, sender: str, to: str, value: int) -> TxLog:
    return TxLog(address=asset, topics=(rules.TRANSFER_TOPIC, word(sender), word(to)), data=word(value))


def auth_used(asset: str, authorizer: str) -> TxLog:
    return TxLog(address=asset, topics=(rules.AUTHORIZATION_USED_TOPIC, word(authorizer), word(7)), data="0x")


def observed(*logs: TxLog, status: int = 1, head: int = 10, block: int = 10, mined: bool = True) -> TxObservation:
    return TxObservation(
        network=NET, transaction=TX, head=head, mined=mined, known=True, status=status if mined else None,
        block_number=block if mined else None, tx_from=OTHER, tx_to=ASSET, logs=logs,
    )  # fmt: skip


RECEIPT = ReceiptPayload(version=1, network=NET, resource_url="https://api.example.com/x", payer="0x"
                         + PAYER[2:].upper(), issued_at=1, transaction=TX)  # fmt: skip
TERMS = PaymentTerms(network=NET, asset=ASSET, pay_to=PAYTO, amount="1000")


def judge(obs: TxObservation, terms: PaymentTerms | None = TERMS, payees: frozenset[str] = frozenset({PAYTO}),
          confirmations: int = 1):  # type: ignore[no-untyped-def]  # fmt: skip
    return judge_payment(receipt=RECEIPT, observation=obs, terms=terms, is_payee=lambda a: a in payees,
                         min_confirmations=confirmations, now=5)  # fmt: skip


def test_event_topics_are_the_keccak_of_their_signatures() -> None:
    assert "0x" + keccak(text="Transfer(address,address,uint256)").hex() == rules.TRANSFER_TOPIC
    assert "0x" + keccak(text="AuthorizationUsed(address,bytes32)").hex() == rules.AUTHORIZATION_USED_TOPIC
    permit = "x402PermitTransfer(address,address,uint256,address)"
    assert "0x" + keccak(text=permit).hex() == rules.X402_PERMIT_TRANSFER_TOPIC


def test_eip3009_settlement_is_settled_with_method() -> None:
    check = judge(observed(auth_used(ASSET, PAYER), transfer(ASSET, PAYER, PAYTO, 1000)))
    assert (check.status, check.reason, check.method) == (PaymentStatus.SETTLED, None, "eip3009")
    assert (check.asset, check.pay_to, check.amount, check.block_number) == (ASSET, PAYTO, "1000", 10)


def test_permit2_proxy_path_is_recognised() -> None:
    data = "0x" + "".join(w[2:] for w in (word(PAYER), word(PAYTO), word(1000), word(ASSET)))
    proxy_log = TxLog(address=rules.PERMIT2_PROXY, topics=(rules.X402_PERMIT_TRANSFER_TOPIC,), data=data)
    check = judge(observed(transfer(ASSET, PAYER, PAYTO, 1000), proxy_log))
    assert (check.status, check.method) == (PaymentStatus.SETTLED, "permit2")


def test_plain_transfer_counts_and_says_so() -> None:
    assert judge(observed(transfer(ASSET, PAYER, PAYTO, 1000))).method == "transfer"


@pytest.mark.parametrize(
    ("log", "reason"),
    [
        (transfer(ASSET, PAYER, OTHER, 1000), Reason.PAYMENT_WRONG_PAYEE),
        (transfer(ASSET, PAYER, PAYTO, 999), Reason.PAYMENT_WRONG_AMOUNT),
        (transfer(ASSET2, PAYER, PAYTO, 1000), Reason.PAYMENT_WRONG_ASSET),
        (transfer(ASSET, OTHER, PAYTO, 1000), Reason.PAYMENT_WRONG_PAYER),
        (TxLog(address=ASSET, topics=(rules.AUTHORIZATION_USED_TOPIC,), data="0x"), Reason.PAYMENT_NO_TRANSFER),
    ],
)
def test_mismatches_name_what_differs(log: TxLog, reason: Reason) -> None:
    check = judge(observed(log))
    assert (check.status, check.reason) == (PaymentStatus.MISMATCH, reason)
    assert rules.refusal(check) is Reason.PAYMENT_MISMATCH


def test_reverted_not_found_and_mempool() -> None:
    assert judge(observed(status=0)).status is PaymentStatus.REVERTED
    unknown = TxObservation(network=NET, transaction=TX, head=10, mined=False, known=False)
    assert judge(unknown).status is PaymentStatus.NOT_FOUND
    in_pool = TxObservation(network=NET, transaction=TX, head=10, mined=False, known=True)
    assert (judge(in_pool).status, rules.refusal(judge(in_pool))) == (PaymentStatus.PENDING, None)


def test_too_few_confirmations_is_pending_then_settled() -> None:
    pay = transfer(ASSET, PAYER, PAYTO, 1000)
    early = judge(observed(pay, head=11, block=10), confirmations=3)
    assert (early.status, early.confirmations, early.pay_to) == (PaymentStatus.PENDING, 2, PAYTO)
    assert judge(observed(pay, head=12, block=10), confirmations=3).status is PaymentStatus.SETTLED


def test_offer_for_another_network_is_a_mismatch() -> None:
    terms = PaymentTerms(network="eip155:8453", asset=ASSET, pay_to=PAYTO, amount="1000")
    check = judge(observed(transfer(ASSET, PAYER, PAYTO, 1000)), terms=terms)
    assert (check.status, check.reason) == (PaymentStatus.MISMATCH, Reason.PAYMENT_NETWORK_MISMATCH)


def test_without_offer_payee_must_be_authorized_and_amount_is_observed() -> None:
    pay = observed(transfer(ASSET, PAYER, OTHER, 5), transfer(ASSET, PAYER, PAYTO, 1234))
    check = judge(pay, terms=None)
    assert (check.status, check.pay_to, check.amount, check.asset) == (PaymentStatus.SETTLED, PAYTO, "1234", ASSET)
    refused = judge(observed(transfer(ASSET, PAYER, OTHER, 5)), terms=None)
    assert (refused.status, refused.reason) == (PaymentStatus.MISMATCH, Reason.PAYMENT_PAYEE_NOT_AUTHORIZED)


def test_failed_payee_lookup_is_indeterminate_never_a_mismatch() -> None:
    def broken(_address: str) -> bool:
        raise DnsFailed(Reason.DNS_FAILED, "timeout")

    check = judge_payment(receipt=RECEIPT, observation=observed(transfer(ASSET, PAYER, OTHER, 5)), terms=None,
                          is_payee=broken, min_confirmations=1, now=5)  # fmt: skip
    assert (check.status, check.reason) == (PaymentStatus.INDETERMINATE, Reason.DNS_FAILED)
    assert rules.refusal(check) is None


def test_json_round_trip() -> None:
    check = judge(observed(auth_used(ASSET, PAYER), transfer(ASSET, PAYER, PAYTO, 1000)))
    assert type(check).from_json(check.to_json()) == check


@pytest.mark.parametrize(
    ("stored", "fresh", "kept"),
    [
        (ProofStatus.VERIFIED, ProofStatus.INDETERMINATE, True),  # could not re-read: never a downgrade
        (ProofStatus.VERIFIED, ProofStatus.UNAUTHORIZED, True),  # target judged as of acceptance
        (ProofStatus.VERIFIED, ProofStatus.INVALID, False),  # gone / reverted / someone else's
        (ProofStatus.INDETERMINATE, ProofStatus.VERIFIED, False),  # confirmed since
        (ProofStatus.INDETERMINATE, ProofStatus.UNAUTHORIZED, False),
        (ProofStatus.UNAUTHORIZED, ProofStatus.VERIFIED, False),
    ],
)
def test_tx_interaction_recheck_keeps_or_moves(stored: ProofStatus, fresh: ProofStatus, kept: bool) -> None:
    assert keeps_stored(stored=stored, fresh=fresh) is kept

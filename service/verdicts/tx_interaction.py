"""PURE rules of the OMATrust ``tx-interaction`` proof (PROTOCOLS.md §8): ``{chainId, txHash}``, purpose
``commercial-tx``. The transaction must have succeeded (with the configured confirmations), have been sent by the
reviewer (``tx.from == attester``), and have gone to an address of the subject (``tx.to``: for ``did:pkh`` the DID's
own address; for ``did:web`` an address authorized for the service by the signer tiers — did:web document, DNS
``_controllers``). Policy choice: the block time is not compared with the review time (the spec leaves it open; a
transaction from before the service existed would still have to reach one of its addresses)."""

from __future__ import annotations

import json
import re
from typing import Any

from service.domain import ProofStatus, Reason, TxObservation
from service.errors import CouldNotCheck, MalformedInput
from service.verdicts.payment import PayeeCheck

_CAIP2 = re.compile(r"^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$")
_TX = re.compile(r"^0x[0-9a-fA-F]{64}$")


def parse_tx_proof(raw: str) -> tuple[str, str]:
    """(network, tx hash) of a ``tx-interaction`` proof wrapper (JSON text).

    Raises:
        MalformedInput: not a wrapper with purpose ``commercial-tx`` and a ``{chainId, txHash}`` object.
    """
    try:
        wrapper: Any = json.loads(raw)
    except ValueError as exc:
        raise MalformedInput(Reason.MALFORMED_JSON, "tx-interaction proof is not JSON") from exc
    obj = wrapper.get("proofObject") if isinstance(wrapper, dict) else None
    if not isinstance(obj, dict):
        raise MalformedInput(Reason.MISSING_FIELD, "tx-interaction proof without a proofObject")
    if wrapper.get("proofPurpose", "commercial-tx") != "commercial-tx":
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "tx-interaction proofPurpose must be commercial-tx")
    network, tx = obj.get("chainId"), obj.get("txHash")
    if not isinstance(network, str) or not _CAIP2.match(network):
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "chainId must be a CAIP-2 network id (eip155:<id>)")
    if not isinstance(tx, str) or not _TX.match(tx):
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "txHash must be 0x + 64 hex digits")
    return network, tx.lower()


def pkh_address(subject: str) -> str | None:
    """The address of a ``did:pkh:eip155:<chain>:0x…`` subject, lower-case (None for other DIDs)."""
    parts = subject.split(":")
    if len(parts) == 5 and parts[:3] == ["did", "pkh", "eip155"]:
        return parts[4].lower()
    return None


def judge_tx_interaction(
    *, observation: TxObservation, attester: str, subject: str, is_subject_address: PayeeCheck,
    min_confirmations: int,
) -> tuple[ProofStatus, Reason | None, str]:  # fmt: skip
    """(status, reason, detail) of a ``tx-interaction`` proof. Never raises: a failed look-up is indeterminate."""
    if not observation.known:
        return ProofStatus.INVALID, Reason.TX_NOT_FOUND, f"no transaction {observation.transaction}"
    if not observation.mined or observation.confirmations < min_confirmations:
        return ProofStatus.INDETERMINATE, Reason.TX_PENDING, f"{observation.confirmations} confirmations"
    if observation.status != 1:
        return ProofStatus.INVALID, Reason.TX_REVERTED, "the transaction reverted"
    if (observation.tx_from or "") != attester.lower():
        return ProofStatus.INVALID, Reason.TX_SENDER_MISMATCH, f"sent by {observation.tx_from}, not the reviewer"
    target = observation.tx_to or ""
    own = pkh_address(subject)
    try:
        reaches = bool(target) and (target == own if own is not None else is_subject_address(target))
    except CouldNotCheck as exc:
        return ProofStatus.INDETERMINATE, exc.reason, f"subject address look-up: {exc.detail}"
    if not reaches:
        detail = f"{target or 'no recipient'} is not an address of {subject}"
        return ProofStatus.UNAUTHORIZED, Reason.TX_TARGET_NOT_AUTHORIZED, detail
    return ProofStatus.VERIFIED, None, ""


def keeps_stored(*, stored: ProofStatus, fresh: ProofStatus) -> bool:
    """Re-verification: does a re-read ``fresh`` verdict leave the ``stored`` one in place? Yes when the re-read is
    ``indeterminate`` (never a downgrade on a failed read), and when a ``verified`` proof's target is no longer an
    address of the subject (``unauthorized``): the chain facts still hold and the address was the subject's when the
    review was accepted — like a signer, a target is judged as of acceptance, so rotating an address does not
    discredit past interactions. A transaction that is gone, reverted or sent by someone else does change it."""
    if fresh is ProofStatus.INDETERMINATE:
        return True
    return stored is ProofStatus.VERIFIED and fresh is ProofStatus.UNAUTHORIZED

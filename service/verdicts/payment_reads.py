"""Which chain read a proof will need, taken cheaply from its text: submission sends these reads before the proofs
are checked (``service.workflows.payment_check.start_chain_reads``), so their round trip overlaps that work.

Nothing is judged here. Only the (network, transaction) that an x402 receipt or a ``tx-interaction`` proof names is
taken — for a receipt, without the full parse (no EIP-712 digest, no field-type rules, no signature form): the
wrapper's JSON, then the EIP-712 ``payload`` object or the JWS payload (the compact token's middle segment). For
every receipt the full parse (``service.proofs.parse_artifact``) accepts, the answer is the one the full parse
gives; a proof the full parse refuses may still get an answer, which costs one cached read and nothing else.
"""

from __future__ import annotations

import json
import re
from typing import Any

from service.domain import ArtifactFormat, ArtifactKind
from service.errors import OmaTrustError
from service.proofs import X402_PROOF_TYPES
from service.proofs.encoding import b64url_decode
from service.proofs.fields import detect_kind
from service.proofs.jsonstrict import too_deep
from service.verdicts.registry import CHAIN_PROOFS
from service.verdicts.tx_interaction import parse_tx_proof

# A transaction hash as a receipt names it (also the form ``describe_payment`` accepts).
TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")

_RECEIPT_PROOF_TYPE = X402_PROOF_TYPES[ArtifactKind.RECEIPT]
_TX_INTERACTION = CHAIN_PROOFS["tx-interaction"].proof_type


def chain_read_of(*, raw: str) -> tuple[str, str] | None:
    """(network, transaction) that proof ``raw`` (its JSON text) asks to read on chain: a receipt naming a
    transaction hash, or a ``tx-interaction`` proof; None for any other proof and for text this cannot read.
    Never raises."""
    try:
        data = _object(raw)
        if data is None:
            return None
        if data.get("proofType") == _TX_INTERACTION:
            return parse_tx_proof(raw)
        return _receipt_read(data)
    except (OmaTrustError, ValueError, TypeError):  # UnicodeDecodeError is a ValueError
        return None


def _object(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str | bytes) or too_deep(text if isinstance(text, str) else text.decode("latin-1")):
        return None  # nesting deep enough to overflow the C JSON scanner: the full parse refuses it too
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def _receipt_read(data: dict[str, Any]) -> tuple[str, str] | None:
    envelope: dict[str, Any] | None = data
    if "proofType" in data:  # a wrapper; without one, a bare envelope (the full parse takes both)
        if data["proofType"] != _RECEIPT_PROOF_TYPE:
            return None
        inner = data.get("proofObject")
        envelope = inner if isinstance(inner, dict) else _object(inner)
    if envelope is None:
        return None
    fmt = envelope.get("format")
    if fmt == ArtifactFormat.EIP712.value:
        payload = envelope.get("payload")
    elif fmt == ArtifactFormat.JWS.value:
        compact = envelope.get("signature")
        parts = compact.split(".") if isinstance(compact, str) else ()
        if len(parts) != 3:
            return None
        payload = _object(b64url_decode(parts[1]))
    else:
        return None
    if not isinstance(payload, dict) or detect_kind(payload) is not ArtifactKind.RECEIPT:
        return None
    network, transaction = payload.get("network"), payload.get("transaction")
    if isinstance(network, str) and isinstance(transaction, str) and TX_HASH.match(transaction):
        return network, transaction
    return None

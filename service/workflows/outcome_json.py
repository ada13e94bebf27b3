"""One JSON shape for a proof verdict, shared by ``omatrust verify`` and ``POST /v1/proofs/verify``."""

from __future__ import annotations

from typing import Any

from service.domain import ProofOutcome


def outcome_to_json(outcome: ProofOutcome) -> dict[str, Any]:
    """camelCase verdict: kind, format, signatureValid, signer, status, reason, tier, replayKey, evidenceHash,
    checkedAt, detail."""
    return {
        "kind": outcome.kind.value if outcome.kind else None,
        "format": outcome.format.value if outcome.format else None,
        "signatureValid": outcome.signature_valid,
        "signer": outcome.signer,
        "status": outcome.status.value,
        "reason": outcome.reason.value if outcome.reason else None,
        "tier": outcome.tier.value if outcome.tier else None,
        "replayKey": outcome.replay_key,
        "evidenceHash": outcome.evidence_hash,
        "checkedAt": outcome.checked_at,
        "detail": outcome.detail,
    }

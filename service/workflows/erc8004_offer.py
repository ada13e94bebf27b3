"""Our stored reviews in ERC-8004's format: the feedback file a reviewer points ``giveFeedback`` at.

The agent is the one the review's subject maps to (``erc8004_agent_services``), or the one the caller names
(``agentRegistry`` CAIP-10 + ``agentId``). ``proofOfPayment`` is filled only from a receipt proof whose payment the
service verified (status ``settled``): never from what the reviewer asserted. The file's bytes are canonical JSON, so
their keccak256 (the ``feedbackHash``) is stable as long as the review and its payment verdict do not change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session

from service.proofs.hashing import keccak256
from service.store.erc8004 import agent_row, agents_of_service
from service.verdicts.erc8004 import ProofOfPayment, rating_feedback_file
from service.workflows.queries import review_view
from service.workflows.runtime import Runtime

_CAIP10 = re.compile(r"^eip155:[0-9]{1,20}:0x[0-9a-fA-F]{40}$")
REVIEW_NOT_FOUND = "review-not-found"
AGENT_UNKNOWN = "erc8004-agent-unknown"  # the subject maps to no indexed agent and the caller named none
AGENT_INVALID = "erc8004-agent-invalid"  # agentRegistry / agentId malformed or only one of them given


@dataclass(frozen=True, slots=True)
class OfferedFeedback:
    body: bytes
    feedback_hash: str  # 0x keccak256(body)
    agent_registry: str
    agent_id: int


def valid_agent(agent_registry: str | None, agent_id: int | None) -> bool:
    if agent_registry is None and agent_id is None:
        return True
    return agent_registry is not None and agent_id is not None and agent_id >= 0 and bool(_CAIP10.match(agent_registry))


def offered_feedback(
    *, rt: Runtime, review_id: str, base_url: str, agent_registry: str | None = None, agent_id: int | None = None
) -> OfferedFeedback | str:
    """The feedback file of ``review_id``, or a refusal code (REVIEW_NOT_FOUND, AGENT_UNKNOWN, AGENT_INVALID)."""
    if not valid_agent(agent_registry, agent_id):
        return AGENT_INVALID
    view = review_view(rt=rt, review_id=review_id)
    if view is None:
        return REVIEW_NOT_FOUND
    row = view.review
    if agent_registry is None or agent_id is None:
        with Session(rt.engine) as session:
            agents = agents_of_service(session, did_normalized=row.subject_normalized)
        if not agents:
            return AGENT_UNKNOWN
        chain_id, registry, agent = sorted(agents)[0]
        identity = _identity_of(rt, chain_id=chain_id, registry=registry, agent_id=agent)
        if identity is None:
            return AGENT_UNKNOWN
        agent_registry, agent_id = f"eip155:{chain_id}:{identity}", int(agent)
    proof = None
    for p in view.proofs:
        pay = p.payment or {}
        network = str(pay.get("network", ""))
        if pay.get("status") == "settled" and network.startswith("eip155:") and pay.get("payer") and pay.get("payTo"):
            proof = ProofOfPayment(str(pay["payer"]).lower(), str(pay["payTo"]).lower(),
                                   int(network.split(":")[1]), str(pay["transaction"]).lower())  # fmt: skip
            break
    body = rating_feedback_file(
        agent_registry=agent_registry.lower(),
        agent_id=agent_id,
        client_address=row.attester.lower(),
        created_at=datetime.fromtimestamp(row.review_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        rating=row.rating_value,
        proof=proof,
        attestation=row.attestation_uid,
        review_url=f"{base_url.rstrip('/')}/v1/reviews/{row.id}",
    )
    return OfferedFeedback(body, "0x" + keccak256(body).hex(), agent_registry.lower(), agent_id)


def _identity_of(rt: Runtime, *, chain_id: int, registry: str, agent_id: str) -> str | None:
    with Session(rt.engine) as session:
        row = agent_row(session, chain_id=chain_id, registry=registry, agent_id=int(agent_id))
    return row.identity_address if row is not None and row.identity_address else None

"""The ERC-8004 evidence stream of a service, for the reputation response: its own section, never in the score.

Feedback of every agent whose registration file maps to the service's DID (``erc8004_agent_services``) is summarized
by ``service.verdicts.erc8004.summarize``: counts, normalized mean of rating-tagged values, payment-verified share;
revoked and self-feedback are counted apart and left out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.dids import normalize_did
from service.errors import MalformedInput
from service.store.erc8004 import agent_row, agents_of_service, feedback_of_agents
from service.verdicts.erc8004 import FeedbackFacts, summarize


def service_feedback(*, engine: Engine, did: str, erc8004_weight: float = 0.0) -> dict[str, Any] | None:
    """The ``erc8004`` section for ``did``; None when no indexed agent maps to it (or ``did`` is not a DID).
    ``erc8004_weight`` is the scoring parameter (``ScoringParams.erc8004_weight``): ``inScore`` reports it."""
    try:
        normalized = normalize_did(did)
    except MalformedInput:
        return None
    with Session(engine) as session:
        agents = agents_of_service(session, did_normalized=normalized)
        if not agents:
            return None
        rows = feedback_of_agents(session, agents=agents)
        refs = []
        for chain_id, registry, agent_id in sorted(agents):
            agent = agent_row(session, chain_id=chain_id, registry=registry, agent_id=int(agent_id))
            identity = agent.identity_address if agent is not None else registry
            refs.append({"agentRegistry": f"eip155:{chain_id}:{identity}", "agentId": agent_id})
    summary = summarize(
        FeedbackFacts(
            value=int(r.value), decimals=r.value_decimals, tag1=r.tag1, status=r.status,
            self_feedback=r.self_feedback, revoked=r.revoked_block is not None,
        )
        for r in rows
    )  # fmt: skip
    return {
        **summary.to_json(),
        "agents": refs,
        "inScore": erc8004_weight > 0,
    }

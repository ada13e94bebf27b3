"""The ERC-8004 evidence stream of a service, for the reputation response: its own section, and — only through the
scoring parameter ``erc8004_weight`` (default 0: off) — part of the score.

Feedback of every agent whose registration file maps to the service's DID (``erc8004_agent_services``) is summarized
by ``service.verdicts.erc8004.summarize``: counts, normalized mean of rating-tagged values, payment-verified share;
revoked and self-feedback are counted apart and left out. :func:`score_stream` gives the score its ratings
(``service.verdicts.erc8004.score_units``) when the weight is on, and reads nothing when it is off.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.dids import normalize_did
from service.errors import MalformedInput
from service.scoring import ScoringParams
from service.store.erc8004 import agent_row, agents_of_service, feedback_of_agents
from service.store.tables import Erc8004FeedbackRow
from service.verdicts.erc8004 import FeedbackFacts, score_units, summarize


def _facts(rows: list[Erc8004FeedbackRow]) -> list[FeedbackFacts]:
    return [
        FeedbackFacts(
            value=int(r.value), decimals=r.value_decimals, tag1=r.tag1, status=r.status,
            self_feedback=r.self_feedback, revoked=r.revoked_block is not None, client=r.client,
            position=(r.block_number, r.log_index),
        )
        for r in rows
    ]  # fmt: skip


def _rows_of(session: Session, did: str) -> tuple[list[tuple[int, str, str]], list[Erc8004FeedbackRow]] | None:
    try:
        normalized = normalize_did(did)
    except MalformedInput:
        return None
    agents = agents_of_service(session, did_normalized=normalized)
    if not agents:
        return None
    return agents, feedback_of_agents(session, agents=agents)


def score_stream(*, engine: Engine, did: str, params: ScoringParams) -> tuple[float, ...]:
    """The service's payment-verified ERC-8004 ratings as units in [0, 1], one per client — or () without reading
    anything while ``params.erc8004_weight`` is 0 (the default: ERC-8004 feedback is not scored)."""
    if params.erc8004_weight <= 0:
        return ()
    with Session(engine) as session:
        found = _rows_of(session, did)
    return () if found is None else score_units(_facts(found[1]))


def service_feedback(*, engine: Engine, did: str, erc8004_weight: float = 0.0) -> dict[str, Any] | None:
    """The ``erc8004`` section for ``did``; None when no indexed agent maps to it (or ``did`` is not a DID).
    ``erc8004_weight`` is the scoring parameter (``ScoringParams.erc8004_weight``): ``inScore`` reports whether it is
    on, ``scored`` how many ratings the score counts (0 while off)."""
    with Session(engine) as session:
        found = _rows_of(session, did)
        if found is None:
            return None
        agents, rows = found
        refs = []
        for chain_id, registry, agent_id in sorted(agents):
            agent = agent_row(session, chain_id=chain_id, registry=registry, agent_id=int(agent_id))
            identity = agent.identity_address if agent is not None else registry
            refs.append({"agentRegistry": f"eip155:{chain_id}:{identity}", "agentId": agent_id})
    facts = _facts(rows)
    return {
        **summarize(facts).to_json(),
        "agents": refs,
        "inScore": erc8004_weight > 0,
        "scored": len(score_units(facts)) if erc8004_weight > 0 else 0,
    }

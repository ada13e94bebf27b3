"""ERC-8004 faces: our reviews as ERC-8004 feedback files, and the schema of the reputation response's ``erc8004``
section (the agents' on-chain feedback: its own evidence stream, never part of the score)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field

from service.api.deps import RuntimeDep
from service.api.problems import problem
from service.api.schemas import CamelModel
from service.workflows.erc8004_offer import AGENT_INVALID, AGENT_UNKNOWN, REVIEW_NOT_FOUND, offered_feedback

router = APIRouter(prefix="/v1", tags=["erc8004"])
HASH_HEADER = "ERC8004-Feedback-Hash"
_REFUSALS = {
    REVIEW_NOT_FOUND: (404, "No such review"),
    AGENT_UNKNOWN: (404, "The review's subject maps to no indexed ERC-8004 agent: name one"),
    AGENT_INVALID: (422, "agentRegistry (eip155:<chain>:0x…) and agentId go together"),
}


class AgentRefOut(CamelModel):
    agent_registry: str
    agent_id: str


class Erc8004Out(CamelModel):
    """On-chain ERC-8004 feedback of the agents that map to this service (``omatrust sync``)."""

    count: Annotated[int, Field(ge=0)] = Field(description="live feedback (not revoked, not self-feedback)")
    rated: Annotated[int, Field(ge=0)] = Field(description="feedback tagged as a rating (starred)")
    normalized_mean: float | None = Field(description="mean of value / 10^valueDecimals over rated feedback")
    payment_verified: Annotated[int, Field(ge=0)]
    payment_verified_share: float | None = Field(description="payment-verified / count")
    self_feedback_excluded: Annotated[int, Field(ge=0)]
    revoked_excluded: Annotated[int, Field(ge=0)]
    agents: list[AgentRefOut]
    in_score: bool = Field(
        description="true only when the scoring parameters give ERC-8004 feedback a weight "
        "(erc8004_weight > 0; default off)"
    )
    scored: Annotated[int, Field(ge=0)] = Field(
        0, description="payment-verified ratings the score counts (one per client; 0 while off)"
    )


@router.get(
    "/reviews/{review_id}/erc8004-feedback.json",
    responses={200: {"description": f"an ERC-8004 feedback file; its keccak256 in the {HASH_HEADER} header"},
               404: {"description": "no such review, or no agent"}, 422: {"description": "bad agent"}},
)  # fmt: skip
def erc8004_feedback(
    request: Request,
    rt: RuntimeDep,
    review_id: Annotated[str, Path(max_length=40)],
    agent_registry: Annotated[str | None, Query(alias="agentRegistry", max_length=80)] = None,
    agent_id: Annotated[int | None, Query(alias="agentId", ge=0)] = None,
) -> Response:
    """The review as an ERC-8004 feedback file (``value`` = rating, ``valueDecimals`` 0, ``tag1`` ``starred``,
    ``proofOfPayment`` from the payment the service verified), for ``giveFeedback(…, feedbackURI, feedbackHash)``."""
    offered = offered_feedback(
        rt=rt, review_id=review_id, base_url=str(request.base_url), agent_registry=agent_registry, agent_id=agent_id
    )
    if isinstance(offered, str):
        status, title = _REFUSALS[offered]
        return problem(status=status, code=offered, title=title)
    return Response(offered.body, media_type="application/json", headers={HASH_HEADER: offered.feedback_hash})

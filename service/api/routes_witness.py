"""``POST /v1/witness``: ask this service to observe a subject's controller now and attest what it saw (a
Controller Witness, docs/authorization.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from service.api.deps import LimiterDep, RuntimeDep
from service.workflows.witness import witness_controller

router = APIRouter()


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class WitnessIn(_Camel):
    subject: str = Field(max_length=256, description="did:web DID of the service")
    controller: str = Field(max_length=512, description="the DID that controls it (did:pkh, did:jwk, did:key, …)")


class WitnessOut(_Camel):
    uid: str
    subject: str
    controller: str
    method: str
    observed_at: int
    attester: str
    created: bool


@router.post(
    "/v1/witness",
    response_model=WitnessOut,
    tags=["witness"],
    responses={
        422: {"description": "invalid subject/controller, or neither DNS nor did.json asserts the controller "
                             "(controller-not-asserted), or this service does not witness (witness-unavailable)"},
        429: {"description": "too many witness requests for this subject"},
        503: {"description": "a DNS or did.json look-up failed and nothing asserted the controller; retry"},
    },
)  # fmt: skip
async def post_witness(body: WitnessIn, rt: RuntimeDep, limiter: LimiterDep) -> dict[str, Any]:
    """Observe the subject's `_controllers` TXT and did.json now; when one asserts `controller`, publish a
    Controller Witness attestation (this service is the attester, `method` = `dns-txt` or `did-json`, `observedAt` =
    now). The same (subject, controller, method) within a day returns the earlier attestation (`created: false`)."""
    wait = limiter.acquire("witness:" + body.subject.lower())
    if wait > 0:
        raise HTTPException(
            429, "Too many witness requests for this subject", headers={"Retry-After": str(int(wait) + 1)}
        )
    found = await run_in_threadpool(witness_controller, rt=rt, subject=body.subject, controller=body.controller)
    return WitnessOut.model_validate(found, from_attributes=True).model_dump(by_alias=True)

"""``GET /v1/attestations/{uid}``: an attestation as the chain has it, with the id of our stored review."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from service.api.deps import RuntimeDep
from service.api.problems import problem
from service.workflows.attestations import attestation_json, read_attestation

router = APIRouter()

UID_PATTERN = r"^0x[0-9a-fA-F]{64}$"


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class OnChainReview(_Camel):
    subject: str
    version: str
    rating_value: int
    review_body: str
    screenshot_urls: list[str]
    proofs: list[Any]


class OnChainAttestation(_Camel):
    uid: str
    chain_id: int
    eas: str
    schema_: str
    attester: str
    recipient: str
    time: int
    expiration_time: int
    revocation_time: int
    revoked: bool
    revocable: bool
    ref_uid: str
    data: str
    review: OnChainReview | None
    review_error: str | None
    review_id: str | None

    model_config = ConfigDict(
        alias_generator=lambda name: "schema" if name == "schema_" else to_camel(name), populate_by_name=True
    )


@router.get(
    "/v1/attestations/{uid}",
    response_model=OnChainAttestation,
    tags=["reviews"],
    responses={404: {"description": "the chain has no attestation with this UID"}},
)
def get_attestation(
    rt: RuntimeDep, uid: Annotated[str, Path(pattern=UID_PATTERN, description="attestation UID, 0x + 64 hex")]
) -> dict[str, Any] | JSONResponse:
    """The attestation read from the chain (schema, attester, recipient, time, revocation, the decoded User Review)
    and `reviewId`, the id of the review this service stores for it (null when none). 404 when the chain has no
    attestation with this UID — even if a stored review names it."""
    view = read_attestation(rt=rt, uid=uid)
    if view is None:
        return problem(status=404, code="not-found", title="No such attestation on this chain", detail=uid.lower())
    return attestation_json(view)

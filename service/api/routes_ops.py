"""Operational endpoints and the stand-alone proof verifier."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import MetricsDep, RuntimeDep
from service.api.problems import problem, public_text
from service.api.schemas import AttestationConfigOut, Health, Readiness, VerifyOut
from service.chain.token import find_token
from service.domain import USER_REVIEW_SCHEMA
from service.errors import ChainUnavailable
from service.workflows.ops import readiness
from service.workflows.outcome_json import outcome_to_json
from service.workflows.verify import verify_artifact

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["ops"])
async def healthz() -> Health:
    """Liveness: the process answers (on the event loop: no worker thread, so busy pools cannot delay it)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, tags=["ops"], responses={503: {"description": "not ready"}})
def readyz(rt: RuntimeDep, metrics: MetricsDep) -> Readiness | JSONResponse:
    """Readiness: the database and the chain answer."""
    state = readiness(rt=rt)
    if state is None:
        return problem(
            status=503, code="not-ready", title="Database or chain unavailable", headers={"Retry-After": "5"}
        )
    metrics.outbox.labels(state="pending").set(state.outbox_pending)
    return Readiness(
        status="ready",
        database=True,
        chain_id=state.chain_id,
        block_number=state.block_number,
        outbox_pending=state.outbox_pending,
    )


@router.get("/metrics", tags=["ops"], response_class=Response)
def metrics_endpoint(metrics: MetricsDep, rt: RuntimeDep) -> Response:
    """Prometheus text exposition."""
    written = rt.submissions.stats()
    for what, value in (("groups", written.groups), ("submissions", written.items), ("largest", written.largest)):
        metrics.submit_groups.labels(what=what).set(value)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/attestation-config", response_model=AttestationConfigOut, tags=["reviews"])
def attestation_config(rt: RuntimeDep) -> dict[str, Any]:
    """Chain, EAS address, User Review schema UID and the EIP-712 domain reviewers sign with."""
    return {
        **rt.eas.attestation_config(),
        "schema": USER_REVIEW_SCHEMA,
        "ephemeral": rt.ephemeral_chain,
        "paymentToken": _payment_token(rt.eas),
    }


def _payment_token(eas: Any) -> dict[str, Any] | None:
    """The test USDC when the service placed it on this chain (embedded, or a bootstrapped dev node), else null."""
    try:
        token = find_token(w3=eas.w3, lock=getattr(eas, "_lock", None))
    except ChainUnavailable:
        return None
    return token.to_json() if token is not None else None


@router.post("/v1/proofs/verify", response_model=VerifyOut, tags=["proofs"])
def verify_proof(
    rt: RuntimeDep,
    artifact: Annotated[dict[str, Any], Body(description="x402 offer/receipt, bare or as an OMATrust proof wrapper")],
    offline: bool = False,
) -> dict[str, Any]:
    """Verify one x402 offer or receipt — the same outcome as `omatrust verify`. Verdicts are 200s, not errors."""
    outcome = verify_artifact(
        data=artifact, resolver=rt.resolver, controllers=rt.controllers, now=int(rt.clock()), offline=offline
    )
    out = outcome_to_json(outcome)
    out["detail"] = public_text(str(out.get("detail", "")))  # a verdict's words reach anonymous clients: no URLs
    return out

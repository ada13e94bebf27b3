"""``POST /v1/chain/rpc``: JSON-RPC to the embedded chain (404 on any other chain), so a local merchant, facilitator
or payer in another process can use the chain ``omatrust serve`` runs in memory or in its chain file."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from service.api.deps import RuntimeDep
from service.api.problems import problem
from service.chain.devrpc import handle, is_embedded

router = APIRouter()


@router.post("/v1/chain/rpc", tags=["ops"], include_in_schema=False)
def chain_rpc(rt: RuntimeDep, body: Annotated[Any, Body()]) -> Any:
    """JSON-RPC (single or batch) for the embedded dev chain: reads, calls, raw transactions, receipts."""
    w3 = rt.eas.w3
    if not is_embedded(w3):
        return problem(status=404, code="not-found", title="No embedded chain: use the chain's own RPC")
    lock = getattr(rt.eas, "_lock", None)
    if isinstance(body, list):
        return JSONResponse([handle(w3=w3, request=item, lock=lock) for item in body[:100]])
    return JSONResponse(handle(w3=w3, request=body, lock=lock))

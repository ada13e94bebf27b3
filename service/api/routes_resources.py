"""The x402 ``reviews`` extension's provider endpoints (the links a merchant's 402 / settlement response carries).

* ``GET /v1/resources/reviews?url=<resourceUrl>`` — the ``read`` link: reviews of the service of that resource
  (``did:web:<host>``), newest first, with how many are verified purchases and how many are payment-backed.
* ``GET /r/{network}/{transaction}`` — the ``write`` link: identifies the payment, shows what the payment network
  says it moved (payer → payTo, amount, asset, how), and gives the reviewer the ``POST /v1/reviews/prepare`` call
  pre-filled (their receipt goes in ``proofs``). HTML for browsers, JSON when the client asks for
  ``application/json``.
"""

from __future__ import annotations

import html
import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import Field

from service.api.deps import RuntimeDep
from service.api.present import review_out
from service.api.problems import problem
from service.api.schemas import CamelModel, ReviewOut
from service.dids import did_web_for_url
from service.domain import PaymentStatus, Reason
from service.errors import CouldNotCheck
from service.verdicts.registry import PAYMENT_BACKED, VERIFIED
from service.workflows.payment_check import PaymentFacts, describe_payment
from service.workflows.queries import live_evidence_counts, service_reviews

router = APIRouter(tags=["x402 reviews provider"])
PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "payment not found, or its network is not configured here"},
    422: {"description": "malformed resource URL or transaction"},
    503: {"description": "the payment network could not be read; retry"},
}


class ResourceCounts(CamelModel):
    live: int
    verified_purchase: int = Field(description="verified purchases, payment-backed included")
    payment_backed: int


class ResourceReviewsOut(CamelModel):
    resource_url: str
    service: str = Field(description="did:web of the resource's host: the reviewed service")
    counts: ResourceCounts
    reviews: list[ReviewOut]
    next_cursor: str | None
    reputation: str = Field(description="link to the service's trust score")


class TransferOut(CamelModel):
    asset: str
    payer: str
    pay_to: str
    amount: str
    method: str = Field(description="eip3009 | permit2 | transfer")


class PrepareCall(CamelModel):
    method: str
    url: str
    body: dict[str, Any]


class PaymentPageOut(CamelModel):
    network: str
    transaction: str
    status: str = Field(description="settled | pending | not-found | reverted, as the payment network says")
    block_number: int | None
    confirmations: int
    transfers: list[TransferOut]
    payer: str | None = Field(description="who paid (the reviewer's wallet: it must sign the review)")
    pay_to: str | None
    amount: str | None
    prepare: PrepareCall | None = Field(description="the call that starts the review, pre-filled")


def _service_link(did: str) -> str:
    return f"/v1/services/{quote(did, safe='')}/reputation"


@router.get("/v1/resources/reviews", response_model=ResourceReviewsOut, responses=PROBLEMS)
def resource_reviews(
    rt: RuntimeDep,
    url: Annotated[str, Query(max_length=2048, description="the paid resource's URL (x402 resource.url)")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ResourceReviewsOut:
    """Reviews of the service behind an x402 resource (the ``read`` link of the ``reviews`` extension)."""
    did = did_web_for_url(url)  # MalformedInput (422) when the URL has no host
    views, next_cursor = service_reviews(rt=rt, did=did, verified=None, cursor=cursor, limit=limit)
    counts = live_evidence_counts(rt=rt, did=did)
    paid = counts.get(PAYMENT_BACKED, 0)
    return ResourceReviewsOut(
        resource_url=url,
        service=did,
        counts=ResourceCounts(
            live=sum(counts.values()), verified_purchase=paid + counts.get(VERIFIED, 0), payment_backed=paid
        ),
        reviews=[review_out(v.review, v.proofs, v.outbox) for v in views],
        next_cursor=next_cursor,
        reputation=_service_link(did),
    )


def _page_out(facts: PaymentFacts) -> PaymentPageOut:
    moved = [TransferOut(asset=t.asset, payer=t.payer, pay_to=t.pay_to, amount=t.amount, method=t.method)
             for t in facts.transfers]  # fmt: skip
    # The payment: the one transfer made by an x402 scheme, else the only transfer (a plain token transfer).
    main = next((t for t in moved if t.method != "transfer"), moved[0] if len(moved) == 1 else None)
    prepare = None
    if main is not None and facts.status in (PaymentStatus.SETTLED, PaymentStatus.PENDING):
        prepare = PrepareCall(method="POST", url="/v1/reviews/prepare", body={
            "attester": main.payer,
            "review": {"subject": "did:web:<host of the paid resource>", "version": "", "ratingValue": 5,
                       "reviewBody": "", "screenshotUrls": [],
                       "proofs": ["<your x402-receipt proof: its transaction is " + facts.transaction + ">"]},
        })  # fmt: skip
    return PaymentPageOut(
        network=facts.network, transaction=facts.transaction, status=facts.status.value,
        block_number=facts.block_number, confirmations=facts.confirmations, transfers=moved,
        payer=main.payer if main else None, pay_to=main.pay_to if main else None,
        amount=main.amount if main else None, prepare=prepare,
    )  # fmt: skip


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept.split("application/json")[0]


def _html(page: PaymentPageOut) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(t.payer)}</td><td>{e(t.pay_to)}</td><td>{e(t.amount)}</td><td>{e(t.asset)}</td>"
        f"<td>{e(t.method)}</td></tr>"
        for t in page.transfers
    )
    prepare = (
        f"<h2>Review this purchase</h2><p>Sign the review with the paying wallet ({e(page.payer or '')}). "
        f"Start with:</p><pre id=\"prepare\">{e(json.dumps(page.prepare.model_dump(by_alias=True), indent=2))}</pre>"
        if page.prepare else "<p>No payment to review in this transaction.</p>"
    )  # fmt: skip
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Review a payment</title></head><body>"
        f"<h1>Payment {e(page.transaction)}</h1>"
        f"<dl><dt>Network</dt><dd>{e(page.network)}</dd><dt>Status</dt><dd id=\"status\">{e(page.status)}</dd>"
        f"<dt>Block</dt><dd>{e(str(page.block_number))}</dd><dt>Confirmations</dt><dd>{page.confirmations}</dd>"
        f"<dt>Payer</dt><dd id=\"payer\">{e(page.payer or '-')}</dd><dt>Paid to</dt><dd id=\"payto\">"
        f"{e(page.pay_to or '-')}</dd><dt>Amount (atomic units)</dt><dd id=\"amount\">{e(page.amount or '-')}</dd></dl>"
        "<table><thead><tr><th>payer</th><th>payTo</th><th>amount</th><th>asset</th><th>how</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{prepare}</body></html>"
    )


PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PROBLEMS,
    200: {"content": {"text/html": {}}, "description": "the payment (HTML, or JSON by Accept)"},
}


@router.get("/r/{network}/{transaction}", response_model=PaymentPageOut, responses=PAGE_RESPONSES)
def review_payment(
    request: Request,
    rt: RuntimeDep,
    network: Annotated[str, Path(max_length=64, description="CAIP-2 network, e.g. eip155:8453")],
    transaction: Annotated[str, Path(max_length=66, description="0x transaction hash")],
) -> Response:
    """The ``write`` link of the ``reviews`` extension: the payment as the payment network shows it, and how to
    review it."""
    try:
        facts = describe_payment(payments=rt.payments, network=network, transaction=transaction)
    except CouldNotCheck as exc:
        if exc.reason is Reason.NETWORK_NOT_CONFIGURED:
            return problem(status=404, code=exc.reason.value, title="This payment network is not configured here",
                           detail=exc.detail)  # fmt: skip
        raise
    if facts.status is PaymentStatus.NOT_FOUND:
        return problem(status=404, code=Reason.PAYMENT_NOT_FOUND.value, title="No such transaction on this network",
                       detail=f"{transaction} on {network}")  # fmt: skip
    page = _page_out(facts)
    if _wants_json(request):
        return JSONResponse(page.model_dump(mode="json", by_alias=True))
    return HTMLResponse(_html(page))

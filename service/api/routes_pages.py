"""The human pages: landing (``/``), search, services index, a service's page, a review's page.

Server-rendered HTML (see ``pages``), no script, no external asset; every response carries a CSP that allows only
inline styles, images from this origin or ``data:`` (badges, an inline logo) and GET forms to this origin. Page and
badge responses carry an ETag and a short ``Cache-Control`` so a CDN can serve them.
"""

from __future__ import annotations

import re
import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.api import pages
from service.api.caching import cached
from service.api.deps import RuntimeDep
from service.api.did_path import did_from_path
from service.dids import did_web_for_url, normalize_did, parse_subject
from service.errors import MalformedInput
from service.identity.cache import TtlCache
from service.identity.profile import ServiceProfile
from service.scoring import TrustScore
from service.workflows.erc8004_reputation import service_feedback
from service.workflows.history import ScorePoint, score_history
from service.workflows.queries import ReviewView, live_evidence_counts, review_view, service_reviews
from service.workflows.ranking import RankingCache, ranking
from service.workflows.reputation import reputation
from service.workflows.runtime import Runtime
from service.workflows.service_info import payment_transactions, service_profile

router = APIRouter(include_in_schema=False)
REVIEWS_PER_PAGE = 20
SERVICES_PER_PAGE = 20
TOP_ON_LANDING = 5
# Services scanned for a search (the ranking snapshot is in memory; this bounds the work of one request).
SEARCH_SCAN = 5000
HISTORY_SECONDS = 60.0
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_EVIDENCE_KEY = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def profiles(request: Request) -> TtlCache[str, ServiceProfile]:
    cache: TtlCache[str, ServiceProfile] = request.app.state.service_profiles
    return cache


def _ranking_cache(request: Request) -> RankingCache:
    cache: RankingCache | None = getattr(request.app.state, "ranking_cache", None)
    if cache is None:
        cache = request.app.state.ranking_cache = RankingCache()
    return cache


def _history(request: Request, rt: Runtime, subject: str, prior_mean: float) -> tuple[ScorePoint, ...]:
    # O(reviews of the subject): computed at most once a minute per subject per process (a CDN absorbs the rest).
    cache: TtlCache[str, tuple[ScorePoint, ...]] | None = getattr(request.app.state, "history_cache", None)
    if cache is None:
        cache = request.app.state.history_cache = TtlCache(ttl=HISTORY_SECONDS, clock=time.monotonic)
    return cache.get_or_load(subject, lambda: score_history(rt=rt, did=subject, prior_mean=prior_mean))


def links_for(request: Request) -> pages.Links:
    settings = request.app.state.settings
    return pages.Links(explorer_url=settings.explorer_url, attestation_explorer_url=settings.attestation_explorer_url)


def _html(request: Request, body: str) -> Response:
    return cached(request, body.encode("utf-8"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


def error_page(status: int, message: str) -> HTMLResponse:
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return HTMLResponse(pages.error_page(status=status, message=message), status_code=status, headers=headers)


def _item(rt: Runtime, view: ReviewView) -> pages.ReviewItem:
    txs = payment_transactions(proofs=list(view.review.proofs_json or []))
    replies = [pages.MerchantReply(body=str(r.fields.get("response_body", "")), time=r.attestation_time)
               for r in view.responses]  # fmt: skip
    return pages.ReviewItem(review=view.review, proofs=view.proofs, outbox=view.outbox, payment_txs=txs,
                            replies=replies)  # fmt: skip


def _listed(request: Request, rt: Runtime, items: list[tuple[str, TrustScore]]) -> list[pages.ListedService]:
    out = []
    for did, score in items:
        profile = service_profile(rt=rt, did=did, cache=profiles(request), fetch=False)
        out.append(pages.ListedService(did=did, profile=profile, score=score))
    return out


@router.get("/", response_class=HTMLResponse)
def landing(request: Request, rt: RuntimeDep) -> Response:
    """What this is, a search box, the top services by lower90."""
    page = ranking(rt=rt, sort="lower90", limit=TOP_ON_LANDING, cache=_ranking_cache(request))
    top = _listed(request, rt, [(i.did, i.score) for i in page.items])
    return _html(request, pages.landing_page(top=top, total=page.total))


@router.get("/search")
def search(q: Annotated[str, Query(max_length=300)] = "") -> Response:
    """A DID or a URL goes to that service's page; anything else searches the index."""
    text = q.strip()
    target = "/services"
    if text.startswith("did:"):
        try:
            target = pages.service_path(normalize_did(parse_subject(text)))
        except MalformedInput:
            target = "/services?" + _qs(text)
    elif re.match(r"^https?://", text, flags=re.I):
        try:
            target = pages.service_path(did_web_for_url(text))
        except MalformedInput:
            target = "/services?" + _qs(text)
    elif text:
        target = "/services?" + _qs(text)
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-cache"})


def _qs(text: str) -> str:
    return urlencode({"q": text})


def _matches(did: str, needle: str) -> bool:
    return needle in did.lower() or needle.replace(":", "%3a") in did.lower()


@router.get("/services", response_class=HTMLResponse)
def services_index(
    request: Request,
    rt: RuntimeDep,
    q: Annotated[str, Query(max_length=300)] = "",
    offset: Annotated[int, Query(ge=0, le=SEARCH_SCAN)] = 0,
) -> Response:
    """Reviewed services ranked by lower90, optionally filtered by a DID/host substring."""
    needle = q.strip().lower()
    if needle:
        every = ranking(rt=rt, sort="lower90", limit=SEARCH_SCAN, cache=_ranking_cache(request))
        hits = [i for i in every.items if _matches(i.did, needle)]
        total = len(hits)
        chosen = hits[offset : offset + SERVICES_PER_PAGE]
    else:
        every = ranking(rt=rt, sort="lower90", limit=offset + SERVICES_PER_PAGE, cache=_ranking_cache(request))
        total = every.total
        chosen = list(every.items[offset:])
    more = offset + SERVICES_PER_PAGE < total
    items = _listed(request, rt, [(i.did, i.score) for i in chosen])
    next_offset = offset + SERVICES_PER_PAGE if more else None
    body = pages.services_page(items=items, query=q.strip(), total=total, offset=offset, next_offset=next_offset)
    return _html(request, body)


@router.get("/services/{did}", response_class=HTMLResponse)
def service_page(
    did: Annotated[str, Path(max_length=256)],
    request: Request,
    rt: RuntimeDep,
    evidence: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """A service: name, average stars and trust score explained, histogram, score over time, reviews (filtered by
    evidence class, paginated) with their evidence."""
    try:
        subject = normalize_did(did_from_path(request))
    except MalformedInput as exc:
        return error_page(422, f"Not a service DID: {exc.detail}")
    if evidence is not None and not _EVIDENCE_KEY.match(evidence):
        return error_page(422, "Unknown evidence filter")
    rep = reputation(rt=rt, did=subject)
    try:
        views, next_cursor = service_reviews(
            rt=rt, did=subject, verified=None, cursor=cursor, limit=REVIEWS_PER_PAGE, evidence=evidence
        )
    except ValueError:
        return error_page(422, "That page link is not valid any more")
    body = pages.service_page(
        did=subject,
        profile=service_profile(rt=rt, did=subject, cache=profiles(request)),
        score=rep.score,
        history=_history(request, rt, subject, rep.score.prior_mean),
        items=[_item(rt, v) for v in views],
        evidence_counts=live_evidence_counts(rt=rt, did=subject),
        evidence=evidence,
        cursor=cursor,
        next_cursor=next_cursor,
        links=links_for(request),
        erc8004=service_feedback(engine=rt.engine, did=subject, erc8004_weight=rt.params.erc8004_weight),
    )
    return _html(request, body)


@router.get("/reviews/{review_id}", response_class=HTMLResponse)
def review_detail(review_id: Annotated[str, Path(max_length=64)], request: Request, rt: RuntimeDep) -> Response:
    """One review with its evidence in full and its attestation."""
    view = review_view(rt=rt, review_id=review_id)
    if view is None:
        return error_page(404, "No such review")
    profile = service_profile(rt=rt, did=view.review.subject_normalized, cache=profiles(request), fetch=False)
    return _html(request, pages.review_page(item=_item(rt, view), profile=profile, links=links_for(request)))

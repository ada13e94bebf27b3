"""The human-readable reputation page of a service DID: server-rendered HTML, no script, no external assets.

Review text is attacker-controlled: every value is HTML-escaped where it is inserted, and the page is served with a
CSP that allows nothing but inline styles, so even a missed escape could not load or run anything.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from importlib.resources import files
from string import Template
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from service.api.deps import RuntimeDep
from service.api.did_path import did_from_path
from service.api.present import attestation_of
from service.errors import MalformedInput
from service.scoring import Contribution, TrustScore
from service.workflows.queries import ReviewView, service_reviews
from service.workflows.reputation import Reputation, reputation

router = APIRouter(include_in_schema=False)
RECENT_REVIEWS = 20
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
_EVIDENCE_LABEL = {
    "verified": "Verified purchase",
    "unauthorized": "Unverified · receipt signer not authorized",
    "offer-only": "Unverified · offer only, no receipt",
    "none": "Unverified · no proof of purchase",
}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


@lru_cache(maxsize=1)
def _page_template() -> Template:
    return Template(files("service.api").joinpath("templates/reputation.html").read_text(encoding="utf-8"))


def _when(ts: int | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _stars(rating: int) -> str:
    return f'<span class="stars" aria-label="{rating} of 5 stars">{"★" * rating}{"☆" * (5 - rating)}</span>'


def _badge(evidence: str) -> str:
    kind = "verified" if evidence == "verified" else "unverified"
    label = _EVIDENCE_LABEL.get(evidence, f"Unverified · {evidence}")
    mark = "✓ " if kind == "verified" else ""
    return f'<span class="badge {kind}" data-evidence="{esc(evidence)}">{mark}{esc(label)}</span>'


def _notices(score: TrustScore) -> str:
    out = []
    if score.counts.total == 0:
        out.append(
            '<div class="notice empty" id="empty-state"><b>No reviews yet — score shown is the prior.</b> '
            f"It is the mean rating of verified purchases across all services ({100 * score.prior_mean:.1f}/100) "
            "with no evidence of its own; confidence is 0%.</div>"
        )
    elif score.counts.live > 0 and score.counts.verified == 0:
        out.append(
            '<div class="notice warn" id="no-verified">No verified purchase backs any review of this service: '
            "unverified reviews only move the score a little, and the score stays close to the prior.</div>"
        )
    if score.reviewer_dominates and score.top_reviewer_share is not None:
        out.append(
            '<div class="notice warn" id="dominance">One reviewer holds '
            f"{_pct(score.top_reviewer_share)} of the evidence behind this score.</div>"
        )
    return "\n".join(out)


def _histogram(score: TrustScore) -> str:
    peak = max([*score.histogram_verified, *score.histogram_unverified, 1])
    rows = []
    for rating in range(5, 0, -1):
        v, u = score.histogram_verified[rating - 1], score.histogram_unverified[rating - 1]
        bars = "".join(
            f'<div class="bar {cls}{" zero" if n == 0 else ""}" style="width:{100 * n / peak:.1f}%" '
            f'title="{n} {what}"></div>'
            for cls, n, what in (("v", v, "verified"), ("u", u, "unverified"))
        )
        rows.append(
            f'<tr data-rating="{rating}"><th scope="row" class="r">{rating}★</th><td>{bars}</td>'
            f'<td class="n"><span class="hv">{v}</span> · <span class="hu">{u}</span></td></tr>'
        )
    head = '<thead><tr><th class="r"></th><th></th><th class="n">verified · unverified</th></tr></thead>'
    return head + "<tbody>" + "".join(rows) + "</tbody>"


def _short(address: str) -> str:
    return address if len(address) <= 14 else f"{address[:6]}…{address[-4:]}"


def _movers(movers: Sequence[Contribution]) -> str:
    if not movers:
        return ""
    items = "".join(
        f'<li><span class="delta {"up" if m.contribution >= 0 else "down"}">{m.contribution:+.1f}</span>'
        f"{_stars(m.rating)} {_badge(m.evidence.value)}"
        f'<span class="who mono" title="{esc(m.reviewer)}">{esc(_short(m.reviewer))}</span>'
        f'<span class="when">{esc(_when(m.time))}</span></li>'
        for m in movers
    )
    return (
        '<section class="card" aria-label="top movers"><h2>What moved the score most</h2>'
        f'<ul class="movers">{items}</ul>'
        '<div class="legend">points each review adds to or takes from the prior, after decay and caps</div></section>'
    )


def _attestation(view: ReviewView) -> str:
    att = attestation_of(view.review, view.outbox)
    if att.state == "confirmed" and att.uid:
        return f'<div class="att">EAS attestation <span class="mono uid">{esc(att.uid)}</span></div>'
    label = {"pending": "attestation pending", "submitted": "attestation submitted, awaiting confirmation"}.get(
        att.state, "attestation failed"
    )
    return f'<div class="att"><span class="badge state" data-state="{esc(att.state)}">{esc(label)}</span></div>'


def _reviews(views: Sequence[ReviewView]) -> str:
    if not views:
        return '<p class="who">No reviews yet.</p>'
    items = []
    for view in views:
        r = view.review
        body = f'<p class="body">{esc(r.review_body)}</p>' if r.review_body else ""
        shots = len(r.screenshot_urls or [])
        extra = f' · {shots} screenshot{"s" if shots != 1 else ""}' if shots else ""
        items.append(
            f'<li class="review" data-review-id="{esc(r.id)}"><div class="head">{_stars(r.rating_value)}'
            f"{_badge(r.evidence)}</div>"
            f'<div class="who">by <span class="mono">{esc(r.attester)}</span> · {esc(_when(r.review_time))}'
            f"{esc(extra)}</div>{body}{_attestation(view)}</li>"
        )
    return f'<ul class="reviews">{"".join(items)}</ul>'


def render_page(*, rep: Reputation, reviews: Sequence[ReviewView]) -> str:
    """The whole page. Every dynamic value passes through :func:`esc` (or is a number formatted here)."""
    s = rep.score
    c = s.counts
    cap = f", unverified capped to {100 * s.unverified_cap_scale:.0f}%" if s.unverified_cap_scale < 1.0 else ""
    evidence = (
        f"{s.effective_evidence:.2f} effective reviews (verified {s.verified_weight:.2f}, "
        f"unverified {s.unverified_weight:.2f}{cap})"
    )
    counts = (
        f"{c.live} live — {c.verified} verified, {c.unverified} unverified"
        + (f" · {c.superseded} superseded" if c.superseded else "")
    )
    return _page_template().substitute(
        title=esc(f"Reputation · {rep.did}"),
        did=esc(rep.did),
        notices=_notices(s),
        score=f"{s.score:.1f}",
        score_exact=esc(repr(s.score)),
        lower90=f"{s.lower90:.1f}",
        lower90_exact=esc(repr(s.lower90)),
        confidence_pct=f"{100 * s.confidence:.0f}",
        evidence=esc(evidence),
        counts=esc(counts),
        verified_share=_pct(s.verified_share),
        last_review=esc(_when(s.last_review_at)),
        histogram=_histogram(s),
        movers=_movers(s.top_movers),
        reviews=_reviews(reviews),
        params_version=esc(s.params_version),
        as_of=esc(_when(s.as_of)),
        prior=f"{100 * s.prior_mean:.1f}",
        api_path=esc(f"/v1/services/{quote(rep.did, safe='')}/reputation"),
    )


def _error_page(status: int, message: str) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">'
        f"<title>{status}</title></head><body><p>{esc(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


@router.get("/services/{did}", response_class=HTMLResponse)
def reputation_page(
    did: Annotated[str, Path(max_length=256)], request: Request, rt: RuntimeDep
) -> HTMLResponse:
    """Score, confidence, rating histogram (verified vs unverified) and the latest live reviews of a service."""
    try:
        subject = did_from_path(request)
    except MalformedInput as exc:
        return _error_page(422, f"Not a service DID: {exc.detail}")
    rep = reputation(rt=rt, did=subject)
    views, _ = service_reviews(rt=rt, did=subject, verified=None, cursor=None, limit=RECENT_REVIEWS)
    return HTMLResponse(render_page(rep=rep, reviews=views), headers=SECURITY_HEADERS)

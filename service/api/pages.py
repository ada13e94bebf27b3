"""HTML of the human pages (landing, services index, service page, review detail): pure functions of their data.

Review text, names and URLs are attacker-controlled: every value passes through :func:`esc` where it is inserted
(numbers are formatted here), and the pages are served with a CSP that loads nothing from anywhere and runs no
script, so even a missed escape could not load or run anything. Forms are plain GET forms (``form-action 'self'``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib.resources import files
from string import Template
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from service.api.evidence_display import EVIDENCE_CLASSES, evidence_class
from service.dids import did_web_host
from service.identity.profile import ServiceProfile
from service.scoring import TrustScore
from service.store.tables import OutboxRow, ProofRow, ReviewRow
from service.workflows.history import ScorePoint

# Below this much effective evidence (one fresh verified purchase = 1) the page says "not enough reviews"
# instead of showing the number as if it were earned: the score is then mostly the prior.
MIN_EVIDENCE = 1.0
_TX = re.compile(r"^0x[0-9a-fA-F]{64}$")
_TIER_WORDS = {
    "did-document": "listed as a key in the service's did.json",
    "dns-txt": "named as a controller in the service's DNS record (_controllers TXT)",
    "offer-payto": "the payTo address of an offer the service signed",
    "key-binding": "bound to the service's key",
}
_STATUS_WORDS = {
    "verified": "signature valid, signer authorized",
    "unauthorized": "signature valid, but the signer is not a key of this service",
    "invalid": "rejected",
    "indeterminate": "could not be checked yet",
    "unsupported": "not a proof type this service checks",
}


@dataclass(frozen=True, slots=True)
class Links:
    """Where transactions and attestation UIDs link to (empty: no link)."""

    explorer_url: str = ""
    attestation_explorer_url: str = ""

    def tx(self, tx_hash: str) -> str | None:
        if self.explorer_url and _TX.match(tx_hash):
            return f"{self.explorer_url.rstrip('/')}/tx/{tx_hash}"
        return None

    def attestation(self, uid: str) -> str | None:
        if self.attestation_explorer_url and _TX.match(uid):
            return f"{self.attestation_explorer_url.rstrip('/')}/attestation/view/{uid}"
        return None


@dataclass(frozen=True, slots=True)
class MerchantReply:
    """A service's public answer to a review (shown under it; filled in once merchant replies are stored)."""

    body: str
    time: int


@dataclass(frozen=True, slots=True)
class ReviewItem:
    review: ReviewRow
    proofs: Sequence[ProofRow]
    outbox: OutboxRow | None
    payment_txs: Sequence[str] = ()
    replies: Sequence[MerchantReply] = ()


@dataclass(frozen=True, slots=True)
class ListedService:
    did: str
    profile: ServiceProfile
    score: TrustScore


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


@lru_cache(maxsize=1)
def _layout() -> Template:
    return Template(files("service.api").joinpath("templates/layout.html").read_text(encoding="utf-8"))


def layout(*, title: str, main: str, description: str, footer: str = "", nav: str = "", index: bool = True) -> str:
    return _layout().substitute(
        title=esc(title),
        description=esc(description),
        main=main,
        footer=footer or _default_footer(),
        nav_services=' aria-current="page"' if nav == "services" else "",
        robots="index, follow" if index else "noindex, nofollow",
    )


def _default_footer() -> str:
    return (
        "OMATrust Reviews — reviews of paid APIs backed by x402 payment receipts, published as EAS attestations. "
        '<a href="/docs">API</a> · <a href="/redoc">reference</a>'
    )


# -- small parts ------------------------------------------------------------------------------------------------


def when(ts: int | None) -> str:
    return "—" if ts is None else datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def day(ts: int | None) -> str:
    return "—" if ts is None else datetime.fromtimestamp(ts, tz=UTC).strftime("%b %-d, %Y")


def service_path(did: str) -> str:
    return f"/services/{quote(did, safe='')}"


def short(address: str) -> str:
    return address if len(address) <= 16 else f"{address[:8]}…{address[-6:]}"


_STAR = '<svg viewBox="0 0 24 24" aria-hidden="true"><path fill="{}" d="m12 2.5 2.9 6.1 6.6.8-4.9 4.6 1.3 6.6L12 17.3 6.1 20.6l1.3-6.6-4.9-4.6 6.6-.8z"/></svg>'  # noqa: E501


def stars(value: float, *, large: bool = False) -> str:
    """Five stars, ``value`` (0–5, halves rounded) filled, with a text alternative."""
    filled = round(value * 2) / 2
    parts = []
    for i in range(1, 6):
        if filled >= i:
            parts.append(_STAR.format("var(--star)"))
        elif filled >= i - 0.5:
            parts.append(_half_star())
        else:
            parts.append(_STAR.format("var(--star-off)"))
    label = f"{value:.1f} out of 5 stars" if value != int(value) else f"{int(value)} out of 5 stars"
    return f'<span class="stars{" lg" if large else ""}" role="img" aria-label="{label}">{"".join(parts)}</span>'


def _half_star() -> str:
    path = "m12 2.5 2.9 6.1 6.6.8-4.9 4.6 1.3 6.6L12 17.3 6.1 20.6l1.3-6.6-4.9-4.6 6.6-.8z"
    return (
        f'<svg viewBox="0 0 24 24" aria-hidden="true"><path fill="var(--star-off)" d="{path}"/>'
        f'<path fill="var(--star)" d="{path}" style="clip-path:inset(0 50% 0 0)"/></svg>'
    )


def average_rating(score: TrustScore) -> float | None:
    counts = [v + u for v, u in zip(score.histogram_verified, score.histogram_unverified, strict=True)]
    n = sum(counts)
    return None if n == 0 else sum((i + 1) * c for i, c in enumerate(counts)) / n


def verified_purchases(score: TrustScore) -> int:
    return score.counts.verified


def enough_evidence(score: TrustScore) -> bool:
    return score.counts.live > 0 and score.effective_evidence >= MIN_EVIDENCE


def display_name(did: str, profile: ServiceProfile) -> str:
    if profile.name:
        return profile.name
    if did.startswith("did:web:"):
        return did_web_host(did)
    return short(did)


def logo(did: str, profile: ServiceProfile) -> str:
    if profile.logo:
        return f'<img class="logo" src="{esc(profile.logo)}" alt="">'
    letter = (display_name(did, profile)[:1] or "?").upper()
    return f'<span class="logo" aria-hidden="true">{esc(letter)}</span>'


def pill(evidence: str) -> str:
    c = evidence_class(evidence)
    mark = "✓ " if c.backs_purchase else ""
    return f'<span class="pill {c.strength}" data-evidence="{esc(c.key)}">{mark}{esc(c.label)}</span>'


def _link(href: str | None, text: str, *, mono: bool = True) -> str:
    cls = ' class="mono"' if mono else ""
    if href:
        return f'<a{cls} href="{esc(href)}" rel="noopener noreferrer">{esc(text)}</a>'
    return f"<span{cls}>{esc(text)}</span>"


def search_form(*, value: str = "", label: str = "Find a service by DID or URL", field_id: str = "q") -> str:
    return (
        f'<form class="search" action="/search" method="get" role="search">'
        f'<label for="{field_id}">{esc(label)}</label>'
        f'<input id="{field_id}" name="q" type="search" value="{esc(value)}" maxlength="300" '
        f'placeholder="did:web:api.example.com or https://api.example.com/weather" autocomplete="off">'
        f'<button class="btn" type="submit">Search</button></form>'
    )


# -- score explanation ------------------------------------------------------------------------------------------


def explanation(score: TrustScore, evidence_counts: dict[str, int] | None = None) -> str:
    """The score in plain words (the numbers are computed here, the sentences never claim more than they show)."""
    c = score.counts
    paid = verified_purchases(score)
    settled = (evidence_counts or {}).get("payment-backed", 0)
    if c.live == 0:
        return (
            "Nobody has reviewed this service yet, so there is no score to show. Once reviews arrive, the ones "
            "backed by the service's own payment receipt count the most."
        )
    reviews = f"{c.live} review{'s' if c.live != 1 else ''}"
    backed = (
        f"{paid} of them verified purchase{'s' if paid != 1 else ''}" if paid else "none of them verified purchases"
    )
    if settled:
        backed += f" ({settled} with the payment seen on chain)"
    if not enough_evidence(score):
        return (
            f"Not enough reviews yet: {reviews}, {backed}. Until there is more evidence the trust score stays close "
            f"to the average of all services ({100 * score.prior_mean:.0f}), so we do not show it as this service's "
            "own."
        )
    text = (
        f"Based on {reviews}, {backed}. Verified purchases count fully, reviews without proof count for little, "
        f"and recent reviews count more than old ones. We are 90% sure the score is at least {score.lower90:.0f}."
    )
    if score.reviewer_dominates and score.top_reviewer_share is not None:
        text += f" One reviewer holds {100 * score.top_reviewer_share:.0f}% of the evidence behind it."
    return text


def headline(score: TrustScore, evidence_counts: dict[str, int] | None = None) -> str:
    avg = average_rating(score)
    c = score.counts
    if avg is None:
        rating = '<div class="big na" id="rating">No ratings yet</div>'
    else:
        rating = (
            f'<div class="big" id="rating" data-rating="{avg!r}">{avg:.1f}<small> / 5</small></div>'
            f'<div>{stars(avg, large=True)} <span class="muted">{c.live} review{"s" if c.live != 1 else ""}</span>'
            "</div>"
        )
    if enough_evidence(score):
        trust = (
            f'<div class="big" id="score" data-score="{score.score!r}">{score.score:.0f}<small> / 100</small></div>'
            f'<div class="muted small">at least <span id="lower90" data-lower90="{score.lower90!r}">'
            f"{score.lower90:.0f}</span> with 90% confidence</div>"
        )
    else:
        # No number for a service without reviews; with a few, a small "provisional" figure, never the headline.
        note = (
            "appears with the first reviews"
            if c.live == 0
            else f'provisional <span id="provisional">{score.score:.0f}</span>, mostly the average of all services'
        )
        trust = (
            f'<div class="big na" id="score" data-score="{score.score!r}" data-lower90="{score.lower90!r}" '
            f'data-enough="false">{"No reviews yet" if c.live == 0 else "Not enough reviews"}</div>'
            f'<div class="muted small">{note}</div>'
        )
    return (
        '<section class="card" aria-labelledby="h-score" style="padding:0">'
        '<h2 id="h-score" class="sr-only">Reputation</h2>'
        '<div class="headline">'
        f'<div><div class="kicker">Average rating</div>{rating}</div>'
        f'<div><div class="kicker">Trust score</div>{trust}</div>'
        f'</div><p class="explain" id="explain">{esc(explanation(score, evidence_counts))}</p></section>'
    )


def histogram(score: TrustScore) -> str:
    peak = max([v + u for v, u in zip(score.histogram_verified, score.histogram_unverified, strict=True)] + [1])
    rows = []
    for rating in range(5, 0, -1):
        v, u = score.histogram_verified[rating - 1], score.histogram_unverified[rating - 1]
        rows.append(
            f'<tr data-rating="{rating}"><th scope="row">{rating} ★</th>'
            f'<td><div class="track" role="img" aria-label="{v} verified purchases, {u} other reviews">'
            f'<span class="v" style="width:{100 * v / peak:.1f}%"></span>'
            f'<span class="u" style="width:{100 * u / peak:.1f}%"></span></div></td>'
            f'<td class="n"><span class="hv">{v}</span> + <span class="hu">{u}</span></td></tr>'
        )
    return (
        '<section class="card" aria-labelledby="h-hist"><h2 id="h-hist">Ratings</h2>'
        f'<table class="hist"><caption class="muted small" style="text-align:left;caption-side:bottom;'
        f'padding-top:8px">live reviews per star rating: verified purchases + other</caption><tbody>{"".join(rows)}'
        '</tbody></table><div class="legend" aria-hidden="true"><span><i class="v"></i>verified purchase</span>'
        '<span><i class="u"></i>other</span></div></section>'
    )


def sparkline(points: Sequence[ScorePoint]) -> str:
    """Score over time as an inline SVG (no script). Fewer than two points: a sentence instead."""
    body: str
    if len(points) < 2:
        body = '<p class="muted">The history starts with the first review.</p>'
    else:
        w, h, pad = 600.0, 120.0, 8.0
        lo = min(min(p.lower90 for p in points), min(p.score for p in points))
        hi = max(p.score for p in points)
        lo, hi = max(0.0, lo - 5), min(100.0, hi + 5)
        span = max(hi - lo, 1.0)
        t0, t1 = points[0].at, points[-1].at

        def xy(t: int, v: float) -> str:
            x = pad + (w - 2 * pad) * ((t - t0) / max(t1 - t0, 1))
            y = pad + (h - 2 * pad) * (1 - (v - lo) / span)
            return f"{x:.1f},{y:.1f}"

        line = " ".join(xy(p.at, p.score) for p in points)
        low = " ".join(xy(p.at, p.lower90) for p in points)
        band = " ".join([*(xy(p.at, p.score) for p in points), *(xy(p.at, p.lower90) for p in reversed(points))])
        first, last = points[0], points[-1]
        label = (
            f"Trust score from {first.score:.0f} on {day(first.at)} to {last.score:.0f} on {day(last.at)}; "
            f"lowest {min(p.score for p in points):.0f}, highest {max(p.score for p in points):.0f}"
        )
        end = xy(last.at, last.score).split(",")
        body = (
            f'<svg class="spark" id="sparkline" viewBox="0 0 {w:.0f} {h:.0f}" role="img" aria-label="{esc(label)}" '
            f'preserveAspectRatio="none"><title>{esc(label)}</title>'
            f'<polygon points="{band}" fill="#2446c7" fill-opacity=".10"/>'
            f'<polyline points="{low}" fill="none" stroke="#2446c7" stroke-opacity=".35" stroke-width="1.5" '
            f'stroke-dasharray="4 4" vector-effect="non-scaling-stroke"/>'
            f'<polyline points="{line}" fill="none" stroke="#2446c7" stroke-width="2.5" stroke-linejoin="round" '
            f'vector-effect="non-scaling-stroke"/><circle cx="{end[0]}" cy="{end[1]}" r="4" fill="#2446c7"/></svg>'
            f'<div class="legend"><span>{esc(day(first.at))}</span><span style="margin-left:auto">'
            f"{esc(day(last.at))}</span></div>"
        )
    return (
        '<section class="card" aria-labelledby="h-hist-time"><h2 id="h-hist-time">Trust score over time</h2>'
        f'{body}<p class="muted small" style="margin:6px 0 0">Solid: score · dashed: 90% lower bound. Rebuilt '
        "from the stored reviews.</p></section>"
    )


# -- reviews ----------------------------------------------------------------------------------------------------


def _attestation(item: ReviewItem, links: Links) -> tuple[str, str]:
    """(attestation line for the list, state key)."""
    r, ob = item.review, item.outbox
    uid = r.attestation_uid or (ob.uid if ob else None)
    state = "confirmed" if r.attestation_uid else (ob.state if ob else "pending")
    if state == "confirmed" and uid:
        tx = ob.tx_hash if ob else None
        parts = f"On chain: EAS attestation {_link(links.attestation(uid), uid)}"
        if tx:
            parts += f" · tx {_link(links.tx(tx), short(tx))}"
        return f'<div class="small muted att">{parts}</div>', state
    words = {"pending": "attestation pending", "submitted": "attestation submitted, awaiting confirmation"}
    label = words.get(state, "attestation failed")
    return f'<div class="small att"><span class="pill state" data-state="{esc(state)}">{esc(label)}</span></div>', state


def evidence_details(item: ReviewItem, links: Links, *, open_: bool = False) -> str:
    c = evidence_class(item.review.evidence)
    rows = [f"<dt>Evidence</dt><dd>{esc(c.plain)}</dd>"]
    for p in item.proofs:
        status = _STATUS_WORDS.get(p.status, p.status)
        if p.reason:
            status += f" ({p.reason})"
        rows.append(f"<dt>Proof {p.position + 1}</dt><dd>{esc(p.proof_type)} — {esc(status)}</dd>")
        if p.signer:
            rows.append(f'<dt>Signed by</dt><dd class="mono">{esc(p.signer)}</dd>')
        if p.tier:
            rows.append(f"<dt>Why trusted</dt><dd>{esc(_TIER_WORDS.get(p.tier, p.tier))}</dd>")
        if p.issued_at:
            rows.append(f"<dt>Issued</dt><dd>{esc(when(p.issued_at))}</dd>")
    for tx in item.payment_txs:
        rows.append(f"<dt>Payment tx</dt><dd>{_link(links.tx(tx), tx)}</dd>")
    if not item.proofs:
        rows.append("<dt>Proofs</dt><dd>none attached</dd>")
    return (
        f'<details class="ev"{" open" if open_ else ""}><summary>Why “{esc(c.label)}”?</summary>'
        f'<dl class="facts">{"".join(rows)}</dl></details>'
    )


def _replies(item: ReviewItem) -> str:
    return "".join(
        f'<div class="reply"><div class="small muted">Reply from the service · {esc(day(reply.time))}</div>'
        f"<div>{esc(reply.body)}</div></div>"
        for reply in item.replies
    )


def review_block(item: ReviewItem, links: Links, *, detail_link: bool = True) -> str:
    r = item.review
    body = f'<p class="body">{esc(r.review_body)}</p>' if r.review_body else ""
    shots = len(r.screenshot_urls or [])
    extra = f" · {shots} screenshot{'s' if shots != 1 else ''}" if shots else ""
    att, _ = _attestation(item, links)
    link = f' · <a href="/reviews/{esc(quote(r.id, safe=""))}">permalink</a>' if detail_link else ""
    return (
        f'<li class="review" data-review-id="{esc(r.id)}"><div class="head">{stars(r.rating_value)}'
        f"{pill(r.evidence)}</div>"
        f'<div class="who">by <span class="mono" title="{esc(r.attester)}">{esc(short(r.attester))}</span> · '
        f'<time datetime="{esc(datetime.fromtimestamp(r.review_time, tz=UTC).isoformat())}">'
        f"{esc(day(r.review_time))}</time>{esc(extra)}{link}</div>"
        f"{body}{evidence_details(item, links)}{att}{_replies(item)}</li>"
    )


def filter_bar(*, did: str, current: str | None, counts: dict[str, int]) -> str:
    base = service_path(did)
    items: list[tuple[str | None, str, int]] = [(None, "All", sum(counts.values()))]
    items += [(c.key, c.label, counts.get(c.key, 0)) for c in EVIDENCE_CLASSES]
    items += [(k, evidence_class(k).label, n) for k, n in counts.items() if k not in {c.key for c in EVIDENCE_CLASSES}]
    links = []
    for key, label, n in items:
        href = base + (f"?{urlencode({'evidence': key})}" if key else "") + "#reviews"
        cur = ' aria-current="true"' if key == current else ""
        links.append(f'<li><a href="{esc(href)}"{cur}>{esc(label)} ({n})</a></li>')
    return f'<ul class="filters" aria-label="filter reviews by evidence">{"".join(links)}</ul>'


# -- whole pages ------------------------------------------------------------------------------------------------


def erc8004_card(section: Mapping[str, Any] | None) -> str:
    """The agents' on-chain ERC-8004 feedback (docs/erc8004.md): its own card, not part of the score."""
    if not section:
        return ""
    mean = section.get("normalizedMean")
    share = section.get("paymentVerifiedShare")
    return (
        '<section class="card" id="erc8004" aria-labelledby="h-erc8004"><h2 id="h-erc8004">ERC-8004 feedback</h2>'
        '<p class="muted">On-chain feedback to this service\'s agents. Not part of the trust score above.</p>'
        '<dl class="facts">'
        f'<dt>Feedback</dt><dd id="erc8004-count">{int(section.get("count", 0))}</dd>'
        f"<dt>Mean rating</dt><dd>{'—' if mean is None else esc(f'{float(mean):.2f}')}</dd>"
        f'<dt>Payment verified</dt><dd id="erc8004-verified">{int(section.get("paymentVerified", 0))}'
        f"{'' if share is None else esc(f' ({100 * float(share):.0f}%)')}</dd>"
        f"<dt>Excluded</dt><dd>{int(section.get('selfFeedbackExcluded', 0))} self-feedback, "
        f"{int(section.get('revokedExcluded', 0))} revoked</dd></dl></section>"
    )


def service_page(
    *,
    did: str,
    profile: ServiceProfile,
    score: TrustScore,
    history: Sequence[ScorePoint],
    items: Sequence[ReviewItem],
    evidence_counts: dict[str, int],
    evidence: str | None,
    cursor: str | None,
    next_cursor: str | None,
    links: Links,
    erc8004: Mapping[str, Any] | None = None,
) -> str:
    name = display_name(did, profile)
    url_line = ""
    if profile.url:
        host = urlsplit(profile.url).netloc or profile.url
        url_line = f'<a href="{esc(profile.url)}" rel="noopener noreferrer nofollow">{esc(host)}</a> · '
    ident = (
        f'<div class="ident">{logo(did, profile)}<div><h1 id="name">{esc(name)}</h1>'
        f'<div class="sub">{url_line}<span class="mono" id="did">{esc(did)}</span></div></div></div>'
    )
    notice = ""
    if score.counts.live > 0 and score.counts.verified == 0:
        notice = (
            '<div class="notice" id="no-verified">No review of this service is backed by a receipt from the service '
            "yet: ratings here are unconfirmed.</div>"
        )
    where = evidence_class(evidence).label if evidence else "all"
    if items:
        reviews = f'<ul class="reviews">{"".join(review_block(i, links) for i in items)}</ul>'
    elif score.counts.live == 0:
        reviews = (
            '<p class="muted" id="no-reviews">No reviews yet. Paid for this service? You can review it '
            'through the API with your x402 receipt (see <a href="/docs">API</a>).</p>'
        )
    else:
        reviews = f'<p class="muted">No reviews in “{esc(where)}”.</p>'
    pager = []
    if cursor:
        first = service_path(did) + (f"?{urlencode({'evidence': evidence})}" if evidence else "") + "#reviews"
        pager.append(f'<a class="btn ghost" href="{esc(first)}">← Newest</a>')
    if next_cursor:
        q = {"cursor": next_cursor, **({"evidence": evidence} if evidence else {})}
        pager.append(f'<a class="btn ghost" href="{esc(service_path(did) + "?" + urlencode(q))}#reviews" '
                     'rel="next">Older reviews →</a>')  # fmt: skip
    pager_html = f'<nav class="pager" aria-label="review pages">{"".join(pager)}</nav>' if pager else ""
    c = score.counts
    counts = f"{c.live} live — {c.verified} verified purchase{'s' if c.verified != 1 else ''}, {c.unverified} other" + (
        f" · {c.superseded} replaced by a newer review from the same reviewer" if c.superseded else ""
    )
    facts = (
        '<section class="card" aria-labelledby="h-facts"><h2 id="h-facts">Details</h2><dl class="facts">'
        f'<dt>Reviews</dt><dd id="counts">{esc(counts)}</dd>'
        '<dt>Confidence</dt><dd><span class="meter" aria-hidden="true">'
        f'<span style="width:{100 * score.confidence:.0f}%"></span></span>'
        f'<span id="confidence">{100 * score.confidence:.0f}%</span></dd>'
        f"<dt>Evidence</dt><dd>{score.effective_evidence:.1f} effective reviews</dd>"
        f"<dt>Last review</dt><dd>{esc(day(score.last_review_at))}</dd>"
        f'<dt>Badge</dt><dd><a href="/badges/{esc(quote(did, safe=""))}">embed a badge</a> · '
        f'<a href="/badges/{esc(quote(did, safe=""))}.json">shields.io JSON</a></dd>'
        f'<dt>Data</dt><dd><a href="/v1/services/{esc(quote(did, safe=""))}/reputation?explain=true">'
        "reputation JSON (explained)</a></dd></dl></section>"
    )
    charts = (
        f'<div class="grid2">{histogram(score)}{sparkline(history)}</div><div style="height:18px"></div>'
        if score.counts.live
        else ""
    )
    main = (
        f"{ident}{notice}{headline(score, evidence_counts)}{charts}"
        f'<section class="card" id="reviews" aria-labelledby="h-reviews"><h2 id="h-reviews">Reviews</h2>'
        f"{filter_bar(did=did, current=evidence, counts=evidence_counts)}{reviews}{pager_html}</section>{facts}"
        f"{erc8004_card(erc8004)}"
    )
    footer = (
        f"Score model {esc(score.params_version)} · as of {esc(when(score.as_of))} · average of all services "
        f"{100 * score.prior_mean:.1f} · {_default_footer()}"
    )
    return layout(
        title=f"{name} — reviews and trust score",
        description=explanation(score, evidence_counts),
        main=main,
        footer=footer,
        index=score.counts.live > 0,
    )


def service_row(s: ListedService, *, rank: int | None = None) -> str:
    avg = average_rating(s.score)
    name = display_name(s.did, s.profile)
    enough = enough_evidence(s.score)
    nums = (
        f'<b>{s.score.score:.0f}</b><span class="muted small"> / 100</span>'
        if enough
        else '<span class="muted small">not enough reviews</span>'
    )
    rating = f"{stars(avg)} {avg:.1f}" if avg is not None else "no ratings"
    c = s.score.counts
    ranked = f'<span class="rank">#{rank}</span> ' if rank else ""
    return (
        f'<li data-did="{esc(s.did)}">{logo(s.did, s.profile)}<div><div class="name">{ranked}'
        f'<a href="{esc(service_path(s.did))}">{esc(name)}</a></div>'
        f'<div class="meta">{rating} · {c.live} review{"s" if c.live != 1 else ""}, '
        f"{c.verified} verified purchase{'s' if c.verified != 1 else ''}</div></div>"
        f'<div class="nums">{nums}<div class="muted small">trust score</div></div></li>'
    )


def landing_page(*, top: Sequence[ListedService], total: int) -> str:
    listing = (
        f'<ul class="svc">{"".join(service_row(s, rank=i + 1) for i, s in enumerate(top))}</ul>'
        if top
        else '<p class="muted">No service has been reviewed yet.</p>'
    )
    main = (
        '<div class="hero"><h1>Reviews of paid APIs you can check</h1>'
        "<p>Every review here can carry the receipt of a real x402 payment, signed by the service itself. "
        "We verify it, publish the review on chain as an EAS attestation, and score each service with the "
        "verified purchases counting most.</p></div>"
        f'<section class="card" aria-label="search">{search_form()}</section>'
        f'<section class="card" aria-labelledby="h-top"><h2 id="h-top">Top services</h2>{listing}'
        f'<p style="margin:12px 0 0"><a href="/services">All reviewed services ({total}) →</a></p></section>'
        '<h2>How it works</h2><ol class="steps">'
        "<li><b>1 · Pay</b>An x402 service answers a paid call with a receipt it signs.</li>"
        "<li><b>2 · Review</b>The payer signs a review carrying that receipt; we check the signature, the "
        "service's key and that the payer wrote it.</li>"
        "<li><b>3 · Trust</b>The review is published on chain; scores weigh verified purchases most and "
        "rank services by how sure we are.</li></ol>"
    )
    return layout(
        title="OMATrust Reviews — verified-purchase reviews of x402 services",
        description="Reviews of paid APIs backed by x402 payment receipts, scored and published on chain.",
        main=main,
    )


def services_page(
    *, items: Sequence[ListedService], query: str, total: int, offset: int, next_offset: int | None
) -> str:
    heading = f"Services matching “{esc(query)}”" if query else "Reviewed services"
    listing = (
        f'<ul class="svc">{"".join(service_row(s, rank=offset + i + 1) for i, s in enumerate(items))}</ul>'
        if items
        else '<p class="muted" id="no-match">No reviewed service matches. Try a host name, a DID or a URL.</p>'
    )
    pager = []
    if offset > 0:
        prev = {"q": query} if query else {}
        pager.append(f'<a class="btn ghost" href="/services?{esc(urlencode(prev))}">← First</a>')
    if next_offset is not None:
        q = {**({"q": query} if query else {}), "offset": str(next_offset)}
        pager.append(f'<a class="btn ghost" href="/services?{esc(urlencode(q))}" rel="next">More →</a>')
    pager_html = f'<nav class="pager" aria-label="pages">{"".join(pager)}</nav>' if pager else ""
    main = (
        f"<h1>{heading}</h1>"
        f'<p class="muted">{total} service{"s" if total != 1 else ""}, ranked by the trust score we are 90% sure '
        "of (so a long record of verified purchases beats a few glowing ones).</p>"
        f'<section class="card" aria-label="search">{search_form(value=query, label="Search services")}</section>'
        f'<section class="card" aria-label="services">{listing}{pager_html}</section>'
    )
    return layout(title="Reviewed services — OMATrust Reviews", description=heading, main=main, nav="services")


def review_page(*, item: ReviewItem, profile: ServiceProfile, links: Links) -> str:
    r = item.review
    name = display_name(r.subject_normalized, profile)
    att, state = _attestation(item, links)
    superseded = (
        f'<div class="notice">This review was replaced by a <a href="/reviews/{esc(quote(r.superseded_by, safe=""))}">'
        "newer review</a> from the same reviewer and no longer counts.</div>"
        if r.superseded_by
        else ""
    )
    body = (
        f'<p class="body" style="white-space:pre-wrap;overflow-wrap:anywhere">{esc(r.review_body)}</p>'
        if r.review_body
        else '<p class="muted">No text — a rating only.</p>'
    )
    shots = "".join(f"<li>{_link(None, u)}</li>" for u in r.screenshot_urls or [])
    shots_html = f'<h3>Screenshots (links not loaded)</h3><ul class="small">{shots}</ul>' if shots else ""
    main = (
        f'<p class="small"><a href="{esc(service_path(r.subject_normalized))}">← {esc(name)}</a></p>'
        f"<h1>Review of {esc(name)}</h1>{superseded}"
        f'<section class="card" aria-label="review"><div class="head" style="display:flex;gap:12px;flex-wrap:wrap;'
        f'align-items:center">{stars(r.rating_value, large=True)}{pill(r.evidence)}</div>'
        f'<div class="muted small" style="margin:6px 0 10px">by <span class="mono">{esc(r.attester)}</span> · '
        f"{esc(when(r.review_time))} · {'published via this service' if r.source == 'api' else 'read from chain'}"
        f"</div>{body}{shots_html}{_replies(item)}</section>"
        f'<section class="card" aria-labelledby="h-ev"><h2 id="h-ev">Evidence</h2>'
        f"{evidence_details(item, links, open_=True)}</section>"
        f'<section class="card" aria-labelledby="h-chain"><h2 id="h-chain">On chain</h2>{att}'
        f'<dl class="facts small" style="margin-top:8px"><dt>State</dt><dd>{esc(state)}</dd>'
        f'<dt>Subject</dt><dd class="mono">{esc(r.subject)}</dd>'
        f'<dt>Recipient</dt><dd class="mono">{esc(r.did_address)}</dd>'
        f'<dt>JSON</dt><dd><a href="/v1/reviews/{esc(quote(r.id, safe=""))}">/v1/reviews/{esc(r.id)}</a></dd>'
        "</dl></section>"
    )
    return layout(
        title=f"{r.rating_value}★ review of {name}", description=f"A review of {name}", main=main, index=False
    )


def error_page(*, status: int, message: str) -> str:
    main = f'<h1>{esc(message)}</h1><section class="card">{search_form()}</section><p><a href="/">Home</a></p>'
    return layout(title=f"{status} — OMATrust Reviews", description=message, main=main, index=False)


def badge_page(*, did: str, profile: ServiceProfile, base_url: str) -> str:
    """The badge in both themes with the snippets to embed it (README, HTML, shields.io)."""
    name = display_name(did, profile)
    enc = quote(did, safe="")
    svg = f"{base_url}/badges/{enc}.svg"
    page = f"{base_url}{service_path(did)}"
    shields = f"https://img.shields.io/endpoint?url={quote(f'{base_url}/badges/{enc}.json', safe='')}"
    snippets = (
        ("Markdown (README)", f"[![OMATrust reputation]({svg})]({page})"),
        ("HTML", f'<a href="{page}"><img src="{svg}" alt="OMATrust reputation of {name}"></a>'),
        ("HTML, dark theme", f'<a href="{page}"><img src="{svg}?theme=dark" alt="OMATrust reputation of {name}"></a>'),
        ("shields.io endpoint", shields),
    )
    blocks = "".join(
        f'<h3>{esc(title)}</h3><pre class="mono snippet" tabindex="0">{esc(code)}</pre>' for title, code in snippets
    )
    main = (
        f'<p class="small"><a href="{esc(service_path(did))}">← {esc(name)}</a></p>'
        f"<h1>Reputation badge of {esc(name)}</h1>"
        '<p class="muted">Live trust score, average stars and the number of verified purchases; it says '
        "“not enough reviews” until there is evidence. Cached for five minutes.</p>"
        '<div class="grid2"><section class="card" aria-labelledby="h-light"><h2 id="h-light">On a light page</h2>'
        f'<img id="badge-light" src="/badges/{esc(enc)}.svg" alt="OMATrust reputation badge of {esc(name)}">'
        '</section><section class="card dark" aria-labelledby="h-dark"><h2 id="h-dark">On a dark page</h2>'
        f'<img id="badge-dark" src="/badges/{esc(enc)}.svg?theme=dark" alt="OMATrust reputation badge of '
        f'{esc(name)}, dark theme"></section></div><div style="height:18px"></div>'
        f'<section class="card" aria-labelledby="h-embed"><h2 id="h-embed">Embed it</h2>{blocks}</section>'
    )
    return layout(title=f"Badge — {name}", description=f"Reputation badge of {name}", main=main, index=False)

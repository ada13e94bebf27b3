"""Embeddable reputation badges: a self-contained SVG (light or dark) and the shields.io endpoint JSON.

The SVG holds no script, no link, no external reference; text is escaped. Widths come from a per-character
estimate of 11 px Verdana (the shields.io convention), so the badge never clips its text.
"""

from __future__ import annotations

import json
from typing import Literal

from service.api.pages import average_rating, enough_evidence, esc, verified_purchases
from service.scoring import TrustScore

Theme = Literal["light", "dark"]
LABEL = "OMATrust"
_NARROW = set("fijlrtI.,:;|!' ")
_WIDE = set("mwMW@%")


def _text_width(text: str) -> float:
    return sum(3.6 if c in _NARROW else 10.0 if c in _WIDE else 7.0 for c in text)


def badge_message(score: TrustScore) -> tuple[str, str]:
    """(message, shields colour name) — never a high number for a service without enough reviews."""
    if score.counts.live == 0:
        return "no reviews yet", "lightgrey"
    if not enough_evidence(score):
        return "not enough reviews", "lightgrey"
    avg = average_rating(score) or 0.0
    paid = verified_purchases(score)
    message = f"{score.score:.0f}/100 · {avg:.1f}★ · {paid} paid"
    colour = "brightgreen" if score.lower90 >= 70 else "green" if score.lower90 >= 55 else "yellow" \
        if score.lower90 >= 40 else "orange"  # fmt: skip
    return message, colour


_COLOURS = {
    "brightgreen": "#1f7a45",
    "green": "#3d7f1f",
    "yellow": "#8a6a00",
    "orange": "#a34d00",
    "lightgrey": "#5c6675",
}


def badge_svg(*, score: TrustScore, theme: Theme = "light") -> str:
    message, colour = badge_message(score)
    left_w = round(_text_width(LABEL) + 20)
    right_w = round(_text_width(message) + 20)
    width = left_w + right_w
    label_bg = "#2b3440" if theme == "light" else "#e9edf2"
    label_fg = "#ffffff" if theme == "light" else "#16202c"
    value_bg = _COLOURS[colour] if theme == "light" else "#16202c"
    value_fg = "#ffffff"
    title = f"{LABEL} reputation: {message}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" viewBox="0 0 {width} 20" '
        f'role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="4"/></clipPath><g clip-path="url(#r)">'
        f'<rect width="{left_w}" height="20" fill="{label_bg}"/>'
        f'<rect x="{left_w}" width="{right_w}" height="20" fill="{value_bg}"/></g>'
        f'<g font-family="Verdana,DejaVu Sans,Geneva,sans-serif" font-size="11" text-anchor="middle">'
        f'<text x="{left_w / 2:.1f}" y="14" fill="{label_fg}">{esc(LABEL)}</text>'
        f'<text x="{left_w + right_w / 2:.1f}" y="14" fill="{value_fg}">{esc(message)}</text></g></svg>'
    )


def shields_json(*, score: TrustScore) -> str:
    """https://shields.io/badges/endpoint-badge format."""
    message, colour = badge_message(score)
    return json.dumps(
        {"schemaVersion": 1, "label": LABEL, "message": message, "color": colour, "cacheSeconds": 300},
        ensure_ascii=False,
        separators=(",", ":"),
    )

"""GET /services/{did}: the server-rendered reputation page — numbers equal the API's, verified badges, pending vs
confirmed attestations, the empty state, and attacker-controlled review text rendered inert."""

from __future__ import annotations

import math
import re
import time
from html.parser import HTMLParser
from urllib.parse import quote

from fastapi.testclient import TestClient

from service.cli.demo_kit import Merchant, Reviewer
from service.wiring import Wired
from tests.api.conftest import wait_confirmed
from tests.api.test_reputation_store import insert_review

XSS = '</p><script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">x</a> & "q" \'s'


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Tags:
    p = Tags()
    p.feed(html)
    return p


def page_path(did: str) -> str:
    return f"/services/{quote(did, safe='')}"


def test_page_shows_score_badges_and_inert_review_text(
    client: TestClient, merchant: Merchant, wired: Wired
) -> None:
    now = int(time.time())
    verified, unverified = Reviewer(), Reviewer()
    receipt = merchant.receipt(payer=verified.address, issued_at=now - 60)
    v = verified.submit(client, subject=merchant.did, ratingValue=5, reviewBody=XSS, proofs=[receipt])
    assert v.status_code == 201, v.text
    u = unverified.submit(client, subject=merchant.did, ratingValue=2, reviewBody="meh\nsecond line")
    assert u.status_code == 201, u.text

    # Before the publisher confirms, at least the newest review may still be pending; afterwards every UID shows.
    done = {r.json()["id"]: wait_confirmed(client, r.json()["id"]) for r in (v, u)}
    resp = client.get(page_path(merchant.did))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    csp = resp.headers["content-security-policy"]
    assert csp.startswith("default-src 'none'; style-src 'unsafe-inline'")
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["x-content-type-options"] == "nosniff"
    html = resp.text
    doc = parse(html)

    # Nothing executable or external: no script, no element with an event handler or a javascript: URL, no <img>.
    assert "<script" not in html.lower()
    for tag, attrs in doc.tags:
        assert tag not in ("script", "img", "iframe", "object", "embed", "link", "a", "form"), tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert not any("javascript:" in (value or "") for value in attrs.values()), (tag, attrs)
    # The text reads back exactly as written (escaped in the markup, not dropped).
    assert XSS in "".join(doc.text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert ("meta", {"name": "robots", "content": "noindex, nofollow"}) in doc.tags

    api = client.get(f"/v1/services/{quote(merchant.did, safe='')}/reputation").json()
    # The page and the API call are a moment apart: decay moves a score by ~1e-7 per second.
    shown = float(next(a for _, a in doc.tags if a.get("id") == "score")["data-score"] or "nan")
    lower = float(next(a for _, a in doc.tags if a.get("id") == "lower90")["data-lower90"] or "nan")
    assert math.isclose(shown, api["score"], rel_tol=1e-6)
    assert math.isclose(lower, api["lower90"], rel_tol=1e-6)
    assert f"{shown:.1f}<small>/100</small>" in html
    assert f'data-lower90="{lower!r}">{lower:.1f}<' in html
    assert f'<span id="confidence">{100 * api["confidence"]:.0f}%</span>' in html
    assert "1 verified, 1 unverified" in html
    # Histogram rows carry the same counts as the API histogram.
    for rating in range(1, 6):
        row = re.search(rf'<tr data-rating="{rating}">.*?<span class="hv">(\d+)</span> · <span class="hu">(\d+)</span>',
                        html)  # fmt: skip
        assert row is not None
        assert int(row[1]) == api["histogram"]["verified"][rating - 1]
        assert int(row[2]) == api["histogram"]["unverified"][rating - 1]

    reviews = [attrs for tag, attrs in doc.tags if tag == "li" and attrs.get("class") == "review"]
    # Newest first (time, then id, descending).
    expected = sorted(done.values(), key=lambda r: (r["reviewTime"], r["id"]), reverse=True)
    assert [r["data-review-id"] for r in reviews] == [r["id"] for r in expected]
    badges = re.findall(r'<li class="review".*?data-evidence="([a-z-]+)"', html)
    assert badges == [r["evidence"] for r in expected]
    assert sorted(badges) == ["none", "verified"]
    assert html.count("✓ Verified purchase") >= 1
    for review in done.values():
        assert review["attestation"]["uid"] in html
    assert 'id="empty-state"' not in html


def test_pending_attestation_is_shown_as_pending(client: TestClient, wired: Wired) -> None:
    insert_review(wired.runtime.engine, rid="p1", subject="did:web:pending.example", attester="0x" + "1" * 40,
                  rating=4, time=int(time.time()), evidence="none")  # fmt: skip
    html = client.get(page_path("did:web:pending.example")).text
    assert 'data-state="pending"' in html
    assert "attestation pending" in html
    assert "EAS attestation" not in html


def test_empty_state_is_honest(client: TestClient) -> None:
    resp = client.get(page_path("did:web:nobody-reviewed.example"))
    assert resp.status_code == 200
    html = resp.text
    assert "No reviews yet — score shown is the prior" in html
    assert 'id="empty-state"' in html
    assert "70.0<small>/100</small>" in html  # μ₀ = 0.7 fallback: no verified review anywhere
    assert '<span id="confidence">0%</span>' in html
    assert '<li class="review"' not in html


def test_page_lists_the_latest_20_live_reviews(client: TestClient, wired: Wired) -> None:
    subject = "did:web:busy.example"
    t0 = int(time.time()) - 1000
    for i in range(25):
        insert_review(wired.runtime.engine, rid=f"b{i:02d}", subject=subject, attester=f"0x{i:040x}", rating=1 + i % 5,
                      time=t0 + i, evidence="verified" if i % 2 else "none", body=f"review number {i}")  # fmt: skip
    # Reviewer 0 writes again: their first review is superseded and must not be listed.
    insert_review(wired.runtime.engine, rid="b99", subject=subject, attester=f"0x{0:040x}", rating=5, time=t0 + 100,
                  evidence="none", body="changed my mind")  # fmt: skip
    html = client.get(page_path(subject)).text
    ids = re.findall(r'<li class="review" data-review-id="([^"]+)"', html)
    assert ids == ["b99", *[f"b{i:02d}" for i in range(24, 5, -1)]]
    assert "review number 0<" not in html
    assert "25 live — 12 verified, 13 unverified · 1 superseded" in html


def test_not_a_did_is_an_html_error(client: TestClient) -> None:
    resp = client.get("/services/not-a-did")
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.headers["content-security-policy"].startswith("default-src 'none'")

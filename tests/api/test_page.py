"""The server-rendered pages: a service's page (numbers equal the API's, evidence pills and explanations, filter and
pagination, pending vs confirmed attestations, the honest empty state, attacker-controlled text rendered inert), the
landing page, search, the services index, a review's page, badges, and their caching headers."""

from __future__ import annotations

import math
import re
import time
from html.parser import HTMLParser
from urllib.parse import quote

from fastapi.testclient import TestClient

from service.api import pages
from service.api.app import create_app
from service.api.evidence_display import EVIDENCE_CLASSES
from service.cli.demo_kit import Merchant, Reviewer
from service.config import Settings
from service.wiring import Wired
from tests.api.conftest import Clock, wait_confirmed
from tests.api.test_reputation_store import insert_review
from tests.support.didweb_host import DidWebHost

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


def test_page_shows_score_badges_and_inert_review_text(client: TestClient, merchant: Merchant, wired: Wired) -> None:
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
    assert csp.startswith("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:")
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp
    assert resp.headers["x-content-type-options"] == "nosniff"
    html = resp.text
    doc = parse(html)

    # Nothing executable or external: no script, no event handler, no javascript: URL, links and forms stay here.
    assert "<script" not in html.lower()
    for tag, attrs in doc.tags:
        assert tag not in ("script", "iframe", "object", "embed"), tag
        if tag == "link":
            assert attrs == {"rel": "icon", "href": "data:,"}, attrs  # no favicon request
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert not any("javascript:" in (value or "") for value in attrs.values()), (tag, attrs)
        if tag == "img":
            assert (attrs.get("src") or "").startswith(("data:image/", "/badges/")), attrs
        if tag == "form":
            assert (attrs.get("action") or "").startswith("/"), attrs
            assert attrs.get("method") == "get", attrs
    # The text reads back exactly as written (escaped in the markup, not dropped).
    assert XSS in "".join(doc.text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    api = client.get(f"/v1/services/{quote(merchant.did, safe='')}/reputation").json()
    # The page and the API call are a moment apart: decay moves a score by ~1e-7 per second.
    attrs = next(a for _, a in doc.tags if a.get("id") == "score")
    shown = float(attrs["data-score"] or "nan")
    assert math.isclose(shown, api["score"], rel_tol=1e-6)
    if attrs.get("data-enough") == "false":
        assert "Not enough reviews" in html
    assert f'<span id="confidence">{100 * api["confidence"]:.0f}%</span>' in html
    assert "2 live — 1 verified purchase, 1 other" in html
    assert 'id="rating" data-rating="3.5"' in html  # (5 + 2) / 2
    # Histogram rows carry the same counts as the API histogram.
    for rating in range(1, 6):
        pattern = rf'<tr data-rating="{rating}">.*?<span class="hv">(\d+)</span> \+ <span class="hu">(\d+)</span>'
        row = re.search(pattern, html)
        assert row is not None
        assert int(row[1]) == api["histogram"]["verified"][rating - 1]
        assert int(row[2]) == api["histogram"]["unverified"][rating - 1]

    reviews = [attrs for tag, attrs in doc.tags if tag == "li" and attrs.get("class") == "review"]
    # Newest first (time, then id, descending).
    expected = sorted(done.values(), key=lambda r: (r["reviewTime"], r["id"]), reverse=True)
    assert [r["data-review-id"] for r in reviews] == [r["id"] for r in expected]
    pills = re.findall(r'<li class="review".*?data-evidence="([a-z-]+)"', html)
    assert pills == [r["evidence"] for r in expected]
    assert sorted(pills) == ["none", "verified"]
    assert html.count("✓ Verified purchase") >= 1
    # The evidence explained: signer and why it is trusted.
    signer = next(r for r in done.values() if r["evidence"] == "verified")["proofs"][0]["signer"]
    assert signer in html
    assert "listed as a key in the service&#x27;s did.json" in html or "named as a controller" in html
    for review in done.values():
        assert review["attestation"]["uid"] in html
    assert "No reviews yet" not in html
    # Who: the name and link from the service's did.json (fetched through the SSRF-safe resolver).
    assert f'<h1 id="name">Demo weather API ({merchant.host})</h1>' in html
    assert f'<a href="{merchant.url("/")}" rel="noopener noreferrer nofollow">' in html


def test_profile_falls_back_to_the_stored_did_json(
    client: TestClient, wired: Wired, merchant: Merchant, didweb: DidWebHost
) -> None:
    reviewer = Reviewer()
    receipt = merchant.receipt(payer=reviewer.address, issued_at=int(time.time()) - 60)
    assert reviewer.submit(client, subject=merchant.did, ratingValue=4, proofs=[receipt]).status_code == 201
    didweb.set("/.well-known/did.json", b"down", status=503)
    with TestClient(create_app(Settings(rate_limit_per_minute=1000), wired=wired)) as fresh:  # empty profile cache
        html = fresh.get(page_path(merchant.did)).text
    assert f'<h1 id="name">Demo weather API ({merchant.host})</h1>' in html
    host_only = fresh_page_without_profile(wired)
    assert '<h1 id="name">nobody-stored.example</h1>' in host_only


def fresh_page_without_profile(wired: Wired) -> str:
    with TestClient(create_app(Settings(rate_limit_per_minute=1000), wired=wired)) as fresh:
        return fresh.get(page_path("did:web:nobody-stored.example")).text


def test_pending_attestation_is_shown_as_pending(client: TestClient, wired: Wired) -> None:
    insert_review(wired.runtime.engine, rid="p1", subject="did:web:pending.example", attester="0x" + "1" * 40,
                  rating=4, time=int(time.time()), evidence="none")  # fmt: skip
    html = client.get(page_path("did:web:pending.example")).text
    assert 'data-state="pending"' in html
    assert "attestation pending" in html
    assert "On chain: EAS attestation" not in html


def test_empty_state_shows_no_number(client: TestClient) -> None:
    resp = client.get(page_path("did:web:nobody-reviewed.example"))
    assert resp.status_code == 200
    html = resp.text
    assert 'data-enough="false">No reviews yet<' in html
    assert "provisional" not in html
    assert "appears with the first reviews" in html
    assert "Nobody has reviewed this service yet" in html
    # No score shown as this service's own: neither the prior (70) nor any other big number.
    assert not re.search(r'class="big"[^>]*>\d', html)
    assert '<li class="review"' not in html
    assert 'id="no-reviews"' in html
    assert '<meta name="robots" content="noindex, nofollow">' in html


def test_thin_evidence_is_not_enough_reviews(client: TestClient, wired: Wired) -> None:
    subject = "did:web:thin.example"
    insert_review(wired.runtime.engine, rid="t1", subject=subject, attester="0x" + "2" * 40, rating=5,
                  time=int(time.time()), evidence="none")  # fmt: skip
    html = client.get(page_path(subject)).text
    assert 'data-enough="false">Not enough reviews<' in html
    assert re.search(r'provisional <span id="provisional">\d+</span>, mostly the average of all services', html)
    assert "Not enough reviews yet: 1 review, none of them verified purchases" in html
    assert 'id="no-verified"' in html
    svg = client.get(f"/badges/{quote(subject, safe='')}.svg").text
    assert "not enough reviews" in svg
    assert "/100" not in svg


def test_reviews_are_filtered_by_evidence_and_paginated(client: TestClient, wired: Wired) -> None:
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
    assert "25 live — 12 verified purchases, 13 other · 1 replaced by a newer review" in html
    # Filter chips come from the one evidence list, with live counts.
    assert ">All (25)<" in html
    assert ">Verified purchase (12)<" in html
    assert ">No proof (13)<" in html
    assert ">Offer seen (0)<" in html
    # Older page through the link the page gives.
    older = re.search(r'href="([^"]+)"\s+rel="next"', html)
    assert older is not None
    page2 = client.get(older[1].replace("&amp;", "&")).text
    assert re.findall(r'<li class="review" data-review-id="([^"]+)"', page2) == ["b05", "b04", "b03", "b02", "b01"]
    assert "← Newest" in page2
    verified = client.get(page_path(subject) + "?evidence=verified").text
    vids = re.findall(r'<li class="review" data-review-id="([^"]+)"', verified)
    assert vids == [f"b{i:02d}" for i in range(23, 0, -2)]
    assert 'aria-current="true">Verified purchase (12)<' in verified
    # A class added by the rules shows with its entry from the one display list.
    insert_review(wired.runtime.engine, rid="n1", subject=subject, attester="0x" + "9" * 40, rating=4,
                  time=t0 + 200, evidence="tx-interaction")  # fmt: skip
    html = client.get(page_path(subject) + "?evidence=tx-interaction").text
    assert 'data-evidence="tx-interaction">On-chain interaction<' in html
    assert ">On-chain interaction (1)<" in html
    assert client.get(page_path(subject) + "?evidence=%3Cscript%3E").status_code == 422
    assert client.get(page_path(subject) + "?cursor=bogus").status_code == 422


def test_not_a_did_is_an_html_error(client: TestClient) -> None:
    resp = client.get("/services/not-a-did")
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.headers["content-security-policy"].startswith("default-src 'none'")


def test_landing_search_and_index(client: TestClient, wired: Wired) -> None:
    now = int(time.time())
    for i, (subject, ev) in enumerate([("did:web:alpha.example", "verified"), ("did:web:beta.example", "none")]):
        for j in range(6):
            insert_review(wired.runtime.engine, rid=f"s{i}{j}", subject=subject, attester=f"0x{i * 10 + j:040x}",
                          rating=5, time=now - 10, evidence=ev)  # fmt: skip
    landing = client.get("/")
    assert landing.status_code == 200
    assert "text/html" in landing.headers["content-type"]
    html = landing.text
    assert "Reviews of paid APIs you can check" in html
    assert '<form class="search" action="/search" method="get"' in html
    # Top services ranked by lower90: the payment-backed record first.
    assert html.index("alpha.example") < html.index("beta.example")

    to = client.get("/search", params={"q": "did:web:Alpha.example"}, follow_redirects=False)
    assert to.status_code == 303
    assert to.headers["location"] == "/services/did%3Aweb%3Aalpha.example"
    to = client.get("/search", params={"q": "https://alpha.example:8443/weather?x=1"}, follow_redirects=False)
    assert to.headers["location"] == "/services/did%3Aweb%3Aalpha.example%253A8443"
    to = client.get("/search", params={"q": "did:web:localhost:4021"}, follow_redirects=False)
    assert to.headers["location"] == page_path("did:web:localhost%3a4021")  # normalized as the API does
    to = client.get("/search", params={"q": "beta"}, follow_redirects=False)
    assert to.headers["location"] == "/services?q=beta"

    index = client.get("/services", params={"q": "beta"}).text
    assert "beta.example" in index
    assert "alpha.example" not in index
    assert client.get("/services", params={"q": "nothing-like-this"}).text.count('id="no-match"') == 1
    full = client.get("/services").text
    assert full.index("alpha.example") < full.index("beta.example")


def test_review_page_explains_the_evidence(client: TestClient, merchant: Merchant) -> None:
    reviewer = Reviewer()
    receipt = merchant.receipt(payer=reviewer.address, issued_at=int(time.time()) - 60)
    r = reviewer.submit(client, subject=merchant.did, ratingValue=4, reviewBody="good", proofs=[receipt])
    assert r.status_code == 201, r.text
    review = r.json()
    html = client.get(f"/reviews/{review['id']}").text
    assert "Review of " in html
    assert "✓ Verified purchase" in html
    assert review["proofs"][0]["signer"] in html
    assert '<details class="ev" open>' in html
    assert client.get("/reviews/nope").status_code == 404


def test_badges_and_caching_headers(client: TestClient, wired: Wired, clock: Clock) -> None:
    subject = "did:web:badge.example"
    now = int(time.time())
    clock.frozen = float(now)  # the score decays with time: an unchanged body (and ETag) needs an unchanged "now"
    for j in range(6):
        insert_review(wired.runtime.engine, rid=f"g{j}", subject=subject, attester=f"0x{j + 1:040x}", rating=4,
                      time=now - 10, evidence="verified")  # fmt: skip
    enc = quote(subject, safe="")
    rep = client.get(f"/v1/services/{enc}/reputation")
    svg = client.get(f"/badges/{enc}.svg")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "<script" not in svg.text
    assert "href" not in svg.text
    assert "4.0★ · 6 paid" in svg.text
    dark = client.get(f"/badges/{enc}.svg?theme=dark").text
    assert dark != svg.text
    assert "4.0★ · 6 paid" in dark
    assert client.get(f"/badges/{enc}.svg?theme=neon").status_code == 422
    shields = client.get(f"/badges/{enc}.json").json()
    assert shields["schemaVersion"] == 1
    assert shields["message"].endswith("4.0★ · 6 paid")
    assert shields["color"] in ("brightgreen", "green", "yellow", "orange")
    empty = client.get(f"/badges/{quote('did:web:none.example', safe='')}.json").json()
    assert (empty["message"], empty["color"]) == ("no reviews yet", "lightgrey")
    preview = client.get(f"/badges/{enc}").text
    assert f'src="/badges/{enc}.svg"' in preview
    assert f'src="/badges/{enc}.svg?theme=dark"' in preview
    for resp in (svg, client.get(page_path(subject)), client.get("/"), rep):
        assert resp.status_code == 200
        etag = resp.headers["etag"]
        assert "max-age=" in resp.headers["cache-control"]
        assert "public" in resp.headers["cache-control"]
        again = client.get(resp.request.url.path + ("?" + resp.request.url.query if resp.request.url.query else ""),
                           headers={"If-None-Match": etag})  # fmt: skip
        assert again.status_code == 304, resp.request.url
        assert again.content == b""


def test_an_evidence_class_without_a_display_entry_still_shows() -> None:
    assert pages.pill("social-proof") == '<span class="pill weak" data-evidence="social-proof">Social proof</span>'
    bar = pages.filter_bar(did="did:web:a.example", current=None, counts={"verified": 2, "social-proof": 1})
    assert ">Social proof (1)<" in bar
    assert ">All (3)<" in bar
    assert [c.key for c in EVIDENCE_CLASSES][:2] == ["payment-backed", "verified"]


def test_transactions_and_uids_link_to_the_configured_explorer(
    wired: Wired, client: TestClient, merchant: Merchant
) -> None:
    reviewer = Reviewer()
    receipt = merchant.receipt(payer=reviewer.address, issued_at=int(time.time()) - 60, transaction="0x" + "ab" * 32)
    r = reviewer.submit(client, subject=merchant.did, ratingValue=5, proofs=[receipt])
    assert r.status_code == 201, r.text
    review = wait_confirmed(client, r.json()["id"])
    html = client.get(f"/reviews/{review['id']}").text
    assert "https://" not in html.split("<footer>")[0].split("</header>")[1]  # no explorer configured: no links
    settings = Settings(explorer_url="https://scan.example/", attestation_explorer_url="https://eas.example")
    with TestClient(create_app(settings, wired=wired)) as linked:
        html = linked.get(f"/reviews/{review['id']}").text
    uid, tx = review["attestation"]["uid"], review["attestation"]["txHash"]
    assert f'href="https://eas.example/attestation/view/{uid}"' in html
    assert f'href="https://scan.example/tx/{tx}"' in html
    assert f'href="https://scan.example/tx/0x{"ab" * 32}"' in html  # the payment named by the receipt

"""``omatrust demo``: against a running service, play an x402 merchant with a did:web document on loopback that
issues signed receipts, and post reviews from several payers — verified purchases, a JWS receipt, reviews without
proof, and one stolen receipt that is refused.

The service must be allowed to fetch the merchant's did.json over plain http on loopback:
``OMATRUST_DID_WEB_INSECURE_HOSTS=localhost:4021 omatrust serve``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any
from urllib.parse import quote

import httpx

from service.cli.demo_kit import DidWebServer, Merchant, Reviewer

DEMO_REVIEWS: list[tuple[int, str, str | None]] = [
    # (rating, body, receipt format or None for no proof)
    (5, "Accurate forecasts, paid 0.01 USDC and got data in 300 ms.", "eip712"),
    (4, "Good data; one timeout on a busy hour.", "eip712"),
    (5, "Reliable. Receipt signed with the merchant's P-256 key.", "jws"),
    (4, "Cheap and fast.", "eip712"),
    (1, "Never paid, but I hate weather APIs.", None),
    (2, "Heard it is slow.", None),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default="http://127.0.0.1:8402", help="base URL of the running service")
    parser.add_argument("--port", type=int, default=4021, help="loopback port of the demo merchant's did:web host")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for attestations to confirm")
    parser.add_argument("--keep-serving", action="store_true", help="keep the merchant's did.json up until Ctrl-C")


def _fail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return f"HTTP {response.status_code} {body.get('code')}: {body.get('detail') or body.get('title')}"


def run(args: argparse.Namespace) -> int:
    api = args.api.rstrip("/")
    with httpx.Client(base_url=api, timeout=30) as client:
        try:
            config = client.get("/v1/attestation-config").json()
        except httpx.HTTPError as exc:
            print(f"cannot reach the service at {api}: {exc}\nstart it first: omatrust serve")
            return 2
        print(f"service {api}: chain {config['chainId']}, EAS {config['eas']}"
              + (" (embedded, ephemeral)" if config.get("ephemeral") else ""))  # fmt: skip

        merchant = Merchant(host=f"localhost:{args.port}", scheme="http")
        with DidWebServer(port=args.port) as host:
            host.publish(merchant)
            print(f"merchant {merchant.did}: did.json at http://localhost:{args.port}/.well-known/did.json")
            print(f"  receipt signer (EIP-712) {merchant.address}, JWS key {merchant.kid}\n")
            ids = _post_reviews(client, merchant)
            if not ids:
                return 1
            _wait_and_show(client, ids, timeout=args.wait)
            did = quote(merchant.did, safe="")
            print(f"\nreviews:    {api}/v1/services/{did}/reviews")
            print(f"reputation: {api}/v1/services/{did}/reputation")
            print(f"page:       {api}/services/{did}")
            if args.keep_serving:
                print("\nserving the merchant's did.json; Ctrl-C to stop")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
    return 0


def _post_reviews(client: httpx.Client, merchant: Merchant) -> list[str]:
    ids: list[str] = []
    now = int(time.time())
    for rating, body, fmt in DEMO_REVIEWS:
        reviewer = Reviewer()
        proofs = [merchant.receipt(payer=reviewer.address, issued_at=now - 120, fmt=fmt)] if fmt else []
        resp = reviewer.submit(client, subject=merchant.did, ratingValue=rating, reviewBody=body, proofs=proofs)
        label = f"{rating}★ {'receipt/' + fmt if fmt else 'no proof':<16}"
        if resp.status_code != 201:
            print(f"  {label} refused: {_fail(resp)}")
            if resp.status_code == 503:
                port = merchant.host.split(":")[1]
                print(
                    "  hint: the service could not fetch the merchant's did.json; start it with\n"
                    f"        OMATRUST_DID_WEB_INSECURE_HOSTS=localhost:{port} omatrust serve"
                )
                return []
            continue
        review = resp.json()
        ids.append(review["id"])
        print(f"  {label} accepted  verifiedPurchase={review['verifiedPurchase']!s:<5}  id={review['id']}")

    # Someone else's receipt: the payer is not the reviewer, so it cannot back this review.
    victim, thief = Reviewer(), Reviewer()
    stolen = merchant.receipt(payer=victim.address, issued_at=now - 60)
    resp = thief.submit(client, subject=merchant.did, ratingValue=1, reviewBody="stolen receipt", proofs=[stolen])
    print(f"  1★ stolen receipt     refused: {_fail(resp)}")
    return ids


def _wait_and_show(client: httpx.Client, ids: list[str], *, timeout: float) -> None:
    deadline = time.time() + timeout
    reviews: dict[str, Any] = {}
    while time.time() < deadline:
        reviews = {rid: client.get(f"/v1/reviews/{rid}").json() for rid in ids}
        if all(r["attestation"]["state"] in ("confirmed", "failed") for r in reviews.values()):
            break
        time.sleep(0.5)
    print("\nattestations (attester = reviewer, recipient = DID Address of the merchant):")
    for rid, r in reviews.items():
        att = r["attestation"]
        print(
            f"  {rid[:8]} {r['ratingValue']}★ verified={r['verifiedPurchase']!s:<5} {att['state']:<9} uid={att['uid']}"
        )

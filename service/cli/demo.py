"""``omatrust demo``: real x402 purchases against a running service, then reviews of them.

It starts, in this process, the example merchant (``service.x402.merchant``: ``GET /paid`` with EIP-712 offers and
receipts, ``GET /paid/jws`` with JWS ones, its did.json for ``did:web:localhost%3A<port>``) behind the x402
middleware, with the PyPI SDK's facilitator in-process settling on the service's chain. Each reviewer gets test USDC,
pays the merchant (EIP-3009 ``transferWithAuthorization`` on chain), keeps the signed receipt (with the transaction
hash) and posts a review backed by it; two reviewers post without proof; a thief posts someone else's receipt and is
refused.

The chain: the service's embedded chain through its ``/v1/chain/rpc``, else ``OMATRUST_RPC_URL`` (a node where
``omatrust chain bootstrap`` placed the test USDC). The service must be allowed to fetch the merchant's did.json over
plain http on loopback: ``OMATRUST_DID_WEB_INSECURE_HOSTS=localhost:4021 omatrust serve``.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any
from urllib.parse import quote

import httpx

from service.cli.demo_kit import Reviewer

DEMO_REVIEWS: list[tuple[int, str, str | None]] = [
    # (rating, body, receipt format or None for no proof)
    (5, "Accurate forecasts, paid 0.01 USDC and got data in 300 ms.", "eip712"),
    (4, "Good data; one timeout on a busy hour.", "eip712"),
    (5, "Reliable. Receipt signed with the merchant's P-256 key.", "jws"),
    (4, "Cheap and fast.", "eip712"),
    (1, "Never paid, but I hate weather APIs.", None),
    (2, "Heard it is slow.", None),
]
PRICE = 10_000  # 0.01 USDC
REVIEWER_FUNDS = 1_000_000  # 1 USDC each


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default="http://127.0.0.1:8402", help="base URL of the running service")
    parser.add_argument("--port", type=int, default=4021, help="loopback port of the demo merchant")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for attestations to confirm")
    parser.add_argument("--keep-serving", action="store_true", help="keep the merchant up until Ctrl-C")


def _fail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return f"HTTP {response.status_code} {body.get('code')}: {body.get('detail') or body.get('title')}"


def payment_rpc_url(client: httpx.Client, api: str) -> str | None:
    """The service's embedded chain RPC when it has one, else ``OMATRUST_RPC_URL``."""
    from service.wiring import load_settings

    probe = client.post("/v1/chain/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    if probe.status_code == 200 and "result" in probe.json():
        return api + "/v1/chain/rpc"
    return load_settings().rpc_url or None


class _Served:
    """The merchant app on 127.0.0.1:<port> in a background thread (uvicorn)."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Served:
        self.thread.start()
        while not self.server.started and self.thread.is_alive():
            self.thread.join(0.05)
        if not self.server.started:
            raise SystemExit("the demo merchant could not start (port in use?)")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def run(args: argparse.Namespace) -> int:
    from eth_account import Account

    from service.chain import token
    from service.cli.x402_chain import facilitator_key
    from service.proofs import private_jwk_from_secret
    from service.wiring import connect_chain
    from service.x402.facilitator import build_facilitator
    from service.x402.merchant import MerchantConfig, create_merchant_app
    from service.x402.signer import OfferReceiptSigner, did_web

    api = args.api.rstrip("/")
    with httpx.Client(base_url=api, timeout=60) as client:
        try:
            config = client.get("/v1/attestation-config").json()
        except httpx.HTTPError as exc:
            print(f"cannot reach the service at {api}: {exc}\nstart it first: omatrust serve")
            return 2
        print(f"service {api}: chain {config['chainId']}, EAS {config['eas']}"
              + (" (embedded, ephemeral)" if config.get("ephemeral") else ""))  # fmt: skip
        paying = config.get("paymentToken")
        rpc_url = payment_rpc_url(client, api)
        if not paying or not rpc_url:
            print("no test USDC on the service's chain: on a dev node run `omatrust chain bootstrap` first")
            return 2
        w3 = connect_chain(rpc_url=rpc_url, timeout=30)
        host = f"localhost:{args.port}"
        did = did_web(host)
        # Keys derived from the port: a second demo run on the same port publishes the same did.json, so a service
        # that cached the first one still authorizes the signers (demo keys only; they are public).
        eip712 = OfferReceiptSigner.eip712(did=did, key_fragment="key-1", private_key=_demo_secret("eip712", args.port))
        jws_key = private_jwk_from_secret(crv="P-256", secret=_demo_secret("jws", args.port))
        jws = OfferReceiptSigner.jws(did=did, key_fragment="key-2", private_jwk=jws_key)
        merchant = MerchantConfig(
            public_url=f"http://{host}", network=paying["network"], pay_to=Account.create().address,
            asset=paying["address"], asset_name=paying["name"], asset_version=paying["version"], amount=str(PRICE),
            signer=eip712, review_provider=api,
        )  # fmt: skip
        facilitator = build_facilitator(w3=w3, private_key=facilitator_key())
        app = create_merchant_app(config=merchant, facilitator=facilitator, alt_signer=jws)
        with _Served(app, args.port):
            print(f"merchant {did}: GET {merchant.resource_url} for {PRICE} {paying['name']} "
                  f"({paying['address']} on {paying['network']})")  # fmt: skip
            print(f"  did.json at http://{host}/.well-known/did.json; EIP-712 signer {eip712.address}, "
                  f"JWS key {jws.kid}\n")  # fmt: skip
            ids = _post_reviews(client, w3=w3, rpc_url=rpc_url, merchant=merchant, api=api, token=token)
            if not ids:
                return 1
            _wait_and_show(client, ids, timeout=args.wait)
            quoted = quote(did, safe="")
            print(f"\nreviews:    {api}/v1/services/{quoted}/reviews")
            print(f"reputation: {api}/v1/services/{quoted}/reputation")
            print(f"page:       {api}/services/{quoted}")
            if args.keep_serving:
                print("\nserving the merchant; Ctrl-C to stop")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
    return 0


def _demo_secret(label: str, port: int) -> bytes:
    from eth_utils.crypto import keccak

    return keccak(text=f"omatrust demo merchant {label} key, port {port}")


def _buy(*, w3: Any, rpc_url: str, merchant: Any, reviewer: Reviewer, fmt: str, token: Any) -> Any:
    from service.x402.client import pay

    token.mint_to(w3=w3, holder=reviewer.address, amount=REVIEWER_FUNDS)
    url = merchant.resource_url + ("/jws" if fmt == "jws" else "")
    before = token.balance_of(w3=w3, holder=reviewer.address, token=merchant.asset)
    result = pay(url=url, account=reviewer.account, max_amount=PRICE, rpc_urls={merchant.network: rpc_url})
    spent = before - token.balance_of(w3=w3, holder=reviewer.address, token=merchant.asset)
    print(f"  paid {spent} to {merchant.pay_to[:10]}… tx {result.transaction}")
    return result


def _post_reviews(client: httpx.Client, *, w3: Any, rpc_url: str, merchant: Any, api: str, token: Any) -> list[str]:
    from service.errors import PaymentRefused, ReviewRefused
    from service.x402.client import review

    ids: list[str] = []
    for rating, body, fmt in DEMO_REVIEWS:
        reviewer = Reviewer()
        label = f"{rating}★ {'receipt/' + fmt if fmt else 'no proof':<16}"
        try:
            if fmt:
                bought = _buy(w3=w3, rpc_url=rpc_url, merchant=merchant, reviewer=reviewer, fmt=fmt, token=token)
                posted = review(receipt=bought.receipt or {}, offer=bought.offer, rating=rating, text=body,
                                account=reviewer.account, api=api, http=client)  # fmt: skip
            else:
                resp = reviewer.submit(client, subject=merchant.signer.did, ratingValue=rating, reviewBody=body,
                                       proofs=[])  # fmt: skip
                if resp.status_code != 201:
                    print(f"  {label} refused: {_fail(resp)}")
                    continue
                posted = resp.json()
        except PaymentRefused as exc:
            print(f"  {label} payment refused: {exc.code}: {exc.detail}")
            return []
        except ReviewRefused as exc:
            print(f"  {label} refused: HTTP {exc.status} {exc.problem.get('code')}: "
                  f"{exc.problem.get('detail') or exc.problem.get('title')}")  # fmt: skip
            if exc.status == 503:
                port = merchant.public_url.rsplit(":", 1)[1]
                print("  hint: the service could not fetch the merchant's did.json; start it with\n"
                      f"        OMATRUST_DID_WEB_INSECURE_HOSTS=localhost:{port} omatrust serve")  # fmt: skip
                return []
            continue
        ids.append(posted["id"])
        print(f"  {label} accepted  verifiedPurchase={posted['verifiedPurchase']!s:<5}  id={posted['id']}")

    # Someone else's receipt (a real purchase by the victim): the payer is not the reviewer, so it cannot back it.
    victim, thief = Reviewer(), Reviewer()
    stolen = _buy(w3=w3, rpc_url=rpc_url, merchant=merchant, reviewer=victim, fmt="eip712", token=token)
    try:
        review(receipt=stolen.receipt or {}, rating=1, text="stolen receipt", account=thief.account, api=api,
               http=client)  # fmt: skip
        print("  1★ stolen receipt     accepted (unexpected)")
    except ReviewRefused as exc:
        print(f"  1★ stolen receipt     refused: HTTP {exc.status} {exc.problem.get('code')}: "
              f"{exc.problem.get('detail') or exc.problem.get('title')}")  # fmt: skip
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

"""``omatrust merchant``: the example x402 merchant (``service.x402.merchant``; the app docs/merchant.md shows).

Serves ``GET /paid`` behind the x402 middleware with the ``offer-receipt`` and ``reviews`` extensions and its own
``/.well-known/did.json`` for ``did:web:localhost%3A<port>`` (signer under ``assertionMethod``). Defaults: the chain's
test USDC, an in-process facilitator (the SDK's), a fresh signer key, a fresh payTo address. Chain: ``--rpc-url`` →
``OMATRUST_RPC_URL`` → the service's embedded chain (``--api``). Prints ``{url, did, payTo, asset, signer}`` as one
JSON line when ready. The review service must be allowed to fetch the did.json over plain http on loopback
(``OMATRUST_DID_WEB_INSECURE_HOSTS=localhost:<port>``).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=4021)
    parser.add_argument("--facilitator", help="facilitator URL (default: the SDK facilitator in-process)")
    parser.add_argument("--pay-to", help="address paid (default: a fresh one)")
    parser.add_argument("--amount", default="10000", help="price in atomic units (default 10000 = 0.01 USDC)")
    parser.add_argument("--asset", help="EIP-3009 token address (default: the chain's test USDC)")
    parser.add_argument("--signer", choices=("eip712", "jws"), default="eip712")
    parser.add_argument("--rpc-url", help="JSON-RPC URL of the payment chain")
    parser.add_argument("--api", default="http://127.0.0.1:8402", help="review provider (this service)")


def run(args: argparse.Namespace) -> int:
    from eth_account import Account

    from service.cli.foreground import serve_foreground
    from service.cli.x402_chain import asset_on, facilitator_key, rpc_url_for
    from service.wiring import connect_chain
    from service.x402.facilitator import build_facilitator
    from service.x402.merchant import MerchantConfig, create_merchant_app
    from service.x402.signer import OfferReceiptSigner, did_web

    rpc_url = rpc_url_for(explicit=args.rpc_url, api=args.api)
    host = f"localhost:{args.port}"
    did = did_web(host)
    try:
        w3 = connect_chain(rpc_url=rpc_url, timeout=30)
        asset = asset_on(w3=w3, address=args.asset)
        if args.facilitator:
            from x402.http import FacilitatorConfig, HTTPFacilitatorClient

            facilitator: object = HTTPFacilitatorClient(FacilitatorConfig(url=args.facilitator))
        else:
            facilitator = build_facilitator(w3=w3, private_key=facilitator_key())
        signer = OfferReceiptSigner.eip712(did=did) if args.signer == "eip712" else OfferReceiptSigner.jws(did=did)
        config = MerchantConfig(
            public_url=f"http://{host}", network=asset.network, pay_to=args.pay_to or Account.create().address,
            asset=asset.address, asset_name=asset.name, asset_version=asset.version, amount=str(int(args.amount)),
            signer=signer, review_provider=args.api,
        )  # fmt: skip
        app = create_merchant_app(config=config, facilitator=facilitator)
    except SystemExit:
        raise
    except Exception as exc:
        print(f"merchant: cannot start: {exc}", file=sys.stderr)
        return 3
    ready = {"url": config.resource_url, "did": did, "payTo": config.pay_to, "asset": asset.address,
             "signer": signer.address or signer.kid}  # fmt: skip
    return serve_foreground(app, host=args.host, port=args.port, ready=ready)

"""``omatrust review --receipt FILE [--offer FILE] --rating N [--text T] --key K [--api URL]``: post a review
backed by an x402 receipt (wrapped as OMATrust proofs; prepare → sign the EAS typed data → submit).

Prints the review resource as JSON and exits 0 when accepted; exits 1 with the problem+json on stderr when refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--receipt", type=Path, required=True, help="receipt.json from `omatrust pay --out`")
    parser.add_argument("--offer", type=Path, help="offer.json from `omatrust pay --out`")
    parser.add_argument("--rating", type=int, required=True, help="1–5")
    parser.add_argument("--text", help="review body")
    parser.add_argument("--key", required=True, help="reviewer key (the payer): 0x… or env:NAME")
    parser.add_argument("--api", default="http://127.0.0.1:8402", help="the review service")
    parser.add_argument("--erc8004", type=int, metavar="AGENT_ID",
                        help="after posting, call ERC-8004 giveFeedback for this agent from the reviewer's key, "
                             "pointing at the service's feedback file (env: RPC_URL, ERC8004_REGISTRIES)")  # fmt: skip
    parser.add_argument("--erc8004-wait", type=float, default=120.0, metavar="SECONDS",
                        help="how long --erc8004 waits for the review's attestation (default 120)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import httpx

    from service.errors import PaymentRefused, ReviewRefused
    from service.x402.client import load_key, review

    try:
        account = load_key(args.key)
        receipt = json.loads(args.receipt.read_text())
        offer = json.loads(args.offer.read_text()) if args.offer else None
    except (ValueError, OSError) as exc:
        print(json.dumps({"status": 400, "code": "bad-input", "detail": str(exc)}), file=sys.stderr)
        return 2
    try:
        result = review(receipt=receipt, offer=offer, rating=args.rating, text=args.text, account=account,
                        api=args.api)  # fmt: skip
    except ReviewRefused as exc:
        print(json.dumps(exc.problem), file=sys.stderr)
        return 1
    except PaymentRefused as exc:
        print(json.dumps({"status": 422, "code": exc.code, "detail": exc.detail}), file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(json.dumps({"status": 503, "code": "unreachable", "detail": str(exc)}), file=sys.stderr)
        return 1
    print(json.dumps(result))
    if args.erc8004 is not None:
        from service.cli.erc8004 import review_step

        return review_step(args=args, account=account, review_id=str(result["id"]))
    return 0

"""``omatrust pay URL --key K``: buy an x402 resource (402 → EIP-3009 authorization → retry → 200) within
``--max-amount`` atomic units; write the receipt and offer exactly as received; print one JSON object
``{status, network, transaction, payer, receipt, offer, reviewUrl}``.

Spend control, before anything is signed: only the ``exact`` scheme, an EIP-3009 asset on a network with an RPC URL
(``OMATRUST_PAYMENT_RPC_URLS`` = ``eip155:31337=http://…,…``, or ``OMATRUST_RPC_URL``), at most ``--max-amount``.
Exit 0 paid; 1 refused or failed (a JSON ``{error, detail, paid}`` on stderr); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url")
    parser.add_argument("--key", required=True, help="payer key: 0x… or env:NAME")
    parser.add_argument("--max-amount", type=int, default=1_000_000, help="atomic units (default 1000000)")
    parser.add_argument("--out", type=Path, help="directory for receipt.json / offer.json")


def run(args: argparse.Namespace) -> int:
    import httpx

    from service.errors import PaymentRefused
    from service.x402.client import load_key, pay

    try:
        account = load_key(args.key)
    except ValueError as exc:
        print(json.dumps({"error": "bad-key", "detail": str(exc), "paid": False}), file=sys.stderr)
        return 2
    try:
        result = pay(url=args.url, account=account, max_amount=args.max_amount, out_dir=args.out)
    except PaymentRefused as exc:
        print(json.dumps({"error": exc.code, "detail": exc.detail, "paid": exc.paid}), file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(json.dumps({"error": "unreachable", "detail": str(exc), "paid": False}), file=sys.stderr)
        return 1
    print(json.dumps(result.to_json()))
    return 0 if result.status == 200 else 1

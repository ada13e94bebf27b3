"""EAS publishing cost and throughput: single vs batched delegated attests, on the embedded chain and on anvil.

    python -m bench.chain [--n 30] [--batch 20] [--no-anvil] [--json]

Reviews are realistic-sized (one x402-receipt proof, ~250-char body) and nearly identical (the subject differs),
each from its own reviewer. All typed data is signed before timing; the clock covers pre-checks, ABI encoding,
relayer signing, broadcast and the receipt. Gas per review is gasUsed / reviews from the receipts.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from eth_account import Account

from service.chain.codec import encode_review, review_recipient
from service.chain.delegation import DelegatedRequest
from service.chain.eas_relayer import EasClient
from service.domain import Review

PROOF = (
    '{"proofType":"x402-receipt","proofPurpose":"commercial-tx","proofObject":{"format":"eip712","payload":'
    '{"version":1,"network":"eip155:8453","resourceUrl":"https://api.example.com/weather?city=Paris",'
    '"payer":"0x857b06519E91e3A54538791bDbb0E22373e36b66","issuedAt":1763700000,"transaction":"0x'
    + "4e" * 32
    + '"},"signature":"0x'
    + "ab" * 65
    + '"}}'
)
BODY = ("Accurate forecasts, fast responses and fair pricing; the 402 flow worked on the first try. " * 3)[:250]


def _requests(client: EasClient, n: int, tag: str) -> list[DelegatedRequest]:
    deadline = int(time.time()) + 3600
    out = []
    for i in range(n):
        reviewer = Account.create()
        review = Review(f"did:web:{tag}{i}.example.com", "1.0.0", 5, BODY, (), (PROOF,))
        data = encode_review(review=review)
        recipient = review_recipient(subject=review.subject)
        typed = client.build_attest_typed_data(
            attester=reviewer.address, data=data, recipient=recipient, deadline=deadline, nonce=0
        )
        signature = bytes(Account.sign_typed_data(reviewer.key, full_message=typed).signature)
        out.append(DelegatedRequest(reviewer.address, data, recipient, deadline, 0, signature))
    return out


def _run(client: EasClient, requests: list[DelegatedRequest], batch: int) -> dict[str, float]:
    started = time.perf_counter()
    landed = []
    for k in range(0, len(requests), batch):
        landed += client.submit(requests=requests[k : k + batch])
    elapsed = time.perf_counter() - started
    gas = sum(int(client.w3.eth.get_transaction_receipt(h)["gasUsed"]) for h in {x.tx_hash for x in landed})
    return {
        "reviews": len(landed),
        "transactions": len({x.tx_hash for x in landed}),
        "gas_per_review": gas / len(landed),
        "attestations_per_s": len(landed) / elapsed,
        "data_bytes": len(requests[0].data),
    }


def measure(client: EasClient, *, n: int, batch: int, label: str) -> dict[str, Any]:
    single = _run(client, _requests(client, n, f"{label}-s"), 1)
    batched = _run(client, _requests(client, max(n, batch), f"{label}-b"), batch)
    return {
        "chain": label,
        "single": single,
        "batched": batched,
        "batch_size": batch,
        "gas_ratio_batched_vs_single": batched["gas_per_review"] / single["gas_per_review"],
        "speedup_batched_vs_single": batched["attestations_per_s"] / single["attestations_per_s"],
    }


def _print(result: dict[str, Any]) -> None:
    s, b = result["single"], result["batched"]
    print(f"== {result['chain']} (review data {s['data_bytes']} bytes)")
    print(f"  single : {s['gas_per_review']:>10,.0f} gas/review  {s['attestations_per_s']:6.1f} attestations/s"
          f"  ({s['reviews']} reviews, {s['transactions']} txs)")
    print(f"  batched: {b['gas_per_review']:>10,.0f} gas/review  {b['attestations_per_s']:6.1f} attestations/s"
          f"  ({b['reviews']} reviews, {b['transactions']} txs of ≤{result['batch_size']})")
    print(f"  batched/single gas = {result['gas_ratio_batched_vs_single']:.1%} (goal ≤ 60%),"
          f" throughput ×{result['speedup_batched_vs_single']:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30, help="reviews per mode")
    parser.add_argument("--batch", type=int, default=20, help="reviews per multiAttestByDelegation")
    parser.add_argument("--no-anvil", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from service.chain.embedded import start_embedded_chain

    started = time.perf_counter()
    chain = start_embedded_chain()
    startup = time.perf_counter() - started
    results = [measure(chain.client(), n=args.n, batch=args.batch, label="embedded")]
    results[0]["startup_s"] = startup
    if not args.no_anvil:
        results.append(_anvil(n=args.n, batch=args.batch))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"embedded chain startup (incl. first-use contract build): {startup * 1000:.0f} ms")
    for result in results:
        if "error" in result:
            print(f"== anvil: {result['error']}")
        else:
            _print(result)
    return 0


def _anvil(*, n: int, batch: int) -> dict[str, Any]:
    try:
        from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode
    except ImportError as exc:  # pragma: no cover - only from a source checkout
        return {"chain": "anvil", "error": f"tests.support.anvil unavailable: {exc}"}
    from service.chain.deploy import bootstrap
    from service.chain.embedded import EAS_ADDRESS, SCHEMA_REGISTRY_ADDRESS
    from service.chain.rpc import connect

    try:
        node = AnvilNode.start()
    except BaseException as exc:  # pytest.skip raises a BaseException subclass when the binary is absent
        return {"chain": "anvil", "error": str(exc)}
    with node:
        relayer = Account.from_key(ANVIL_DEV_KEY_0)
        w3 = connect(rpc_url=node.url)
        bootstrap(w3=w3, eas_address=EAS_ADDRESS, registry_address=SCHEMA_REGISTRY_ADDRESS, payer=relayer)
        client = EasClient(w3=w3, eas_address=EAS_ADDRESS, relayer=relayer, poll_interval=0.005)
        return measure(client, n=n, batch=batch, label="anvil")


if __name__ == "__main__":
    raise SystemExit(main())

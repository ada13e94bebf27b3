"""``omatrust sync`` throughput against the raw cost of reading the same attestations, same run, same anvil.

    python -m bench.sync [--n 2000] [--batch 20] [--db sqlite|postgres] [--json]

Publishes ``--n`` User Reviews (no proofs: judging them needs no look-ups, so the figure is the indexing path) on a
fresh anvil node, then over the same block range measures:

* raw: ``eth_getLogs`` + event decode + attestation reads in JSON-RPC batches + review decode (the floor any indexer
  pays), and the same with one ``getAttestation`` call per event (how sync read before);
* sync: ``service.workflows.sync.sync_chain`` — what ``omatrust sync`` runs after start-up — into a fresh database
  (reorg check, judging, storing, aggregates, checkpoints and block hashes); creating and migrating that database
  is start-up and not timed.

Goal: sync ≥ 0.5× the raw (batched) rate. Each figure is the best of ``--rounds`` runs (the database is fresh each
time).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_account import Account

from service.chain.codec import decode_review, encode_review, review_recipient
from service.chain.delegation import DelegatedRequest
from service.chain.eas_relayer import EasClient
from service.chain.indexer import ReviewIndexer
from service.domain import Review
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.workflows.runtime import Runtime
from service.workflows.sync import sync_chain

GOAL = 0.5
BODY = ("Accurate forecasts, fast responses and fair pricing; the 402 flow worked on the first try. " * 3)[:250]


def _publish(client: EasClient, n: int, batch: int) -> None:
    deadline = int(time.time()) + 3600
    requests = []
    for i in range(n):
        reviewer = Account.create()
        review = Review(f"did:web:svc{i % 50}.example.com", "1.0.0", 1 + i % 5, BODY, (), ())
        data = encode_review(review=review)
        recipient = review_recipient(subject=review.subject)
        typed = client.build_attest_typed_data(attester=reviewer.address, data=data, recipient=recipient,
                                               deadline=deadline, nonce=0)  # fmt: skip
        signature = bytes(Account.sign_typed_data(reviewer.key, full_message=typed).signature)
        requests.append(DelegatedRequest(reviewer.address, data, recipient, deadline, 0, signature))
    for k in range(0, n, batch):
        client.submit(requests=requests[k : k + batch])


def _raw(client: EasClient, head: int, *, batched: bool) -> int:
    logs = list(client.attested_logs(from_block=0, to_block=head))
    uids = ["0x" + bytes(log["data"])[:32].hex() for log in logs]
    _ = [(bytes(log["topics"][1])[-20:], bytes(log["topics"][2])[-20:], int(log["blockNumber"])) for log in logs]
    records = client.get_attestations(uids=uids) if batched else [client.get_attestation(uid=u) for u in uids]
    return sum(1 for r in records if r is not None and decode_review(data=r.data) is not None)


def _sync(client: EasClient, url: str) -> tuple[int, float]:
    """(reviews stored, seconds): the database is created and migrated first, untimed (start-up, not sync)."""
    engine = make_engine(url=url)
    upgrade(engine=engine)
    rt = Runtime(engine=engine, eas=client, resolver=None, controllers=None)
    try:
        started = time.perf_counter()
        report = sync_chain(rt=rt, indexer=ReviewIndexer(client=client))
        return report.stored, time.perf_counter() - started
    finally:
        engine.dispose()


def _timed(fn: Any) -> tuple[int, float]:
    started = time.perf_counter()
    count = fn()
    return count, time.perf_counter() - started


def _fresh_url(db: str, workdir: Path, k: int) -> str:
    if db == "postgres":
        from sqlalchemy import create_engine, text

        admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT")
        name = f"omatrust_bench_sync_{k}_{int(time.time())}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    return f"sqlite:///{workdir / f'sync{k}.db'}"


def run(*, n: int, batch: int, db: str, rounds: int) -> dict[str, Any]:
    from service.chain.addresses import checksum_cached
    from service.chain.deploy import bootstrap
    from service.chain.embedded import EAS_ADDRESS, SCHEMA_REGISTRY_ADDRESS
    from service.chain.rpc import connect
    from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode

    with AnvilNode.start() as node, tempfile.TemporaryDirectory() as tmp:
        relayer = Account.from_key(ANVIL_DEV_KEY_0)
        w3 = connect(rpc_url=node.url, timeout=60)
        bootstrap(w3=w3, eas_address=EAS_ADDRESS, registry_address=SCHEMA_REGISTRY_ADDRESS, payer=relayer)
        client = EasClient(w3=w3, eas_address=EAS_ADDRESS, relayer=relayer, poll_interval=0.005)
        _publish(client, n, batch)
        head = client.block_number()
        reader = EasClient(w3=connect(rpc_url=node.url, timeout=60), eas_address=EAS_ADDRESS, relayer=None)
        best: dict[str, float] = {}
        for k in range(rounds):
            for label, fn in (
                ("raw_batched", lambda: _timed(lambda: _raw(reader, head, batched=True))),
                ("raw_sequential", lambda: _timed(lambda: _raw(reader, head, batched=False))),
                ("sync", lambda k=k: _sync(reader, _fresh_url(db, Path(tmp), k))),
            ):
                checksum_cached.cache_clear()  # each arm starts cold: no arm profits from addresses another one decoded
                count, seconds = fn()
                assert count == n, (label, count)
                best[label] = max(best.get(label, 0.0), count / seconds)
    ratio = best["sync"] / best["raw_batched"]
    return {
        "attestations": n,
        "blocks": head,
        "db": db,
        "raw_batched_per_s": round(best["raw_batched"], 1),
        "raw_sequential_per_s": round(best["raw_sequential"], 1),
        "sync_per_s": round(best["sync"], 1),
        "sync_vs_raw": round(ratio, 3),
        "goal_met": ratio >= GOAL,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(n=args.n, batch=args.batch, db=args.db, rounds=args.rounds)
    if args.json:
        print(json.dumps(result))
        return
    print(f"sync of {result['attestations']} attestations in {result['blocks']} blocks on anvil ({result['db']}):")
    print(f"  raw: getLogs + decode + batched reads + review decode  {result['raw_batched_per_s']:>9.1f} /s")
    print(f"  raw with one getAttestation per event (old sync)      {result['raw_sequential_per_s']:>9.1f} /s")
    print(f"  sync_chain (omatrust sync after start-up)             {result['sync_per_s']:>9.1f} /s  = "
          f"{result['sync_vs_raw']:.2f}x raw (goal >= {GOAL}x: {'met' if result['goal_met'] else 'NOT met'})")


if __name__ == "__main__":
    main()

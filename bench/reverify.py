"""Batch re-verification throughput: ``omatrust reverify`` over stored reviews, vs raw proof verification.

    python -m bench.reverify [--reviews 100000] [--jws 10000] [--db sqlite|postgres] [--hosts 20] [--workers N]

Seeds ``--reviews`` EIP-712-receipt reviews and ``--jws`` JWS-receipt reviews directly in a fresh database (bulk
insert, stored outcomes exactly as verification records them), spread over ``--hosts`` merchants, each with a
did:web document served by a local HTTP server (fetched once per run: the documents are then in the run's cache).
Then runs the re-verification workflow and reports:

* overall reviews/s (wall clock, reading + look-ups + judging + writing) — goal ≥ 3,000/s on 2 cores;
* the CPU-bound part: proofs judged per second per core (worker CPU time) against the raw verification rate of
  ``service.proofs`` (parse + EIP-712 recover / JWS verify) measured in this same process on the same proofs —
  goal: judging within 2× of raw.

PostgreSQL: a fresh database is created on ``--pg-url``'s server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text

from service.cli.demo_kit import DidWebServer, Merchant
from service.dids import normalize_did
from service.domain import ArtifactKind, ReceiptPayload, VerificationKey
from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.proofs import (
    jwk_to_public_jwk,
    parse_artifact,
    proof_wrapper,
    receipt_digest,
    recover_eip712_signer,
    sign_receipt_eip712,
    sign_receipt_jws,
    verify_jws,
)
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.store.tables import DidSnapshotRow, ProofRow, ReviewRow
from service.workflows.evaluate import ReviewPolicy
from service.workflows.reverify import ReverifyOptions, ReverifyReport, reverify

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
GOAL_REVIEWS_PER_S = 3000.0
GOAL_JUDGE_OVER_RAW = 2.0
DAY = 86_400


# ---- seeding ------------------------------------------------------------------------------------------------------


Signed = tuple[str, str, dict[str, Any], str, int]  # payer, format, proof wrapper, replay key, issuedAt


def _sign(job: tuple[dict[str, Any], int, int, str, int]) -> list[Signed]:
    """Worker: sign ``count`` receipts for one merchant."""
    merchant_state, start, count, fmt, now = job
    merchant = Merchant(**merchant_state)
    rng = random.Random(start)
    out = []
    for i in range(start, start + count):
        payer = "0x" + rng.randbytes(20).hex()
        issued_at = now - DAY + i % DAY - 60
        payload = ReceiptPayload(version=1, network=merchant.network, resource_url=merchant.url(f"/item/{i}"),
                                 payer=payer, issued_at=issued_at, transaction="")  # fmt: skip
        if fmt == "jws":
            envelope = sign_receipt_jws(payload=payload, private_jwk=merchant.jws_key, kid=merchant.kid)
            header, body, _sig = envelope["signature"].split(".")
            key = hashlib.sha256(f"{header}.{body}".encode("ascii")).hexdigest()
        else:
            envelope = sign_receipt_eip712(payload=payload, private_key=merchant.evm_key)
            key = receipt_digest(payload).hex()
        out.append((payer, fmt, proof_wrapper(artifact=envelope, kind=ArtifactKind.RECEIPT), key, issued_at))
    return out


def _rows(
    merchant: Merchant, signed: list[Signed], snapshot: str, start: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    reviews, proofs = [], []
    subject_normalized = normalize_did(merchant.did)
    for n, (payer, fmt, wrapper, key, issued_at) in enumerate(signed):
        i = start + n
        review_id = uuid.uuid4().hex
        review_time = issued_at + 60
        reviews.append({
            "id": review_id, "subject": merchant.did, "subject_normalized": subject_normalized,
            "did_address": "0x" + "00" * 20, "attester": payer, "version": "", "rating_value": 1 + i % 5,
            "review_body": "", "screenshot_urls": [], "proofs_json": [json.dumps(wrapper, separators=(",", ":"))],
            "data_hex": "0x", "review_time": review_time, "source": "api", "verified_purchase": True,
            "evidence": "verified", "created_at": review_time,
        })  # fmt: skip
        proofs.append({
            "review_id": review_id, "position": 0, "proof_type": "x402-receipt", "status": "verified", "reason": None,
            "kind": "receipt", "format": fmt, "signature_valid": True,
            "signer": merchant.kid if fmt == "jws" else merchant.address, "tier": "did-document", "replay_key": key,
            "bound": True, "issued_at": issued_at, "checked_at": review_time, "evidence_hash": snapshot, "detail": "",
        })  # fmt: skip
    return reviews, proofs


def seed(*, url: str, merchants: list[Merchant], documents: list[bytes], eip712: int, jws: int, now: int) -> float:
    """Sign and bulk-insert the reviews; returns seconds spent."""
    started = time.perf_counter()
    engine = make_engine(url=url)
    upgrade(engine=engine)
    jobs = []
    per_job = 2000
    for fmt, total in (("eip712", eip712), ("jws", jws)):
        for start in range(0, total, per_job):
            m = merchants[(start // per_job) % len(merchants)]
            state = {"host": m.host, "scheme": m.scheme, "evm_key": m.evm_key, "jws_key": m.jws_key}
            jobs.append((state, start + (0 if fmt == "eip712" else eip712), min(per_job, total - start), fmt, now))
    snapshots = {m.host: hashlib.sha256(doc).hexdigest() for m, doc in zip(merchants, documents, strict=True)}
    with engine.begin() as conn:
        conn.execute(insert(DidSnapshotRow), [
            {"snapshot_hash": snapshots[m.host], "did": m.did, "kind": "did-document", "raw": doc.decode(),
             "first_seen_at": now - 2 * DAY}
            for m, doc in zip(merchants, documents, strict=True)
        ])  # fmt: skip
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        for job, signed in zip(jobs, pool.imap(_sign, jobs), strict=True):
            merchant = next(m for m in merchants if m.host == job[0]["host"])
            reviews, proofs = _rows(merchant, signed, snapshots[merchant.host], job[1])
            with engine.begin() as conn:
                conn.execute(insert(ReviewRow), reviews)
                conn.execute(insert(ProofRow), proofs)
            print(f"\rseeded {job[1] + job[2]:,} reviews", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    if url.startswith("postgresql"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started


# ---- measuring ----------------------------------------------------------------------------------------------------


def raw_rate(*, url: str, merchants: list[Merchant], sample: int = 4000, seconds: float = 2.0) -> dict[str, float]:
    """Raw ``service.proofs`` verification per second on one core, on stored proofs: EIP-712 parse + recover +
    compare, JWS parse + verify with the already resolved key (what a cache hands the verifier)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT p.format, r.proofs_json, p.signer FROM proofs p JOIN reviews r ON "
                                 "r.id = p.review_id ORDER BY p.id LIMIT :n"), {"n": sample}).all()  # fmt: skip
        jws_rows = conn.execute(text("SELECT r.proofs_json, p.signer FROM proofs p JOIN reviews r ON r.id = "
                                     "p.review_id WHERE p.format = 'jws' LIMIT :n"), {"n": sample}).all()  # fmt: skip
    engine.dispose()
    keys = {m.kid: VerificationKey(id=m.kid, controller=m.did, jwk=jwk_to_public_jwk(m.jws_key)) for m in merchants}
    eip = [(json.loads(json.loads(p)[0] if isinstance(p, str) else p[0]), s) for f, p, s in rows if f == "eip712"]
    jws = [(json.loads(json.loads(p)[0] if isinstance(p, str) else p[0]), s) for p, s in jws_rows]

    def eip712_once(item: tuple[dict[str, Any], str]) -> None:
        if recover_eip712_signer(artifact=parse_artifact(data=item[0])) != item[1]:
            raise AssertionError("wrong signer")

    def jws_once(item: tuple[dict[str, Any], str]) -> None:
        verify_jws(artifact=parse_artifact(data=item[0]), key=keys[item[1]])

    out = {}
    for name, items, fn in (("eip712", eip, eip712_once), ("jws", jws, jws_once)):
        if not items:
            continue
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for item in items[:500]:
                fn(item)
            done += min(500, len(items))
        out[name] = done / (time.perf_counter() - started)
    return out


@contextmanager
def database(kind: str, pg_url: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="omatrust-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    name = f"omatrust_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{pg_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    now = int(time.time())
    with ExitStack() as stack:
        servers = [stack.enter_context(DidWebServer(port=0)) for _ in range(args.hosts)]
        merchants = []
        documents = []
        for server in servers:
            merchant = Merchant(host=f"localhost:{server.port}", scheme="http")
            server.publish(merchant)
            merchants.append(merchant)
            documents.append(server.documents["/.well-known/did.json"])
        url = stack.enter_context(database(args.db, args.pg_url))
        seed_seconds = seed(url=url, merchants=merchants, documents=documents, eip712=args.reviews, jws=args.jws,
                            now=now)  # fmt: skip
        raw_before = raw_rate(url=url, merchants=merchants)
        insecure = frozenset(m.host for m in merchants)
        resolver = DidResolver(fetcher=SafeFetcher(timeout=5.0, insecure_hosts=insecure), insecure_hosts=insecure)
        engine = make_engine(url=url)
        progress_lines: list[str] = []
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        report: ReverifyReport = reverify(
            engine=engine,
            resolver=resolver,
            controllers=ControllerResolver(nameservers=("127.0.0.1:9",), timeout=0.5),  # never needed here
            policy=ReviewPolicy(receipt_max_age=30 * DAY, clock_skew=300),
            options=ReverifyOptions(workers=args.workers, chunk_size=args.chunk_size, dry_run=args.dry_run),
            progress=lambda p: progress_lines.append(f"{p.done}/{p.total} {p.rate:.0f}/s"),
        )
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool's processes, reaped when it closed
        worker_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
        engine.dispose()
        raw_after = raw_rate(url=url, merchants=merchants)
    raw = {k: (raw_before[k] + raw_after[k]) / 2 for k in raw_before}
    # The raw rate of the same mix of proofs (seconds per proof, weighted by how many of each were judged).
    total = args.reviews + args.jws
    raw_mix = total / (args.reviews / raw["eip712"] + args.jws / raw.get("jws", raw["eip712"]))
    judge_per_core = report.proofs / report.worker_cpu_seconds if report.worker_cpu_seconds else 0.0
    worker_per_core = report.proofs / worker_cpu if worker_cpu > 0 else 0.0
    return {
        "db": args.db,
        "cores": os.cpu_count(),
        "workers": args.workers or os.cpu_count(),
        "reviews": report.reviews,
        "eip712": args.reviews,
        "jws": args.jws,
        "hosts": args.hosts,
        "seedSeconds": round(seed_seconds, 1),
        "seconds": round(report.seconds, 2),
        "reviewsPerSecond": round(report.rate, 1),
        "judgePerCorePerSecond": round(judge_per_core, 1),
        "workerProcessPerCorePerSecond": round(worker_per_core, 1),
        "rawPerCorePerSecond": {k: round(v, 1) for k, v in raw.items()},
        "rawMixPerCorePerSecond": round(raw_mix, 1),
        "judgeOverRaw": round(raw_mix / judge_per_core, 2) if judge_per_core else None,
        "documentsFetched": report.documents_fetched,
        "changes": report.changed,
        "indeterminate": report.indeterminate,
        "transitions": {f"{b}->{a}": n for (b, a), n in report.transitions.items()},
    }


def table(r: dict[str, Any]) -> str:
    ok = r["reviewsPerSecond"] >= GOAL_REVIEWS_PER_S
    ratio = r["judgeOverRaw"]
    ratio_ok = ratio is not None and ratio <= GOAL_JUDGE_OVER_RAW
    raw = r["rawPerCorePerSecond"]
    return "\n".join([
        f"reverify bench: {r['db']}, {r['cores']} cores, {r['workers']} workers; {r['reviews']:,} reviews "
        f"({r['eip712']:,} EIP-712 + {r['jws']:,} JWS receipts) over {r['hosts']} did:web hosts "
        f"(seeded in {r['seedSeconds']} s)",
        f"{'overall (read + look up + judge + write)':44} {r['reviewsPerSecond']:10,.0f} reviews/s "
        f"in {r['seconds']} s   goal >= {GOAL_REVIEWS_PER_S:,.0f}/s  {'met' if ok else 'NOT MET'}",
        f"{'judging, per core (CPU time in judge_task)':44} {r['judgePerCorePerSecond']:10,.0f} proofs/s",
        f"{'worker processes, per core (all their CPU)':44} {r['workerProcessPerCorePerSecond']:10,.0f} proofs/s "
        f"(incl. unpickling tasks, IPC)",
        f"{'raw service.proofs verify, per core':44} {r['rawMixPerCorePerSecond']:10,.0f} proofs/s "
        f"(EIP-712 {raw.get('eip712', 0):,.0f}/s, JWS {raw.get('jws', 0):,.0f}/s)",
        f"{'raw / judging':44} {ratio if ratio is not None else float('nan'):10.2f}x"
        f"{'':22}goal <= {GOAL_JUDGE_OVER_RAW}x      {'met' if ratio_ok else 'NOT MET'}",
        f"documents fetched: {r['documentsFetched']} (one per host); outcome changes: {r['changes']}; "
        f"indeterminate: {r['indeterminate']}",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reverify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=100_000, help="EIP-712-receipt reviews to seed")
    parser.add_argument("--jws", type=int, default=10_000, help="JWS-receipt reviews to seed")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server (a fresh database is created on it)")
    parser.add_argument("--hosts", type=int, default=20, help="merchants / did:web hosts")
    parser.add_argument("--workers", type=int, default=None, help="verification processes (default: one per core)")
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--dry-run", action="store_true", help="re-verify without writing")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

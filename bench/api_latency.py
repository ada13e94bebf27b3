"""Reputation read latency through a real server: does it stay flat from 100 to 100,000 reviews of a subject?

    python -m bench.api_latency [--requests 2000] [--large 100000] [--json] [--keep DIR]

Builds a SQLite database in a temporary directory with three subjects, written in bulk straight through SQL (not
the API) and then aggregated by the audit rebuild (``recompute``), exactly what ``omatrust score --recompute``
does:

* ``small``: 100 reviews; ``large``: 100,000 reviews — both with classes and ratings mixed, 10% superseded,
  times over two years;
* ``skewed``: 100,000 reviews of which the one review in the (unauthorized, 1★) bucket is the oldest — the worst
  case for finding each bucket's latest reviews by walking the (subject, time) index.

Then it starts ``omatrust serve`` (uvicorn, embedded chain) on a free 127.0.0.1 port as a child process and, with
one keep-alive HTTP client, times GET /healthz (a trivial FastAPI endpoint) and GET
/v1/services/{did}/reputation for each subject: warm-up, then ``--requests`` requests per endpoint in interleaved
rounds (so drift hits all alike). Finally it creates the bucket index that docs/scoring.md proposes
(``ix_reviews_bucket``: subject, evidence, rating, time, id — partial on live reviews) in the running server's
database and measures the reputation endpoints again.

Goal: p99 at 100k within 2x of p99 at 100 reviews and within 2x of the trivial endpoint's p99.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import text

from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.store.tables import ReviewRow
from service.workflows.reputation import DbContext
from service.workflows.score_audit import recompute

GOAL_RATIO = 2.0
NOW = int(time.time())
DAY = 86_400
EVIDENCE = ("verified", "unauthorized", "offer-only", "none")
BUCKET_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_reviews_bucket ON reviews "
    "(subject_normalized, evidence, rating_value, review_time, id) WHERE superseded_by IS NULL"
)


def _rows(subject: str, n: int, rng: random.Random, *, skewed: bool) -> list[dict[str, Any]]:
    """n reviews of one subject: n - n//10 live, n//10 older versions superseded by a live review."""
    superseded = n // 10
    live = n - superseded
    rows: list[dict[str, Any]] = []
    tag = subject.split(":")[-1].split(".")[0]
    for i in range(live):
        if skewed:
            # Every bucket but (unauthorized, 1★); that one gets a single review, the oldest of all (below).
            evidence = rng.choice(("verified", "none", "offer-only"))
            rating = rng.randint(1, 5)
        else:
            evidence = rng.choices(EVIDENCE, weights=(6, 1, 1, 3))[0]
            rating = rng.choices((1, 2, 3, 4, 5), weights=(1, 1, 2, 4, 6))[0]
        rows.append(_row(f"{tag}-{i:07d}", subject, f"0x{rng.getrandbits(160):040x}", rating, evidence,
                         NOW - rng.randrange(730 * DAY)))  # fmt: skip
    if skewed:
        rows[0].update(evidence="unauthorized", rating_value=1, verified_purchase=False, review_time=NOW - 1000 * DAY)
    for j in range(superseded):
        newer = rows[j + 1]
        old = _row(f"{tag}-old-{j:07d}", subject, newer["attester"], rng.randint(1, 5), rng.choice(EVIDENCE),
                   newer["review_time"] - 1 - rng.randrange(30 * DAY))  # fmt: skip
        old["superseded_by"] = newer["id"]
        rows.append(old)
    return rows


def _row(rid: str, subject: str, attester: str, rating: int, evidence: str, t: int) -> dict[str, Any]:
    return {
        "id": rid, "subject": subject, "subject_normalized": subject, "did_address": "0x" + "00" * 20,
        "attester": attester, "version": "", "rating_value": rating, "review_body": "bench review",
        "screenshot_urls": [], "proofs_json": [], "data_hex": "0x", "review_time": t, "source": "chain",
        "verified_purchase": evidence == "verified", "evidence": evidence, "superseded_by": None,
        "attestation_uid": None, "created_at": t,
    }  # fmt: skip


def build_database(url: str, *, small: int, large: int) -> dict[str, str]:
    engine = make_engine(url=url)
    upgrade(engine=engine)
    rng = random.Random(402)
    subjects = {
        f"{small}": ("did:web:small.bench.example", small, False),
        f"{large}": ("did:web:large.bench.example", large, False),
        f"{large} skewed": ("did:web:skewed.bench.example", large, True),
    }
    table = ReviewRow.__table__  # type: ignore[attr-defined]
    started = time.perf_counter()
    for did, n, skewed in subjects.values():
        rows = _rows(did, n, rng, skewed=skewed)
        with engine.begin() as conn:
            for k in range(0, len(rows), 10_000):
                conn.execute(table.insert(), rows[k : k + 10_000])
    inserted = time.perf_counter() - started
    report = recompute(rt=DbContext(engine=engine), did=None)
    print(f"database: {sum(n for _, n, _ in subjects.values()):,} reviews inserted in {inserted:.1f}s, aggregates "
          f"rebuilt in {time.perf_counter() - started - inserted:.1f}s ({report.subjects} subjects)")  # fmt: skip
    engine.dispose()
    return {label: did for label, (did, _, _) in subjects.items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "OMATRUST_DATABASE_URL": url}
    log = (workdir / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli.main", "serve", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit((workdir / "serve.log").read_text())
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("omatrust serve did not start")


def measure(
    client: httpx.Client, paths: dict[str, str], *, requests: int, rounds: int = 4, fewer: frozenset[str] = frozenset()
) -> dict[str, list[float]]:
    """Per path, ``requests`` latencies (seconds; a tenth for the ``fewer`` labels: slow ones), taken in ``rounds``
    interleaved blocks after a warm-up."""
    for label, p in paths.items():
        for _ in range(10 if label in fewer else 100):
            client.get(p).raise_for_status()
    out: dict[str, list[float]] = {label: [] for label in paths}
    for _ in range(rounds):
        for label, p in paths.items():
            samples = out[label]
            for _ in range(max(1, (requests // 10 if label in fewer else requests) // rounds)):
                t0 = time.perf_counter()
                resp = client.get(p)
                samples.append(time.perf_counter() - t0)
                if resp.status_code != 200:
                    raise SystemExit(f"{p}: HTTP {resp.status_code} {resp.text[:300]}")
    return out


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        label: {
            "n": len(s),
            "p50_ms": 1000 * statistics.median(s),
            "p99_ms": 1000 * _pct(s, 0.99),
            "mean_ms": 1000 * statistics.fmean(s),
        }
        for label, s in samples.items()
    }


def _table(title: str, stats: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"  {'endpoint':<34} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for label, s in stats.items():
        print(f"  {label:<34} {s['n']:>6} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['mean_ms']:>8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per endpoint (default 2000)")
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    parser.add_argument("--keep", type=Path, help="build the database in DIR and keep it")
    args = parser.parse_args(argv)

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="omatrust-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / 'bench.db'}"
    (workdir / "bench.db").unlink(missing_ok=True)
    subjects = build_database(url, small=args.small, large=args.large)
    proc, base = start_server(url, workdir)
    results: dict[str, Any] = {"requests": args.requests}
    try:
        paths = {"GET /healthz": "/healthz"} | {
            f"reputation, {label} reviews": f"/v1/services/{quote(did, safe='')}/reputation"
            for label, did in subjects.items()
        }
        with httpx.Client(base_url=base, timeout=30) as client:
            skewed = frozenset({f"reputation, {args.large} skewed reviews"})
            shipped = summarize(measure(client, paths, requests=args.requests, fewer=skewed))
            _table("shipped schema (index on subject, time)", shipped)
            engine = make_engine(url=url)
            with engine.begin() as conn:
                conn.execute(text(BUCKET_INDEX))
                conn.execute(text("ANALYZE"))
            engine.dispose()
            indexed = summarize(measure(client, paths, requests=args.requests))
            _table("with ix_reviews_bucket (subject, evidence, rating, time, id) WHERE superseded_by IS NULL", indexed)
        results |= {"shipped": shipped, "bucket_index": indexed}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)

    small, large = f"reputation, {args.small} reviews", f"reputation, {args.large} reviews"
    print("\nratios, p99 (goal <= 2.0) and p50:")
    for name, stats in (("shipped", results["shipped"]), ("bucket index", results["bucket_index"])):
        for subject in (large, f"reputation, {args.large} skewed reviews"):
            ratios = {
                q: (stats[subject][q] / stats[small][q], stats[subject][q] / stats["GET /healthz"][q])
                for q in ("p99_ms", "p50_ms")
            }
            print(f"  {name:<13} {subject:<36} vs {args.small}: p99 {ratios['p99_ms'][0]:5.2f}x p50 "
                  f"{ratios['p50_ms'][0]:5.2f}x   vs /healthz: p99 {ratios['p99_ms'][1]:5.2f}x p50 "
                  f"{ratios['p50_ms'][1]:5.2f}x")  # fmt: skip
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``omatrust reverify --distribute N`` on worker processes against a single-process run over the same data.

    python -m bench.reverify_distribute [--reviews 200000] [--partitions 4] [--workers 2] [--no-kill]

Seeds ``--reviews`` stored reviews (90% EIP-712, 10% JWS receipts; ``bench.reverify.seed``) over ``--hosts``
merchants whose did:web documents are served on loopback, then marks some stored verdicts wrong (every 7th proof
``unauthorized``, every 11th ``invalid``) so the runs have outcome changes to record. The store is cloned
(``CREATE DATABASE … TEMPLATE``): both runs see identical rows and ids.

1. single process: ``omatrust reverify --json`` on the first copy (``--single-workers`` verification processes);
2. distributed: on the second copy, ``--workers`` ``omatrust worker --queues reverify,periodic`` processes (an anvil
   node stands in for the RPC node the workers need) and ``omatrust reverify --distribute N --json``; unless
   ``--no-kill``, one worker is SIGKILLed while it is inside a partition (after that partition committed at least
   one chunk) and a replacement worker is started — its job must be handed back and resumed.

Prints both wall times and rates, and whether the reports are equal: verdict transitions, reviews checked, and the
outcome-history rows (review, proof, before/after status and reason — compared row by row). Exit status 0 only when
they are equal and, with the kill, the killed worker's job was handed back. PostgreSQL only; the databases are
dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.reverify import PG_URL, in_child, seed
from service.cli.demo_kit import DidWebServer, Merchant

HISTORY = (
    "SELECT review_id, proof_id, before_status, after_status, before_reason, after_reason FROM outcome_history "
    "ORDER BY proof_id, id"
)
CLI = [sys.executable, "-m", "service.cli.main"]


def _admin(pg_url: str, sql: str) -> None:
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


@contextmanager
def _databases(pg_url: str) -> Iterator[tuple[str, str]]:
    names = [f"omatrust_bench_rd_{uuid.uuid4().hex[:8]}_{k}" for k in range(2)]
    base = pg_url.rsplit("/", 1)[0]
    try:
        _admin(pg_url, f'CREATE DATABASE "{names[0]}"')
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        for name in names:
            _admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMATRUST_")}
    env.update(extra)
    return env


def _history(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(HISTORY))]
    engine.dispose()
    return rows


def _scalar(url: str, sql: str) -> Any:
    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text(sql)).scalar()
    engine.dispose()
    return value


def _started_partitions(url: str) -> int:
    return int(_scalar(url, "SELECT count(*) FROM reverify_runs WHERE state = 'running' AND reviews_checked > 0"))


def _distributed(args: argparse.Namespace, url: str, insecure: str, workdir: Path) -> dict[str, Any]:
    from tests.chain.anvil_setup import booted_client
    from tests.scale.cluster import Cluster, Proc
    from tests.support.anvil import AnvilNode

    out: dict[str, Any] = {"killed": False, "handedBack": False}
    with AnvilNode.start() as node:
        booted_client(node)
        env = _env(OMATRUST_DATABASE_URL=url, OMATRUST_DID_WEB_INSECURE_HOSTS=insecure, OMATRUST_RPC_URL=node.url,
                   OMATRUST_WORKER_HEARTBEAT_SECONDS="1", OMATRUST_WORKER_STALLED_SECONDS="5",
                   OMATRUST_SYNC_INTERVAL_SECONDS="0")  # fmt: skip
        cluster = Cluster(env=env, workdir=workdir)
        cluster.upgrade()
        cli: subprocess.Popen[bytes] | None = None
        try:
            for _ in range(args.workers):
                cluster.start_worker("--queues", "reverify,periodic")
            started = time.monotonic()
            with open(workdir / "distribute.log", "wb") as log:
                cli = subprocess.Popen([*CLI, "reverify", "--distribute", str(args.partitions), "--chunk-size",
                                        str(args.chunk_size), "--json", str(workdir / "distributed.json")],
                                       env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            if not args.no_kill:
                victim: Proc | None = None
                while cli.poll() is None and victim is None:
                    if _started_partitions(url) > 0:
                        victim = cluster.running("reverify")
                    if victim is None:
                        time.sleep(0.05)
                if victim is not None:
                    done = int(_scalar(url, "SELECT coalesce(sum(reviews_checked), 0) FROM reverify_runs"))
                    victim.popen.send_signal(signal.SIGKILL)
                    victim.popen.wait(10)
                    out.update(killed=True, killedAfterReviews=done,
                               killedAtSeconds=round(time.monotonic() - started, 1))  # fmt: skip
                    print(f"killed worker {victim.name} (pid {victim.popen.pid}) after {done:,} committed reviews",
                          file=sys.stderr)  # fmt: skip
                    cluster.start_worker("--queues", "reverify,periodic")
            code = cli.wait(args.timeout)
            out["seconds"] = time.monotonic() - started
            out["exitCode"] = code
            out["handedBack"] = any("of a stalled worker handed back" in p.text() for p in cluster.workers)
            if code != 0:
                print((workdir / "distribute.log").read_text()[-3000:], file=sys.stderr)
                cluster.print_logs()
        finally:
            if cli is not None and cli.poll() is None:
                cli.kill()
                cli.wait(10)
            cluster.stop()
    report_path = workdir / "distributed.json"
    out["report"] = json.loads(report_path.read_text()) if report_path.exists() else None
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-reverify-distribute-"))
    with ExitStack() as stack:
        servers = [stack.enter_context(DidWebServer(port=0)) for _ in range(args.hosts)]
        merchants = []
        for server in servers:
            merchant = Merchant(host=f"localhost:{server.port}", scheme="http")
            server.publish(merchant)
            merchants.append(merchant)
        documents = [s.documents["/.well-known/did.json"] for s in servers]
        insecure = ",".join(m.host for m in merchants)
        single_url, distributed_url = stack.enter_context(_databases(args.pg_url))
        jws = args.reviews // 10
        seed_seconds, seed_memory = in_child(lambda: seed(url=single_url, merchants=merchants, documents=documents,
                                                          eip712=args.reviews - jws, jws=jws, now=int(time.time())))
        engine = create_engine(single_url)
        with engine.begin() as conn:  # stored verdicts that re-verification will change (history rows)
            conn.execute(text("UPDATE proofs SET status = 'unauthorized', tier = NULL WHERE id % 7 = 0"))
            conn.execute(text("UPDATE proofs SET status = 'invalid', reason = 'signature-invalid' WHERE id % 11 = 0"))
        engine.dispose()
        name = single_url.rsplit("/", 1)[1]
        _admin(args.pg_url, f'CREATE DATABASE "{distributed_url.rsplit("/", 1)[1]}" TEMPLATE "{name}"')

        started = time.monotonic()
        single_cmd = [*CLI, "reverify", "--chunk-size", str(args.chunk_size), "--json", str(workdir / "single.json")]
        if args.single_workers is not None:
            single_cmd += ["--workers", str(args.single_workers)]
        single = subprocess.run(single_cmd, env=_env(OMATRUST_DATABASE_URL=single_url,
                                                     OMATRUST_DID_WEB_INSECURE_HOSTS=insecure),
                                capture_output=True, text=True, timeout=args.timeout)  # fmt: skip
        single_seconds = time.monotonic() - started
        if single.returncode != 0:
            raise RuntimeError(f"single-process run exited {single.returncode}: {single.stderr[-3000:]}")
        single_report = json.loads((workdir / "single.json").read_text())

        distributed = _distributed(args, distributed_url, insecure, workdir)
        single_history, distributed_history = _history(single_url), _history(distributed_url)
    report = distributed["report"] or {}
    equal = {
        "transitions": report.get("transitions") == single_report["transitions"],
        "reviewsChecked": report.get("reviewsChecked") == single_report["reviewsChecked"] == args.reviews,
        "historyRows": report.get("historyRows") == len(distributed_history) == len(single_history) > 0,
        "historyRowsIdentical": distributed_history == single_history,
    }
    return {
        "reviews": args.reviews,
        "partitions": args.partitions,
        "workers": args.workers,
        "seedSeconds": round(seed_seconds, 1),
        "seedTreePeakMB": seed_memory["treePeakMB"],
        "single": {"seconds": round(single_seconds, 1), "reviewsPerSecond": round(args.reviews / single_seconds, 1),
                   "historyRows": len(single_history), "transitions": single_report["transitions"]},
        "distributed": {"seconds": round(distributed.get("seconds", 0.0), 1),
                        "reviewsPerSecond": round(args.reviews / distributed["seconds"], 1)
                        if distributed.get("seconds") else None,
                        "exitCode": distributed.get("exitCode"), "historyRows": len(distributed_history),
                        "runs": len(report.get("runs", [])), "transitions": report.get("transitions"),
                        "killed": distributed["killed"], "killedAfterReviews": distributed.get("killedAfterReviews"),
                        "handedBack": distributed["handedBack"]},
        "equal": equal,
        "ok": all(equal.values()) and distributed.get("exitCode") == 0
        and (args.no_kill or (distributed["killed"] and distributed["handedBack"])),
        "workdir": str(workdir),
    }  # fmt: skip


def table(r: dict[str, Any]) -> str:
    s, d = r["single"], r["distributed"]
    kill = (
        f"one worker SIGKILLed after {d['killedAfterReviews']:,} committed reviews; job handed back: "
        f"{'yes' if d['handedBack'] else 'NO'}"
        if d["killed"]
        else "no worker killed"
    )
    lines = [
        f"reverify --distribute {r['partitions']} on {r['workers']} workers vs one process: {r['reviews']:,} stored "
        f"reviews (seeded in {r['seedSeconds']} s, seeding peak {r['seedTreePeakMB']:,.0f} MB)",
        f"{'single process':22} {s['seconds']:8.1f} s  {s['reviewsPerSecond']:8,.0f} reviews/s  "
        f"{s['historyRows']:,} history rows",
        f"{'distributed':22} {d['seconds']:8.1f} s  {d['reviewsPerSecond'] or 0:8,.0f} reviews/s  "
        f"{d['historyRows']:,} history rows in {d['runs']} runs (exit {d['exitCode']})",
        kill,
        "equal: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["equal"].items()),
        f"{'SAME REPORT' if r['ok'] else 'DIFFERENT or FAILED'}",
    ]
    for t in s["transitions"]:
        lines.append(f"  {t['before']:>13} -> {t['after']:<13} {t['proofs']:>9,}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reverify_distribute", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4, help="--distribute N")
    parser.add_argument("--workers", type=int, default=2, help="omatrust worker processes (concurrency 2 each)")
    parser.add_argument("--single-workers", type=int, default=None,
                        help="--workers of the single-process run (default: one per core)")  # fmt: skip
    parser.add_argument("--hosts", type=int, default=8, help="merchants / did:web hosts (subjects)")
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--no-kill", action="store_true", help="do not kill a worker mid-run")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds allowed per run")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server (fresh databases are created on it)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

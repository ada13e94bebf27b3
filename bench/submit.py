"""Submission throughput through real API processes: accepted reviews/s, p50/p99, server CPU per review.

    python -m bench.submit [--reviews 1:100,8:300,32:400] [--procs 1,2] [--healthz-seconds 3] [--embedded N]
                           [--memory N] [--workers 0|N] [--json] [--pg-url URL]

For each API-process count (``--procs``) a fresh PostgreSQL database and a fresh anvil node (EAS placed, schema
registered) are made; ``omatrust serve`` processes start on free 127.0.0.1 ports (the relayer key is anvil's dev key
0). With ``--workers N`` (N > 0) the API processes run without a publisher (``OMATRUST_PUBLISHER_ENABLED=false``) and N
``omatrust worker`` processes publish. Reviews are **pre-signed** before the clock starts: each one by a fresh
reviewer (EAS nonce 0) about one of four merchants (``did:web:localhost%3A<port>``, did.json served by this
process), with one EIP-712 receipt. Then for each concurrency level (``--reviews C:N``) N reviews are posted by C
concurrent keep-alive clients spread round-robin over the API processes; every answer must be 201.

Printed per run: accepted/s, p50/p99 latency, server CPU per accepted review (user+system time of the API
processes, read from /proc, over the timed window), how busy the whole machine was in that window (all cores),
how long publishing took until every outbox row was confirmed, the relayer's transactions and the Attested events
on chain (one per accepted review when nothing was lost or duplicated). Measured in the same run as baselines:

* GET /healthz at concurrency 8 on one API process (the framework's ceiling on this machine);
* the raw in-process check cost of one review (decode + canonical re-encode + schema rules + delegated-signature
  recovery + receipt verification/binding with a warm did:web cache), single thread.

Goals (issue 15): CPU per accepted review <= 5x the raw check cost; accepted/s >= 0.15x /healthz; 2 processes
>= 1.5x one. ``--embedded N``: N reviews at concurrency 8 on the embedded chain (publishing is py-evm's speed);
``--memory N``: N submissions + N reads (reputation, review lists) against one API process after warm-up, RSS
sampled (flat = within 10%).
The default run takes about 2-3 minutes; the issue's full sizes are
``--reviews 1:300,8:2000,32:2000 --embedded 2000 --memory 10000``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coincurve
import httpx
from eth_utils.crypto import keccak
from sqlalchemy import create_engine, text

from service.chain.codec import encode_review
from service.chain.delegation import EasDomain, attest_digest
from service.cli.demo_kit import DidWebServer, Merchant
from service.dids import did_address
from service.domain import USER_REVIEW_SCHEMA_UID, Review

ROOT = Path(__file__).resolve().parents[1]
ANVIL_BIN = ROOT / "tests/interop/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
ANVIL_DEV_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_DEV_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------------- helpers
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process and its waited-for children (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / TICK


def host_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (from /proc/stat)."""
    # user nice system idle iowait irq softirq steal (guest time is already counted in user/nice)
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / TICK, sum(fields) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_until(predicate: Any, *, timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


@contextmanager
def pg_database(admin_url: str) -> Iterator[str]:
    name = f"omatrust_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def anvil() -> Iterator[str]:
    if not ANVIL_BIN.exists():
        raise SystemExit(f"anvil not installed at {ANVIL_BIN} (npm ci in tests/interop)")
    work = Path(tempfile.mkdtemp(prefix="bench-anvil-"))
    # --prune-history keeps anvil's memory bounded; with 256 states kept (not 0) an eth_call on "latest" that races
    # the next block still finds its state (with none kept anvil answered "BlockOutOfRangeError" → a 503).
    port = free_port()
    proc = subprocess.Popen(
        [str(ANVIL_BIN), "--host", "127.0.0.1", "--port", str(port), "--prune-history", "256", "--cache-path",
         str(work / "cache"), "--silent"],
        env={**os.environ, "HOME": str(work)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _rpc_ok(url), timeout=15, what="anvil")
        from eth_account import Account

        from service.chain.deploy import bootstrap
        from service.chain.embedded import EAS_ADDRESS, SCHEMA_REGISTRY_ADDRESS
        from service.chain.rpc import connect

        bootstrap(w3=connect(rpc_url=url), eas_address=EAS_ADDRESS, registry_address=SCHEMA_REGISTRY_ADDRESS,
                  payer=Account.from_key(ANVIL_DEV_KEY_0))  # fmt: skip
        yield url
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def _rpc_ok(url: str) -> bool:
    try:
        return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).is_success
    except httpx.HTTPError:
        return False


@dataclass
class Procs:
    api: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    logdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-submit-")))

    def stop(self) -> None:
        for p in [*self.api, *self.workers]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [*self.api, *self.workers]:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def start_services(*, env: dict[str, str], procs: int, workers: int) -> Procs:
    out = Procs()
    # Our own node: more JSON-RPC calls in flight to it than the default per-host cap meant for foreign hosts (4).
    base = {**os.environ, "OMATRUST_LOOKUP_MAX_PER_HOST": "64", **env}
    if workers:
        base["OMATRUST_PUBLISHER_ENABLED"] = "false"
    # migrate once before several processes start
    subprocess.run([sys.executable, "-m", "service.cli.main", "db", "upgrade"], env=base, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    for i in range(procs):
        port = free_port()
        log = open(out.logdir / f"api{i}.log", "wb")  # noqa: SIM115 - lives as long as the process
        out.api.append(subprocess.Popen(
            [sys.executable, "-m", "service.cli.main", "serve", "--port", str(port), "--log-level", "warning"],
            env=base, stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        out.urls.append(f"http://127.0.0.1:{port}")
    for i in range(workers):
        log = open(out.logdir / f"worker{i}.log", "wb")  # noqa: SIM115
        out.workers.append(subprocess.Popen(
            [sys.executable, "-m", "service.cli.main", "worker"], env=base, stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
    for url, p in zip(out.urls, out.api, strict=True):
        wait_until(lambda u=url, pr=p: _ready(u, pr), timeout=90, what=f"{url}/healthz", every=0.2)
    return out


def _ready(url: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"API process exited with {proc.returncode}")
    try:
        return httpx.get(url + "/healthz").is_success
    except httpx.HTTPError:
        return False


# ---------------------------------------------------------------------------------------------------- reviews
@dataclass(frozen=True)
class Signed:
    body: dict[str, Any]
    review: Review
    attester: str


def presign(*, n: int, merchants: list[Merchant], domain: EasDomain, now: int) -> list[Signed]:
    """n reviews, each by a fresh reviewer (EAS nonce 0) with one EIP-712 receipt from one of the merchants."""
    out = []
    for i in range(n):
        key = coincurve.PrivateKey(secrets.token_bytes(32))
        address = "0x" + keccak(key.public_key.format(compressed=False)[1:])[-20:].hex()
        from eth_utils.address import to_checksum_address

        attester = to_checksum_address(address)
        m = merchants[i % len(merchants)]
        proof = json.dumps(m.receipt(payer=attester, issued_at=now - 60), separators=(",", ":"))
        review = Review(subject=m.did, version="", rating_value=1 + i % 5, review_body=f"bench review {i}",
                        screenshot_urls=(), proofs=(proof,))  # fmt: skip
        data = encode_review(review=review)
        deadline = now + 3600
        digest = attest_digest(domain=domain, attester=attester, recipient=did_address(m.did), data=data, nonce=0,
                               deadline=deadline, schema_uid=USER_REVIEW_SCHEMA_UID)  # fmt: skip
        sig = key.sign_recoverable(digest, hasher=None)
        signature = "0x" + (sig[:64] + bytes([sig[64] + 27])).hex()
        body = {"attester": attester, "data": "0x" + data.hex(), "deadline": deadline, "nonce": 0,
                "signature": signature}  # fmt: skip
        out.append(Signed(body=body, review=review, attester=attester))
    return out


def domain_of(url: str) -> EasDomain:
    d = httpx.get(url + "/v1/attestation-config").json()["domain"]
    return EasDomain(name=d["name"], version=d["version"], chain_id=int(d["chainId"]),
                     verifying_contract=d["verifyingContract"])  # fmt: skip


# ---------------------------------------------------------------------------------------------------- load
async def post_all(
    urls: list[str], bodies: list[dict[str, Any]], concurrency: int, retries_503: int = 0
) -> tuple[list[float], dict[int, int]]:
    """POST every body to /v1/reviews with ``concurrency`` keep-alive clients (round-robin over ``urls``). Returns
    the latencies and the count of each final status. ``retries_503``: resend a body answered 503 (a check could
    not run) up to that many times — what a client is told to do; the signed request is idempotent."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
    for i, b in enumerate(bodies):
        queue.put_nowait((i, b))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def worker(k: int) -> None:
            url = urls[k % len(urls)]
            while not queue.empty():
                _, body = queue.get_nowait()
                t0 = time.perf_counter()
                try:
                    r = await client.post(url + "/v1/reviews", json=body)
                    for _ in range(retries_503):
                        if r.status_code != 503:
                            break
                        await asyncio.sleep(0.2)
                        r = await client.post(url + "/v1/reviews", json=body)
                except httpx.HTTPError as exc:  # a dropped connection counts as a failure, not a crash
                    statuses[0] = statuses.get(0, 0) + 1
                    if statuses[0] <= 3:
                        print(f"    transport error: {exc!r}", file=sys.stderr)
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code != 201 and statuses[r.status_code] <= 3:
                    print(f"    {r.status_code}: {r.text[:300]}", file=sys.stderr)

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return latencies, statuses


async def _get_for(url: str, path: str, seconds: float, concurrency: int) -> int:
    done = 0
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=30) as client:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                r = await client.get(url + path)
                r.raise_for_status()
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# ---------------------------------------------------------------------------------------------------- measures
def raw_check_cost(*, merchants: list[Merchant], domain: EasDomain, insecure: str, n: int = 300) -> float:
    """Seconds per review for the in-process checks of a review, single thread, warm did:web cache."""
    from service.chain.codec import decode_review
    from service.chain.delegation import DelegatedRequest
    from service.config import Settings
    from service.verdicts import validate_review
    from service.wiring import build_identity
    from service.workflows.evaluate import ReviewPolicy, evaluate_review

    resolver, controllers = build_identity(Settings(did_web_insecure_hosts=insecure))
    now = int(time.time())
    items = presign(n=n, merchants=merchants, domain=domain, now=now)

    def check(s: Signed) -> None:
        data = bytes.fromhex(s.body["data"][2:])
        review = decode_review(data=data)
        assert encode_review(review=review) == data
        validate_review(review=review)
        req = DelegatedRequest(attester=s.attester, recipient=did_address(review.subject), data=data,
                               deadline=s.body["deadline"], nonce=0, signature=s.body["signature"])  # fmt: skip
        assert req.signer(domain=domain) == req.attester
        verdict = evaluate_review(review=review, attester=s.attester.lower(), review_time=now, now=now,
                                  resolver=resolver, controllers=controllers, policy=ReviewPolicy())  # fmt: skip
        assert verdict.verified_purchase, verdict

    for s in items[:20]:  # warm the did:web cache and imports
        check(s)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for s in items:
            check(s)
        best = min(best, (time.perf_counter() - t0) / len(items))
    return best


def chain_counts(*, rpc_url: str, relayer: str) -> dict[str, int]:
    from service.chain.calls import ATTESTED_TOPIC
    from service.chain.embedded import EAS_ADDRESS
    from service.chain.rpc import connect

    w3 = connect(rpc_url=rpc_url)
    logs = w3.eth.get_logs({"address": EAS_ADDRESS, "fromBlock": 0, "toBlock": "latest",
                            "topics": ["0x" + ATTESTED_TOPIC.hex()]})  # fmt: skip
    uids = [bytes(x["data"])[:32] for x in logs]
    txs = {bytes(x["transactionHash"]) for x in logs}
    head = w3.eth.block_number
    sent = w3.eth.get_transaction_count(relayer)  # type: ignore[arg-type]
    return {"attested": len(uids), "distinct_uids": len(set(uids)), "tx_with_attests": len(txs),
            "relayer_txs": sent, "wasted_txs": sent - 1 - len(txs), "head": head}  # fmt: skip


def outbox_state(db_url: str) -> dict[str, int]:
    eng = create_engine(db_url)
    try:
        with eng.connect() as conn:
            return {s: int(c) for s, c in conn.execute(text("SELECT state, count(*) FROM outbox GROUP BY state"))}
    finally:
        eng.dispose()


def run_config(*, procs: int, levels: list[tuple[int, int]], args: argparse.Namespace, merchants: list[Merchant],
               insecure: str, healthz: bool) -> dict[str, Any]:  # fmt: skip
    result: dict[str, Any] = {"procs": procs, "workers": args.workers, "levels": []}
    with pg_database(args.pg_url) as db_url, anvil() as rpc_url:
        env = {"OMATRUST_DATABASE_URL": db_url, "OMATRUST_RPC_URL": rpc_url, "OMATRUST_RELAYER_KEY": ANVIL_DEV_KEY_0,
               "OMATRUST_DID_WEB_INSECURE_HOSTS": insecure, "OMATRUST_RATE_LIMIT_PER_MINUTE": "100000"}  # fmt: skip
        services = start_services(env=env, procs=procs, workers=args.workers)
        try:
            domain = domain_of(services.urls[0])
            now = int(time.time())
            warm = presign(n=8 * len(merchants), merchants=merchants, domain=domain, now=now)
            asyncio.run(post_all(services.urls, [s.body for s in warm], 4))
            result["domain"] = domain.as_json()
            if healthz:
                n = asyncio.run(_get_for(services.urls[0], "/healthz", args.healthz_seconds, 8))
                result["healthz_per_s"] = n / args.healthz_seconds
            total = len(warm)
            for concurrency, count in levels:
                batch = presign(n=count, merchants=merchants, domain=domain, now=int(time.time()))
                cpu0 = sum(cpu_seconds(p.pid) for p in services.api)
                wcpu0 = sum(cpu_seconds(p.pid) for p in services.workers)
                busy0, all0 = host_cpu()
                t0 = time.perf_counter()
                lat, statuses = asyncio.run(post_all(services.urls, [s.body for s in batch], concurrency))
                wall = time.perf_counter() - t0
                cpu = sum(cpu_seconds(p.pid) for p in services.api) - cpu0
                worker_cpu = sum(cpu_seconds(p.pid) for p in services.workers) - wcpu0
                busy1, all1 = host_cpu()
                accepted = statuses.get(201, 0)
                total += count
                row = {"concurrency": concurrency, "n": count, "accepted": accepted, "statuses": statuses,
                       "per_s": accepted / wall, "p50_ms": pct(lat, 0.5) * 1000, "p99_ms": pct(lat, 0.99) * 1000,
                       "cpu_ms_per_review": 1000 * cpu / max(accepted, 1),
                       "worker_cpu_ms_per_review": 1000 * worker_cpu / max(accepted, 1),
                       "host_busy": (busy1 - busy0) / max(all1 - all0, 1e-9)}  # fmt: skip
                result["levels"].append(row)
                print(f"  procs={procs} c={concurrency:>2} n={count}: {row['per_s']:7.1f}/s  p50 {row['p50_ms']:6.1f}"
                      f" ms  p99 {row['p99_ms']:7.1f} ms  cpu {row['cpu_ms_per_review']:6.1f} ms/review (workers "
                      f"{row['worker_cpu_ms_per_review']:.1f} ms, during the window); machine "
                      f"{100 * row['host_busy']:.0f}% busy  {statuses}",
                      flush=True)  # fmt: skip
            t0 = time.perf_counter()
            try:
                wait_until(lambda: outbox_state(db_url).get("pending", 0) + outbox_state(db_url).get("submitted", 0)
                           == 0, timeout=args.publish_timeout, what="publishing", every=0.5)  # fmt: skip
            except TimeoutError:
                result["publish_timeout"] = True
            result["publish_wait_s"] = time.perf_counter() - t0
            result["outbox"] = outbox_state(db_url)
            from eth_account import Account

            result["chain"] = chain_counts(rpc_url=rpc_url, relayer=Account.from_key(ANVIL_DEV_KEY_0).address)
            result["api_rss_mb"] = [round(rss_mb(p.pid), 1) for p in services.api]
            print(f"  procs={procs}: publishing finished {result['publish_wait_s']:.1f}s after the last submit;"
                  f" outbox {result['outbox']}; chain {result['chain']}", flush=True)  # fmt: skip
        finally:
            services.stop()
    return result


def run_embedded(*, n: int, args: argparse.Namespace, merchants: list[Merchant], insecure: str) -> dict[str, Any]:
    with pg_database(args.pg_url) as db_url:
        env = {"OMATRUST_DATABASE_URL": db_url, "OMATRUST_RPC_URL": "", "OMATRUST_DID_WEB_INSECURE_HOSTS": insecure,
               "OMATRUST_RATE_LIMIT_PER_MINUTE": "100000"}  # fmt: skip
        services = start_services(env=env, procs=1, workers=0)
        try:
            domain = domain_of(services.urls[0])
            batch = presign(n=n, merchants=merchants, domain=domain, now=int(time.time()))
            rss0 = rss_mb(services.api[0].pid)
            cpu0 = cpu_seconds(services.api[0].pid)
            t0 = time.perf_counter()
            lat, statuses = asyncio.run(post_all(services.urls, [s.body for s in batch], 8))
            wall = time.perf_counter() - t0
            accepted = statuses.get(201, 0)
            wait_until(lambda: outbox_state(db_url).get("pending", 0) + outbox_state(db_url).get("submitted", 0) == 0,
                       timeout=args.publish_timeout, what="embedded publishing", every=0.5)  # fmt: skip
            total = time.perf_counter() - t0
            cpu = cpu_seconds(services.api[0].pid) - cpu0
            row = {"n": n, "accepted": accepted, "statuses": statuses, "per_s": accepted / wall,
                   "p50_ms": pct(lat, 0.5) * 1000, "p99_ms": pct(lat, 0.99) * 1000,
                   "published_per_s": accepted / total, "cpu_ms_per_review": 1000 * cpu / max(accepted, 1),
                   "outbox": outbox_state(db_url), "rss_mb_before": round(rss0, 1),
                   "rss_mb_after": round(rss_mb(services.api[0].pid), 1)}  # fmt: skip
            print(f"  embedded c=8 n={n}: accepted {row['per_s']:.1f}/s, p50 {row['p50_ms']:.1f} ms, p99 "
                  f"{row['p99_ms']:.1f} ms; published (submit→all confirmed) {row['published_per_s']:.1f}/s; cpu "
                  f"{row['cpu_ms_per_review']:.1f} ms/review incl. py-evm; outbox {row['outbox']}; RSS "
                  f"{row['rss_mb_before']:.0f} → {row['rss_mb_after']:.0f} MB", flush=True)
            return row
        finally:
            services.stop()


def run_memory(*, n: int, args: argparse.Namespace, merchants: list[Merchant], insecure: str) -> dict[str, Any]:
    """n submissions then n reads (GET reputation / GET the service's reviews) on one API process (anvil), RSS
    sampled after warm-up and after each quarter."""
    with pg_database(args.pg_url) as db_url, anvil() as rpc_url:
        env = {"OMATRUST_DATABASE_URL": db_url, "OMATRUST_RPC_URL": rpc_url, "OMATRUST_RELAYER_KEY": ANVIL_DEV_KEY_0,
               "OMATRUST_DID_WEB_INSECURE_HOSTS": insecure, "OMATRUST_RATE_LIMIT_PER_MINUTE": "100000"}  # fmt: skip
        services = start_services(env=env, procs=1, workers=args.workers)
        try:
            url, pid = services.urls[0], services.api[0].pid
            domain = domain_of(url)
            warm = presign(n=max(200, n // 10), merchants=merchants, domain=domain, now=int(time.time()))
            asyncio.run(post_all([url], [s.body for s in warm], 8))
            samples = [("warm", rss_mb(pid))]
            print(f"    RSS {samples[0][1]:.0f} MB warm ({len(warm)} submissions)", flush=True)
            step = max(1, n // 4)
            for k in range(0, n, step):
                batch = presign(n=min(step, n - k), merchants=merchants, domain=domain, now=int(time.time()))
                asyncio.run(post_all([url], [s.body for s in batch], 8))
                samples.append((f"+{k + len(batch)} submits", rss_mb(pid)))
                print(f"    RSS {samples[-1][1]:.0f} MB after {samples[-1][0]}", flush=True)
            did = merchants[0].did.replace("%", "%25").replace(":", "%3A")
            for k in range(0, n, step):  # half reputation reads, half review-list reads (20 reviews with proofs)
                part = min(step, n - k)
                asyncio.run(_get_count(url, f"/v1/services/{did}/reputation", part - part // 2, 8))
                asyncio.run(_get_count(url, f"/v1/services/{did}/reviews", part // 2, 8))
                samples.append((f"+{k + part} reads", rss_mb(pid)))
                print(f"    RSS {samples[-1][1]:.0f} MB after {samples[-1][0]}", flush=True)
            warm_rss = samples[0][1]
            peak = max(s for _, s in samples)
            print("  memory (RSS MB): " + ", ".join(f"{w} {v:.0f}" for w, v in samples)
                  + f"; max/warm {peak / warm_rss:.2f}", flush=True)  # fmt: skip
            return {"samples": samples, "max_over_warm": peak / warm_rss}
        finally:
            services.stop()


async def _get_count(url: str, path: str, n: int, concurrency: int) -> None:
    left = n
    async with httpx.AsyncClient(timeout=30) as client:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                (await client.get(url + path)).raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.submit", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--reviews", default="1:100,8:300,32:400", help="concurrency:count list (default %(default)s)")
    ap.add_argument("--procs", default="1,2", help="API process counts (default %(default)s)")
    ap.add_argument("--workers", type=int, default=0, help="omatrust worker processes (0: in-process publisher)")
    ap.add_argument("--healthz-seconds", type=float, default=3.0)
    ap.add_argument("--embedded", type=int, default=200, help="reviews on the embedded chain (0: skip)")
    ap.add_argument("--memory", type=int, default=0, help="submissions and reads for the RSS check (0: skip)")
    ap.add_argument("--publish-timeout", type=float, default=120.0)
    ap.add_argument("--pg-url", default=os.environ.get("OMATRUST_TEST_PG_URL", PG_URL))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    levels = [(int(c), int(n)) for c, n in (x.split(":") for x in args.reviews.split(","))]
    proc_counts = [int(x) for x in args.procs.split(",")]

    servers = [DidWebServer(port=0) for _ in range(4)]
    for s in servers:
        s.thread.start()
    merchants = [Merchant(host=f"localhost:{s.port}", scheme="http") for s in servers]
    for s, m in zip(servers, merchants, strict=True):
        s.publish(m)
    insecure = ",".join(m.host for m in merchants)
    report: dict[str, Any] = {"runs": []}
    started = time.perf_counter()
    try:
        for i, procs in enumerate(proc_counts):
            report["runs"].append(run_config(procs=procs, levels=levels, args=args, merchants=merchants,
                                             insecure=insecure, healthz=i == 0))  # fmt: skip
        domain = EasDomain(**{"name": "EAS", "version": "1.4.0", "chain_id": 31337,
                              "verifying_contract": "0x4200000000000000000000000000000000000021"})  # fmt: skip
        d = report["runs"][0]["domain"]
        domain = EasDomain(name=d["name"], version=d["version"], chain_id=d["chainId"],
                           verifying_contract=d["verifyingContract"])  # fmt: skip
        report["raw_check_ms"] = 1000 * raw_check_cost(merchants=merchants, domain=domain, insecure=insecure)
        if args.embedded:
            report["embedded"] = run_embedded(n=args.embedded, args=args, merchants=merchants, insecure=insecure)
        if args.memory:
            report["memory"] = run_memory(n=args.memory, args=args, merchants=merchants, insecure=insecure)
    finally:
        for s in servers:
            s.httpd.shutdown()
            s.httpd.server_close()
    summarize(report)
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    return 0


def summarize(report: dict[str, Any]) -> None:
    raw = report["raw_check_ms"]
    healthz = report["runs"][0].get("healthz_per_s", float("nan"))
    print(f"\nraw in-process check: {raw:.3f} ms/review; GET /healthz (1 process, c=8): {healthz:.0f}/s")
    print(f"{'procs':>5} {'c':>3} {'accepted/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms':>7} {'cpu/raw':>8} "
          f"{'rate/healthz':>12} {'+workers ms':>11} {'machine busy':>12}")  # fmt: skip
    by: dict[tuple[int, int], float] = {}
    for run in report["runs"]:
        for lv in run["levels"]:
            by[(run["procs"], lv["concurrency"])] = lv["per_s"]
            print(f"{run['procs']:>5} {lv['concurrency']:>3} {lv['per_s']:>10.1f} {lv['p50_ms']:>8.1f} "
                  f"{lv['p99_ms']:>8.1f} {lv['cpu_ms_per_review']:>7.1f} {lv['cpu_ms_per_review'] / raw:>7.1f}x "
                  f"{lv['per_s'] / healthz:>11.3f}x {lv.get('worker_cpu_ms_per_review', 0.0):>11.1f} "
                  f"{100 * lv.get('host_busy', float('nan')):>11.0f}%")  # fmt: skip
    for (p, c), rate in sorted(by.items()):
        if p == 2 and (1, c) in by:
            print(f"2 processes / 1 at c={c}: {rate / by[(1, c)]:.2f}x")
    print("goals: cpu/raw <= 5x, rate/healthz >= 0.15x, 2 procs >= 1.5x one (cpu: API processes; +workers: the "
          "workers' CPU in the same window, publishing; machine busy: every core of the host in the window — the "
          "bench client, PostgreSQL, anvil and anything else running included; near 100% one more API process "
          "has no core to run on)")


if __name__ == "__main__":
    raise SystemExit(main())

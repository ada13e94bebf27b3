"""200 submissions whose 8 proofs each point at a host that accepts connections and stalls: liveness and reads stay
fast (bulkhead), every submission ends with a 503 + ``Retry-After`` (never a 500, never unbounded), and look-ups
to the stalling host never exceed the per-host cap.

The p99 of ``/healthz`` is measured here because the requirement is about it; the sample is bounded (probes only
while the submissions are in flight, at most ``MAX_PROBES``) and nothing sleeps to synchronize: probing starts when
the stalling host has accepted its first connection and stops when every submission has been answered. The flood
comes from a separate process so the client's own work does not show up in the measured latencies.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from service.cli.demo_kit import Merchant, Reviewer
from tests.hostile.conftest import MisbehavingHost, start_serve
from tests.hostile.payloads import signed_submission
from tests.support.dns_server import LoopbackDns

SUBMISSIONS = 200
PROOFS = 8
FETCH_DEADLINE = 3.0
PER_HOST = 4
MAX_PROBES = 2000
RETRYABLE = {"fetch-timeout", "lookup-saturated", "overloaded"}


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def test_stalled_submissions_leave_health_and_reads_fast(tmp_path: Path, loopback_dns: LoopbackDns) -> None:
    with MisbehavingHost(mode="stall") as stall:
        serve = start_serve(tmp_path, database_url=f"sqlite:///{tmp_path / 'stall.db'}", env={
            "OMATRUST_DID_WEB_INSECURE_HOSTS": stall.host, "OMATRUST_FETCH_TIMEOUT_SECONDS": str(FETCH_DEADLINE),
            "OMATRUST_DNS_NAMESERVERS": loopback_dns.nameserver, "OMATRUST_DNS_TIMEOUT_SECONDS": "1",
            "OMATRUST_LOOKUP_MAX_PER_HOST": str(PER_HOST), "OMATRUST_RECEIPT_MAX_AGE_SECONDS": "86400",
        })  # fmt: skip
        try:
            merchant = Merchant(host=stall.host, scheme="http")
            now = int(time.time())
            bodies: list[dict[str, Any]] = []
            with httpx.Client(base_url=serve.url, timeout=30) as client:
                for i in range(SUBMISSIONS):
                    reviewer = Reviewer()
                    proofs = [merchant.receipt(payer=reviewer.address, issued_at=now - 60 - i, path=f"/r{p}")
                              for p in range(PROOFS)]  # fmt: skip
                    bodies.append(signed_submission(client, reviewer, subject=merchant.did, proofs=proofs))
            results, probes, reads = _flood(serve.url, bodies, stall, merchant.did, tmp_path)
        finally:
            serve.stop()

    statuses = [status for status, _, _ in results]
    assert len(results) == SUBMISSIONS
    print("submissions:", dict(Counter((s, c) for s, c, _ in results)))
    assert set(statuses) == {503}, sorted({(s, c) for s, c, _ in results if s != 503})[:5]
    codes = {code for _, code, _ in results}
    assert codes <= RETRYABLE, codes
    assert all(retry_after for _, _, retry_after in results)
    assert stall.max_concurrent <= PER_HOST  # the per-host cap held at the TCP level
    assert len(probes) >= 20, f"only {len(probes)} probes while submissions were in flight"
    p99 = _p99(probes)
    print(f"probes over 50 ms: {sum(t > 0.050 for t in probes)} of {len(probes)}")
    print(f"/healthz: {len(probes)} probes during the flood, p50 {statistics.median(probes) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms; reputation reads p99 {_p99(reads) * 1000:.1f} ms")  # fmt: skip
    assert p99 < 0.050
    assert _p99(reads) < 1.0


def _flood(
    base: str, bodies: list[dict[str, Any]], stall: MisbehavingHost, did: str, work: Path
) -> tuple[list[tuple[int, str, str]], list[float], list[float]]:
    """Send every submission at once from another process (``tests.hostile.flood``) and probe ``/healthz`` and a
    reputation read from this one while they are in flight."""
    bodies_path, results_path = work / "bodies.json", work / "results.json"
    bodies_path.write_text(json.dumps(bodies))
    flood = subprocess.Popen([sys.executable, "-m", "tests.hostile.flood", base, str(bodies_path), str(results_path)],
                             cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    try:
        assert stall.connected.wait(60), "no submission reached the stalling host"
        probes: list[float] = []
        reads: list[float] = []
        reputation = f"/v1/services/{quote(did, safe='')}/reputation"
        with httpx.Client(base_url=base, timeout=10) as client:
            while flood.poll() is None and len(probes) < MAX_PROBES:
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                probes.append(time.perf_counter() - started)
                if len(probes) % 10 == 0:
                    started = time.perf_counter()
                    assert client.get(reputation).status_code == 200
                    reads.append(time.perf_counter() - started)
        assert flood.wait(180) == 0, "the flood client failed"
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait(10)
    results = [(int(s), str(c), str(r)) for s, c, r in json.loads(results_path.read_text())]
    return results, probes, reads

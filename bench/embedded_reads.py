"""Request-thread reads on the embedded chain while the publisher executes blocks: how long reads wait for the chain
lock, before and after reads of the committed state became lock-free (service.chain.embedded.ChainProvider).

    python -m bench.embedded_reads [--seconds 6] [--readers 4] [--batch 10] [--rounds 2] [--json]

One in-memory embedded chain. A publisher thread sends ``multiAttestByDelegation`` transactions of ``--batch``
pre-signed reviews back to back (py-evm executing ~1 Mgas per review, under the chain lock) while ``--readers``
threads do what request threads do — ``getNonce(attester)`` then ``getAttestation(uid)`` — in a loop. Two arms,
alternating for ``--rounds`` rounds: ``locked`` (every read through the chain lock: the behaviour before) and
``lockfree`` (reads answered from the last committed block without the lock). Per arm: reads/s, read latency
p50/p99, the share of the readers' time spent waiting for the chain lock, and the publisher's attestations/s
(readers and publisher share one GIL, so what the readers gain may cost the publisher). The ratio row compares the
arms measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from types import TracebackType
from typing import Any

from bench.chain import _requests
from service.chain.eas_relayer import EasClient
from service.chain.embedded import start_embedded_chain


class TimedLock:
    """Wraps the chain's RLock; adds up how long reader threads waited to acquire it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.local = threading.local()
        self.waited = 0.0
        self._sum = threading.Lock()

    def __enter__(self) -> TimedLock:
        started = time.perf_counter()
        self.inner.acquire()
        if getattr(self.local, "reader", False):
            waited = time.perf_counter() - started
            with self._sum:
                self.waited += waited
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.inner.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self.inner.acquire(blocking, timeout))

    def release(self) -> None:
        self.inner.release()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def arm(*, client: EasClient, lock: TimedLock, pool: list[Any], seconds: float, readers: int, batch: int,
        uid: str, attesters: list[str]) -> dict[str, Any]:  # fmt: skip
    """One arm: the publisher and the readers for ``seconds``; reads and attestations counted."""
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(readers)]
    busy = [0.0] * readers
    published = [0]
    lock.waited = 0.0

    def publisher() -> None:
        while not stop.is_set() and len(pool) >= batch:
            requests = [pool.pop() for _ in range(batch)]
            published[0] += len(client.submit(requests=requests))

    def reader(k: int) -> None:
        lock.local.reader = True
        i = 0
        while not stop.is_set():
            started = time.perf_counter()
            client.get_nonce(attester=attesters[i % len(attesters)])
            client.get_attestation(uid=uid)
            took = time.perf_counter() - started
            latencies[k].append(took)
            busy[k] += took
            i += 1

    threads = [threading.Thread(target=publisher)]
    threads += [threading.Thread(target=reader, args=(k,)) for k in range(readers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    flat = [x for xs in latencies for x in xs]
    return {
        "reads_per_s": len(flat) / elapsed,
        "read_p50_ms": 1000 * _percentile(flat, 0.5),
        "read_p99_ms": 1000 * _percentile(flat, 0.99),
        "lock_wait_share": lock.waited / max(sum(busy), 1e-9),
        "attestations_per_s": published[0] / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.embedded_reads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    chain = start_embedded_chain()
    client = chain.client()
    provider = chain.provider
    lock = TimedLock(provider.lock)
    provider.lock = lock  # type: ignore[assignment]  # the provider takes the chain lock through the timer
    seed = client.submit(requests=_requests(client, 1, "seed"))
    uid, attesters = seed[0].uid, [seed[0].attester]
    # enough pre-signed reviews for the publisher in every arm (py-evm publishes a few dozen per second)
    pool = _requests(client, int(60 * args.seconds * args.rounds * 2) + args.batch, "bench")
    attesters += [r.attester for r in pool[:50]]
    results: dict[str, list[dict[str, Any]]] = {"locked": [], "lockfree": []}
    for _ in range(args.rounds):
        for name in ("locked", "lockfree"):
            provider.lockfree_reads = name == "lockfree"
            results[name].append(arm(client=client, lock=lock, pool=pool, seconds=args.seconds, readers=args.readers,
                                     batch=args.batch, uid=uid, attesters=attesters))  # fmt: skip
    summary = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for name, runs in results.items()
    }
    summary["ratio_lockfree_to_locked"] = {
        key: summary["lockfree"][key] / summary["locked"][key] if summary["locked"][key] else float("nan")
        for key in summary["locked"]
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"embedded chain, {args.readers} reader threads vs a publisher sending batches of {args.batch} "
          f"({args.seconds:.0f} s per arm, median of {args.rounds} rounds)")  # fmt: skip
    print(f"{'arm':<26}{'reads/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'lock wait':>11}{'attest/s':>10}")
    for name, row in summary.items():
        print(f"{name:<26}{row['reads_per_s']:>10.1f}{row['read_p50_ms']:>9.2f}{row['read_p99_ms']:>9.2f}"
              f"{row['lock_wait_share']:>11.1%}{row['attestations_per_s']:>10.1f}"
              if name != "ratio_lockfree_to_locked" else
              f"{name:<26}{row['reads_per_s']:>10.2f}{row['read_p50_ms']:>9.2f}{row['read_p99_ms']:>9.2f}"
              f"{'':>11}{row['attestations_per_s']:>10.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""ERC-8004 ``sync`` throughput against the raw cost of reading the same feedback events, same run, same anvil.

    python -m bench.erc8004 [--n 10000] [--rounds 2] [--chunk-blocks 2000] [--json]

Deploys the test registries (tests/erc8004/contracts, compiled with npm solc) on a fresh anvil node, registers one
agent (data: registration file naming a service DID) and lands ``--n`` ``giveFeedback`` transactions from 10 clients
(automine off, JSON-RPC batches, then mined into a few blocks). Feedback carries no file URI, so the figure is the
indexing path (decode, agent mapping, self-feedback check, storing, checkpoints and block hashes), not file fetches.
Over the same block range it measures:

* raw: ``eth_getLogs`` of the three registry events in the same chunks + ABI decode (the floor any indexer pays);
* sync: ``service.workflows.erc8004_sync.sync_erc8004`` into a fresh SQLite database (what ``omatrust sync`` runs).

Prints events/s of each and the ratio sync/raw. Each figure is the best of ``--rounds`` runs (fresh database each).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from web3 import Web3

from service.chain.erc8004 import FeedbackScanner, RegistryClient, decode_event
from service.identity.fetcher import SafeFetcher
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.workflows.erc8004_fetch import UriFetcher
from service.workflows.erc8004_sync import Erc8004Deps, sync_erc8004

GIVE = "giveFeedback(uint256,int128,uint8,string,string,string,string,bytes32)"
GIVE_TYPES = ["uint256", "int128", "uint8", "string", "string", "string", "string", "bytes32"]


def _rpc_batch(url: str, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    answers = httpx.post(url, json=body, timeout=120).json()
    errors = [a for a in answers if "error" in a]
    if errors:
        raise RuntimeError(f"rpc: {errors[0]['error']}")
    return [a["result"] for a in sorted(answers, key=lambda a: a["id"])]


def _land_feedback(url: str, w3: Web3, *, reputation: str, agent: int, n: int) -> None:
    clients = w3.eth.accounts[2:12]
    nonces = {c: w3.eth.get_transaction_count(c) for c in clients}
    _rpc_batch(url, [("evm_setAutomine", [False])])
    sent = 0
    while sent < n:
        calls = []
        for _ in range(min(500, n - sent)):
            data = keccak(text=GIVE)[:4] + encode(
                GIVE_TYPES, [agent, 1 + sent % 5, 0, "starred", "", "", "", b"\0" * 32]
            )
            sender = clients[sent % len(clients)]
            tx = {"from": sender, "to": reputation, "data": "0x" + data.hex(), "gas": hex(200_000),
                  "nonce": hex(nonces[sender])}  # fmt: skip
            nonces[sender] += 1
            calls.append(("eth_sendTransaction", [tx]))
            sent += 1
        _rpc_batch(url, calls)
        _rpc_batch(url, [("evm_mine", [])])
    _rpc_batch(url, [("evm_setAutomine", [True])])


def _raw(client: RegistryClient, *, start: int, end: int, chunk: int) -> int:
    found = 0
    block = start
    while block <= end:
        last = min(end, block + chunk - 1)
        found += sum(1 for log in client.logs(from_block=block, to_block=last) if decode_event(log) is not None)
        block = last + 1
    return found


def _sync(client: RegistryClient, *, url: str, start: int, end: int, chunk: int) -> int:
    engine = make_engine(url=url)
    upgrade(engine=engine)
    try:
        files = UriFetcher(fetcher=SafeFetcher(timeout=5), ipfs_gateway="https://ipfs.io")  # data: URIs: no fetch
        deps = Erc8004Deps(engine=engine, client=client, files=files, payments=None)
        report = sync_erc8004(deps=deps, scanner=FeedbackScanner(client=client, chunk_blocks=chunk),
                              from_block=start, to_block=end)  # fmt: skip
    finally:
        engine.dispose()
    return report.feedback


def run(*, n: int, rounds: int, chunk: int) -> dict[str, Any]:
    from tests.erc8004.conftest import data_uri, deploy, registration
    from tests.erc8004.solidity import compile_registries
    from tests.support.anvil import AnvilNode

    with AnvilNode.start(extra_args=("--disable-block-gas-limit",)) as node, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        w3 = Web3(Web3.HTTPProvider(node.url))
        chain = deploy(w3, compile_registries(work))
        start = w3.eth.block_number + 1
        services = [{"name": "DID", "endpoint": "did:web:bench.example"}]
        agent = chain.register(owner=w3.eth.accounts[1], uri=data_uri(registration(services=services)))
        t0 = time.perf_counter()
        _land_feedback(node.url, w3, reputation=chain.reputation, agent=agent, n=n)
        landing = time.perf_counter() - t0
        end = w3.eth.block_number
        client = RegistryClient(w3=w3, registries=chain.registries)
        raw_best = sync_best = float("inf")
        for k in range(rounds):
            t = time.perf_counter()
            got = _raw(client, start=start, end=end, chunk=chunk)
            raw_best = min(raw_best, time.perf_counter() - t)
            if got != n:
                raise RuntimeError(f"raw read {got} events, expected {n}")
            t = time.perf_counter()
            stored = _sync(client, url=f"sqlite:///{work / f'erc8004-{k}.db'}", start=start, end=end, chunk=chunk)
            sync_best = min(sync_best, time.perf_counter() - t)
            if stored != n:
                raise RuntimeError(f"sync stored {stored} feedback, expected {n}")
    return {
        "events": n, "blocks": end - start + 1, "landing_seconds": round(landing, 2),
        "raw_events_per_s": round(n / raw_best, 1), "sync_events_per_s": round(n / sync_best, 1),
        "raw_seconds": round(raw_best, 3), "sync_seconds": round(sync_best, 3),
        "sync_over_raw": round(raw_best / sync_best, 3),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chunk-blocks", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(n=args.n, rounds=args.rounds, chunk=args.chunk_blocks)
    if args.json:
        print(json.dumps(result))
        return
    print(f"ERC-8004 feedback events: {result['events']} in {result['blocks']} blocks "
          f"(landed in {result['landing_seconds']} s)")  # fmt: skip
    print(f"raw eth_getLogs + decode: {result['raw_events_per_s']:>10.1f} events/s ({result['raw_seconds']} s)")
    print(f"omatrust sync (erc8004):  {result['sync_events_per_s']:>10.1f} events/s ({result['sync_seconds']} s)")
    print(f"sync / raw: {result['sync_over_raw']:.3f}x")


if __name__ == "__main__":
    main()

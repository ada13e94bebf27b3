"""The ERC-8004 step of ``omatrust sync``: index the chain's Reputation Registry feedback (see docs/erc8004.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any
from urllib.parse import quote, urlencode

from service.chain.deploy import fee_fields
from service.chain.erc8004 import FeedbackScanner, Registries
from service.config import Settings
from service.domain import Reason
from service.errors import ChainRejected
from service.wiring import build_erc8004, connect_chain, load_settings
from service.workflows.erc8004_sync import Erc8004Report, iter_reasons, sync_erc8004
from service.workflows.runtime import Runtime


def sync_step(*, settings: Settings, rt: Runtime, args: argparse.Namespace) -> Erc8004Report | None:
    """Run after the EAS sync; None when no registries are known for the chain. Prints its summary line.

    Raises:
        ChainUnavailable: RPC failure (committed ranges are kept).
        ValueError: malformed OMATRUST_ERC8004_REGISTRIES.
    """
    deps = build_erc8004(settings, runtime=rt)
    if deps is None:
        return None
    scanner = FeedbackScanner(client=deps.client, chunk_blocks=args.chunk_blocks, confirmations=rt.confirmations - 1)
    report = sync_erc8004(deps=deps, scanner=scanner, from_block=args.from_block or 0, to_block=args.to_block)
    print(summary(report))
    if report.recheck_error is not None:
        print(f"erc8004: re-check stopped, stored verdicts kept: {report.recheck_error}", file=sys.stderr)
    if report.unmapped_agents:
        print("erc8004: agents not mapped to a service DID: " + ", ".join(report.unmapped_agents), file=sys.stderr)
    return report


def summary(report: Erc8004Report) -> str:
    recheck = (
        f"; re-checked {report.rechecked} open payment checks, {report.upgraded} settled" if report.rechecked else ""
    )
    if report.to_block is None:
        return f"erc8004: nothing to read{recheck}"
    reasons = ", ".join(iter_reasons(report)) or "none"
    reorg = "" if report.reorg_fork is None else f"; reorg: rolled back to block {report.reorg_fork}"
    return (
        f"erc8004: synced blocks {report.from_block}..{report.to_block}: {report.feedback} new feedback "
        f"({report.payment_verified} payment-verified, {report.self_feedback} self-feedback; reasons: {reasons}), "
        f"{report.known} already stored, {report.revoked} revoked, {report.responses} responses{reorg}{recheck}"
    )


def give_feedback(
    *,
    http: Any,
    api: str,
    review_id: str,
    agent_id: int,
    account: Any,
    w3: Any,
    registries: Registries,
) -> dict[str, Any]:
    """``omatrust review --erc8004 AGENT_ID``: fetch our feedback file of the posted review, then call
    ``giveFeedback(agentId, rating, 0, "starred", "", "", <file URL>, <its keccak256>)`` from the reviewer's key.

    ``http`` is an ``httpx.Client`` (tests pass the app's TestClient). Returns {feedbackURI, feedbackHash, txHash}.

    Raises:
        httpx.HTTPStatusError: the service refused to build the file (problem+json in the response).
        ChainRejected: the registry reverted (e.g. the reviewer owns or operates the agent: self-feedback).
        ChainUnavailable: RPC failure.
    """
    from eth_abi.abi import encode
    from eth_utils.crypto import keccak

    from service.chain.rpc import rpc_errors

    path = f"/v1/reviews/{quote(review_id, safe='')}/erc8004-feedback.json"
    params = {"agentRegistry": registries.agent_registry, "agentId": str(agent_id)}
    answer = http.get(api.rstrip("/") + path, params=params)
    answer.raise_for_status()
    body, digest = answer.content, answer.headers["ERC8004-Feedback-Hash"]
    if "0x" + keccak(body).hex() != digest:
        raise ValueError("the served feedback file does not hash to its ERC8004-Feedback-Hash header")
    uri = f"{api.rstrip('/')}{path}?{urlencode(params)}"
    value = int(json.loads(body)["value"])
    data = keccak(text="giveFeedback(uint256,int128,uint8,string,string,string,string,bytes32)")[:4] + encode(
        ["uint256", "int128", "uint8", "string", "string", "string", "string", "bytes32"],
        [agent_id, value, 0, "starred", "", "", uri, bytes.fromhex(digest[2:])],
    )
    with rpc_errors("giveFeedback"):
        nonce = w3.eth.get_transaction_count(account.address)
        tx: dict[str, Any] = {"from": account.address, "to": registries.reputation, "data": data, "nonce": nonce,
                              "chainId": registries.chain_id}  # fmt: skip
        tx["gas"] = int(w3.eth.estimate_gas(tx) * 1.2)
        tx.update(fee_fields(w3=w3))
        signed = account.sign_transaction(tx)
        receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), timeout=60)
    if receipt["status"] != 1:
        raise ChainRejected(Reason.TX_REVERTED, "giveFeedback reverted")
    return {"feedbackURI": uri, "feedbackHash": digest, "txHash": "0x" + bytes(receipt["transactionHash"]).hex()}


def wait_attested(*, http: Any, api: str, review_id: str, timeout: float, clock: Any = time.monotonic) -> None:
    """Wait until the review's attestation is confirmed: the feedback file links to it, so fetching the file before
    would commit to bytes that change once the attestation lands (the committed hash would then never match).

    Raises:
        ValueError: the attestation failed, or is not confirmed within ``timeout`` seconds.
        httpx.HTTPError: the service could not be read.
    """
    deadline = clock() + timeout
    url = f"{api.rstrip('/')}/v1/reviews/{quote(review_id, safe='')}"
    while True:
        answer = http.get(url)
        answer.raise_for_status()
        attestation = answer.json().get("attestation") or {}
        if attestation.get("state") == "confirmed" and attestation.get("uid"):
            return
        if attestation.get("state") == "failed":
            raise ValueError(f"the review's attestation failed: {attestation.get('error')}")
        if clock() > deadline:
            raise ValueError(f"the review is not attested after {timeout:.0f} s: run the --erc8004 step again later")
        time.sleep(0.5)  # polling a remote service: nothing to wait on but time


def review_step(*, args: argparse.Namespace, account: Any, review_id: str) -> int:
    """The ``--erc8004`` part of ``omatrust review``: waits for the review's attestation, then gives the feedback;
    prints {"erc8004": {feedbackURI, feedbackHash, txHash}}; 0 on success, 1 (problem JSON on stderr) otherwise."""
    import httpx

    from service.chain.erc8004 import parse_registries, registries_for
    from service.errors import OmaTrustError

    settings = load_settings()
    try:
        w3 = connect_chain(rpc_url=settings.rpc_url)
        registries = registries_for(chain_id=int(w3.eth.chain_id),
                                    configured=parse_registries(settings.erc8004_registries))  # fmt: skip
        if registries is None:
            raise ValueError(f"no ERC-8004 registries for chain {w3.eth.chain_id}: set OMATRUST_ERC8004_REGISTRIES")
        with httpx.Client(timeout=30) as http:
            wait_attested(http=http, api=args.api, review_id=review_id, timeout=args.erc8004_wait)
            out = give_feedback(http=http, api=args.api, review_id=review_id, agent_id=args.erc8004, account=account,
                                w3=w3, registries=registries)  # fmt: skip
    except (ValueError, OmaTrustError, httpx.HTTPError) as exc:
        print(json.dumps({"status": 422, "code": "erc8004-feedback-failed", "detail": str(exc)}), file=sys.stderr)
        return 1
    print(json.dumps({"erc8004": out}))
    return 0

"""The x402 client tells "the node or the service could not answer now" from "no": a node's error answer while it
mines (anvil's ``BlockOutOfRangeError``) is retried and never reported as ``not-eip3009``; a 503 from the review
service is sent again as ``Retry-After`` asks. The real token and service paths are covered on anvil
(``test_payments_anvil.py``, ``tests/e2e/test_new_user_flow.py``); these pin the retry rules against a loopback node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from web3 import Web3

from service.errors import PaymentRefused
from service.x402.client import _post, _probe_asset
from tests.support.jsonrpc_node import jsonrpc_node

ASSET = "0x00000000000000000000000000000000000000Aa"
MINING = {"error": {"code": -32602, "message": "BlockOutOfRangeError: block height is 39 but requested was 38"}}
REVERT = {"error": {"code": 3, "message": "execution reverted", "data": "0x"}}


def _selector(signature: str) -> str:
    return keccak(text=signature)[:4].hex()


class Node:
    """One EIP-3009 token's node: ``eth_call`` answers come from ``script`` first (one per call), then the token's
    real answers."""

    def __init__(self) -> None:
        self.script: list[dict[str, Any]] = []
        self.eth_calls = 0
        self.w3 = Web3()
        self._answers = {
            _selector("authorizationState(address,bytes32)"): "0x" + encode(["bool"], [False]).hex(),
            _selector("name()"): "0x" + encode(["string"], ["USD Coin"]).hex(),
            _selector("version()"): "0x" + encode(["string"], ["2"]).hex(),
        }

    def __call__(self, method: str, params: list[Any]) -> dict[str, Any]:
        if method == "eth_chainId":
            return {"result": "0x7a69"}
        if method == "eth_getCode":
            return {"result": "0x6080"}
        if method != "eth_call":
            return {"error": {"code": -32601, "message": method}}
        self.eth_calls += 1
        scripted = self.script.pop(0) if self.script else None
        data = params[0].get("data") or params[0].get("input")
        return scripted or {"result": self._answers[data[2:10]]}


@pytest.fixture
def node() -> Iterator[Node]:
    n = Node()
    with jsonrpc_node(n) as url:
        n.w3 = Web3(Web3.HTTPProvider(url))
        yield n


def test_a_node_error_while_mining_is_retried(node: Node) -> None:
    node.script = [MINING]
    waits: list[float] = []
    assert _probe_asset(node.w3, ASSET, sleep=waits.append) == ("USD Coin", "2")
    assert len(waits) == 1


def test_a_node_that_keeps_failing_is_rpc_unavailable_not_a_bad_token(node: Node) -> None:
    node.script = [MINING] * 3
    waits: list[float] = []
    with pytest.raises(PaymentRefused) as caught:
        _probe_asset(node.w3, ASSET, sleep=waits.append)
    assert caught.value.code == "rpc-unavailable"
    assert len(waits) == 2


def test_a_revert_is_not_eip3009_at_once(node: Node) -> None:
    node.script = [REVERT]
    waits: list[float] = []
    with pytest.raises(PaymentRefused) as caught:
        _probe_asset(node.w3, ASSET, sleep=waits.append)
    assert caught.value.code == "not-eip3009"
    assert (waits, node.eth_calls) == ([], 1)


def _service(statuses: list[int]) -> tuple[httpx.Client, list[int]]:
    seen: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        status = statuses[len(seen)]
        seen.append(status)
        headers = {"Retry-After": "30"} if status == 503 else {}
        return httpx.Response(status, json={"status": status}, headers=headers)

    return httpx.Client(transport=httpx.MockTransport(handle)), seen


def test_a_503_is_sent_again_as_retry_after_asks_capped() -> None:
    client, seen = _service([503, 201])
    waits: list[float] = []
    response = _post(client, "http://service.test/v1/reviews", {"a": 1}, sleep=waits.append)
    assert (response.status_code, seen, waits) == (201, [503, 201], [10.0])


def test_a_503_that_persists_is_returned_after_three_tries() -> None:
    client, seen = _service([503, 503, 503, 201])
    response = _post(client, "http://service.test/v1/reviews", {"a": 1}, sleep=lambda _: None)
    assert (response.status_code, seen) == (503, [503, 503, 503])


def test_a_refusal_is_not_sent_again() -> None:
    client, seen = _service([422, 201])
    response = _post(client, "http://service.test/v1/reviews", {"a": 1}, sleep=lambda _: None)
    assert (response.status_code, seen) == (422, [422])


def test_an_answer_that_does_not_decode_is_not_eip3009_at_once(node: Node) -> None:
    node.script = [{"result": "0x"}]  # no return data: not a token's authorizationState
    waits: list[float] = []
    with pytest.raises(PaymentRefused) as caught:
        _probe_asset(node.w3, ASSET, sleep=waits.append)
    assert (caught.value.code, waits) == ("not-eip3009", [])


def test_a_rate_limit_answer_is_retried_not_a_bad_token(node: Node) -> None:
    node.script = [{"error": {"code": -32005, "message": "rate limited"}}]
    waits: list[float] = []
    assert _probe_asset(node.w3, ASSET, sleep=waits.append) == ("USD Coin", "2")
    assert len(waits) == 1


def test_a_retry_after_that_is_not_a_finite_number_waits_one_second() -> None:
    seen: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        if len(seen) == 1:
            return httpx.Response(503, json={}, headers={"Retry-After": "nan"})
        return httpx.Response(201, json={})

    waits: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(handle))
    assert _post(client, "http://service.test/v1/reviews", {}, sleep=waits.append).status_code == 201
    assert waits == [1.0]

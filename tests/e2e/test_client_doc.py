"""docs/client.md runs as written: its Python (eth-account) and TypeScript (viem, type-checked by tsc) programs are
extracted from the page and run against a real ``omatrust serve``, with receipts from a merchant whose did.json is
served on loopback — one bare EIP-712 envelope (prepare wraps it), one wrapped JWS receipt. Both must end as
verified purchases with a confirmed attestation. The sample did.json files are read by the service's own parser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from service.cli.demo_kit import DidWebServer, Merchant
from service.identity.documents import find_key, read_did_document
from service.identity.profile import read_profile
from tests.support.anvil import free_port
from tests.support.api_process import clean_env, serving

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "client.md"
INTEROP = ROOT / "tests" / "interop"
TSC = INTEROP / "node_modules" / ".bin" / "tsc"
NODE = shutil.which("node") or "node"


def snippet(info: str) -> str:
    """The fenced code block of docs/client.md whose info string is ``info`` (exactly one)."""
    blocks = re.findall(rf"^```{re.escape(info)}\n(.*?)^```$", DOC.read_text(encoding="utf-8"), flags=re.M | re.S)
    assert len(blocks) == 1, f"{info}: {len(blocks)} blocks"
    return blocks[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Merchant]]:
    tmp = tmp_path_factory.mktemp("client-doc")
    port = free_port()
    merchant = Merchant(host=f"localhost:{port}", scheme="http")
    env = clean_env(
        OMATRUST_DATABASE_URL=f"sqlite:///{tmp / 'omatrust.db'}",
        OMATRUST_DID_WEB_INSECURE_HOSTS=f"localhost:{port}",
        OMATRUST_PUBLISH_INTERVAL_SECONDS="0.1",
    )
    with DidWebServer(port=port) as site:
        site.publish(merchant)
        with serving(env, tmp) as base:
            yield base, merchant


def run_env(base: str, merchant: Merchant, key: str, receipt_file: Path) -> dict[str, str]:
    return {**os.environ, "OMATRUST_API": base, "PAYER_KEY": key, "RECEIPT_FILE": str(receipt_file),
            "SERVICE_DID": merchant.did}  # fmt: skip


def check_output(out: str, base: str) -> None:
    assert "will count as: verified" in out, out
    assert re.search(r"verified purchase: [Tt]rue", out), out
    uid = re.search(r"attestation confirmed (0x[0-9a-f]{64})", out)
    assert uid is not None, out
    review_id = re.search(r"review ([0-9a-f]{32})", out)
    assert review_id is not None
    stored = httpx.get(f"{base}/v1/reviews/{review_id[1]}", timeout=10).json()
    assert stored["attestation"]["uid"] == uid[1]
    assert stored["proofs"][0]["proofType"] == "x402-receipt"


@pytest.mark.slow
def test_python_client_as_written(world: tuple[str, Merchant], tmp_path: Path) -> None:
    base, merchant = world
    payer = Account.create()
    bare = merchant.receipt(payer=payer.address, issued_at=int(time.time()) - 60)["proofObject"]
    (tmp_path / "receipt.json").write_text(json.dumps(bare))
    (tmp_path / "client.py").write_text(snippet("python client.py"))
    result = subprocess.run(
        [sys.executable, "client.py"], cwd=tmp_path, capture_output=True, text=True, timeout=180,
        env=run_env(base, merchant, payer.key.hex(), tmp_path / "receipt.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    check_output(result.stdout, base)


@pytest.mark.node
@pytest.mark.slow
@pytest.mark.skipif(not TSC.exists(), reason="npm deps missing: (cd tests/interop && npm ci)")
def test_typescript_client_as_written(world: tuple[str, Merchant], tmp_path: Path) -> None:
    base, merchant = world
    payer = Account.create()
    wrapped = merchant.receipt(payer=payer.address, issued_at=int(time.time()) - 60, fmt="jws")
    (tmp_path / "receipt.json").write_text(json.dumps(wrapped))
    (tmp_path / "client.ts").write_text(snippet("ts client.ts"))
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "node_modules").symlink_to(INTEROP / "node_modules")  # viem as a reader would have it installed
    compiled = subprocess.run(
        [str(TSC), "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022",
         "--skipLibCheck", "--types", "node", "client.ts"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    result = subprocess.run(
        [NODE, "client.js"], cwd=tmp_path, capture_output=True, text=True, timeout=180,
        env=run_env(base, merchant, "0x" + payer.key.hex().removeprefix("0x"), tmp_path / "receipt.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    check_output(result.stdout, base)


@pytest.mark.parametrize("name", ["did-evm-receipt-signer.json", "did-jws-key.json"])
def test_sample_did_documents_are_accepted(name: str) -> None:
    raw = (ROOT / "docs" / "samples" / name).read_bytes()
    doc = json.loads(raw)
    parsed = read_did_document(did=doc["id"], raw=raw)
    for kid in doc["assertionMethod"]:
        key = find_key(parsed=parsed, kid=kid)
        assert key is not None
    assert parsed.document.assertion_method == tuple(doc["assertionMethod"])
    profile = read_profile(raw=raw)
    assert (profile.name, profile.url) == ("Example Weather API", "https://api.example.com")

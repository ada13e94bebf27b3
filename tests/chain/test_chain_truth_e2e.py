"""Chain state is the truth, as processes a new user runs:

* ``serve`` (embedded chain in a file beside the store) → ``demo`` → ``kill -9`` → ``serve`` again: every UID the
  store holds is on the chain (``GET /v1/attestations/{uid}``), a returning reviewer's next review publishes with
  the next EAS nonce, and ``omatrust sync`` into a fresh database against the same chain file finds every UID;
* a store pointed at another chain is refused with both chains named; ``omatrust chain adopt`` re-queues what the
  new chain lacks and the next ``serve`` publishes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from service.cli.demo_kit import Reviewer
from service.store.engine import make_engine
from tests.support.anvil import free_port
from tests.support.db import fresh_database_url

OMATRUST = [sys.executable, "-m", "service.cli.main"]
SUBJECT = "did:web:shop.example.com"


def _env(database_url: str, chain: Path, merchant_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMATRUST_")}
    env.update(
        OMATRUST_DATABASE_URL=database_url,
        OMATRUST_EMBEDDED_CHAIN_PATH=str(chain),
        OMATRUST_DID_WEB_INSECURE_HOSTS=f"localhost:{merchant_port}",
        OMATRUST_PUBLISH_INTERVAL_SECONDS="0.1",
    )
    return env


@contextmanager
def serve(env: dict[str, str], cwd: Path, log_name: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``omatrust serve`` until ready; killed with SIGKILL on exit unless the test already stopped it."""
    port = free_port()
    log = (cwd / log_name).open("w")
    proc = subprocess.Popen([*OMATRUST, "serve", "--port", str(port)], env=env, cwd=cwd, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (cwd / log_name).read_text()[-3000:]
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.1)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(15)
        log.close()


def wait_state(base: str, review_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{base}/v1/reviews/{review_id}", timeout=10).json()
        if body["attestation"]["state"] in ("confirmed", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def stored_uids(database_url: str) -> dict[str, str]:
    engine = make_engine(url=database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT attestation_uid, id FROM reviews WHERE attestation_uid IS NOT NULL"))
            return {str(uid): str(rid) for uid, rid in rows}
    finally:
        engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database_url(tmp_path) as url:
        yield url


@pytest.mark.slow
def test_serve_demo_kill9_serve_sync(tmp_path: Path, database_url: str) -> None:
    chain = tmp_path / "omatrust.chain"
    merchant_port = free_port()
    env = _env(database_url, chain, merchant_port)
    returning = Reviewer()
    with serve(env, tmp_path, "serve1.log") as (base, proc):
        config = httpx.get(f"{base}/v1/attestation-config").json()
        assert config["ephemeral"] is False
        demo = subprocess.run(
            [*OMATRUST, "demo", "--api", base, "--port", str(merchant_port), "--wait", "60"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert demo.returncode == 0, demo.stdout + demo.stderr
        first = returning.submit(httpx.Client(timeout=30), base=base, subject=SUBJECT, ratingValue=4)
        assert first.status_code == 201, first.text
        assert wait_state(base, first.json()["id"])["attestation"]["state"] == "confirmed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(15)
    before = stored_uids(database_url)
    assert len(before) >= 2

    with serve(env, tmp_path, "serve2.log") as (base, proc):
        for uid, review_id in before.items():
            got = httpx.get(f"{base}/v1/attestations/{uid}", timeout=10)
            assert got.status_code == 200, (uid, got.text)
            assert got.json()["reviewId"] == review_id
            assert got.json()["uid"] == uid
        missing = httpx.get(f"{base}/v1/attestations/0x{'ab' * 32}", timeout=10)
        assert missing.status_code == 404
        assert missing.json()["code"] == "not-found"
        # the returning reviewer signs their next review with the nonce the chain kept
        prepared = returning.prepare(httpx.Client(timeout=30), base=base, subject="did:web:other.example.com",
                                     ratingValue=2)  # fmt: skip
        assert prepared.json()["typedData"]["message"]["nonce"] == 1
        second = httpx.post(f"{base}/v1/reviews", json=returning.signed_body(prepared.json()), timeout=30)
        assert second.status_code == 201, second.text
        body = wait_state(base, second.json()["id"])
        assert body["attestation"]["state"] == "confirmed", body
        onchain = httpx.get(f"{base}/v1/attestations/{body['attestation']['uid']}", timeout=10).json()
        assert onchain["attester"].lower() == returning.address.lower()
        assert onchain["review"]["ratingValue"] == 2
        proc.terminate()
        proc.wait(15)
    after = stored_uids(database_url)
    assert set(before) < set(after)

    # a fresh database synced from the same chain file finds every UID the first store holds
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with fresh_database_url(fresh) as fresh_url:
        sync_env = {**env, "OMATRUST_DATABASE_URL": fresh_url}
        out = subprocess.run([*OMATRUST, "sync"], env=sync_env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=300)  # fmt: skip
        assert out.returncode in (0, 3), out.stdout + out.stderr
        assert set(stored_uids(fresh_url)) == set(after)
        shown = subprocess.run([*OMATRUST, "attestation", next(iter(after))], env=sync_env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)  # fmt: skip
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert next(iter(after)) in shown.stdout


@pytest.mark.slow
def test_store_on_another_chain_is_refused_then_adopted(tmp_path: Path, database_url: str) -> None:
    merchant_port = free_port()
    env = _env(database_url, tmp_path / "a.chain", merchant_port)
    reviewer = Reviewer()
    with serve(env, tmp_path, "serve-a.log") as (base, _proc):
        posted = reviewer.submit(httpx.Client(timeout=30), base=base, subject=SUBJECT, ratingValue=5)
        assert posted.status_code == 201, posted.text
        review_id = posted.json()["id"]
        old_uid = wait_state(base, review_id)["attestation"]["uid"]
        genesis_a = httpx.get(f"{base}/v1/attestations/{old_uid}").json()
        assert genesis_a["reviewId"] == review_id

    other = {**env, "OMATRUST_EMBEDDED_CHAIN_PATH": str(tmp_path / "b.chain")}
    refused = subprocess.run([*OMATRUST, "serve", "--port", str(free_port())], env=other, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert refused.returncode != 0
    message = refused.stdout + refused.stderr
    assert "refusing to start" in message
    assert message.count("genesis 0x") >= 2  # both chains named
    assert "omatrust chain adopt" in message
    assert "OMATRUST_EMBEDDED_CHAIN_PATH" in message

    adopted = subprocess.run([*OMATRUST, "chain", "adopt"], env=other, cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert "1 reviews queued for publishing again" in adopted.stdout
    with serve(other, tmp_path, "serve-b.log") as (base, _proc):
        body = wait_state(base, review_id)
        assert body["attestation"]["state"] == "confirmed", body
        new_uid = body["attestation"]["uid"]
        onchain = httpx.get(f"{base}/v1/attestations/{new_uid}").json()
        assert onchain["reviewId"] == review_id
        assert onchain["attester"].lower() == reviewer.address.lower()
        assert httpx.get(f"{base}/v1/attestations/{old_uid}").status_code == 404  # chain a's UID is not on b

"""A peer that drips its answer one byte at a time cannot stretch a fetch past its overall deadline.

Each byte arrives well within any per-read timeout (every ~0.3 s), so only a deadline over the whole exchange —
connect, TLS handshake, headers, body — can end the call. Checked on the fetcher and on a real ``omatrust serve``.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from service.cli.demo_kit import Merchant
from service.domain import Reason
from service.errors import FetchFailed
from service.identity.fetcher import SafeFetcher
from tests.hostile.conftest import MisbehavingHost, start_serve
from tests.support.dns_server import LoopbackDns

DEADLINE = 2.0
TLS_RECORD_HEAD = b"\x16\x03\x03\x40\x00"  # a handshake record announcing 16 KiB that never fully arrives


def _timed_fetch(fetcher: SafeFetcher, url: str) -> tuple[Reason, float]:
    started = time.monotonic()
    with pytest.raises(FetchFailed) as info:
        fetcher.fetch(url=url)
    return info.value.reason, time.monotonic() - started


def test_dripped_headers_end_at_the_deadline() -> None:
    with MisbehavingHost(mode="drip", interval=0.3) as host:
        fetcher = SafeFetcher(timeout=DEADLINE, insecure_hosts=frozenset({host.host}))
        reason, took = _timed_fetch(fetcher, f"http://{host.host}/.well-known/did.json")
        assert host.accepted == 1
    assert reason is Reason.FETCH_TIMEOUT
    assert DEADLINE - 0.5 < took < DEADLINE + 1.0


def test_dripped_tls_handshake_ends_at_the_deadline() -> None:
    with MisbehavingHost(mode="drip", interval=0.3, payload=TLS_RECORD_HEAD + b"\x02" * 20_000) as host:
        fetcher = SafeFetcher(timeout=DEADLINE, insecure_hosts=frozenset({host.host}))
        reason, took = _timed_fetch(fetcher, f"https://{host.host}/.well-known/did.json")
    assert reason is Reason.FETCH_TIMEOUT
    assert DEADLINE - 0.5 < took < DEADLINE + 1.0


def test_verify_call_against_a_dripping_host_ends_within_the_deadline(
    tmp_path: Path, loopback_dns: LoopbackDns
) -> None:
    with MisbehavingHost(mode="drip", interval=0.3) as host:
        serve = start_serve(tmp_path, database_url=f"sqlite:///{tmp_path / 'drip.db'}", env={
            "OMATRUST_DID_WEB_INSECURE_HOSTS": host.host, "OMATRUST_FETCH_TIMEOUT_SECONDS": str(DEADLINE),
            "OMATRUST_DNS_NAMESERVERS": loopback_dns.nameserver, "OMATRUST_DNS_TIMEOUT_SECONDS": "1",
        })  # fmt: skip
        try:
            merchant = Merchant(host=host.host, scheme="http")
            receipt = merchant.receipt(payer="0x" + "11" * 20, issued_at=int(time.time()) - 60, fmt="jws")
            started = time.monotonic()
            resp = httpx.post(f"{serve.url}/v1/proofs/verify", json=receipt, timeout=30)
            took = time.monotonic() - started
            assert host.accepted >= 1  # the document fetch did reach the dripping host
        finally:
            serve.stop()
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["status"], body["reason"]) == ("indeterminate", "fetch-timeout")
    assert took < DEADLINE + 1.0
    assert "localhost" not in body["detail"] or "://" not in body["detail"]

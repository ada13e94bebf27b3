"""Batch re-verification and sync tests run on real parts: a fresh SQLite/PostgreSQL database
(``OMATRUST_TEST_DB=postgres``), a real HTTPS did:web host and a real DNS server on loopback, and reviews stored by
the real submit workflow (embedded EVM for the delegated-attestation checks)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from service.chain.codec import encode_review
from service.chain.embedded import EmbeddedChain, start_embedded_chain
from service.cli.demo_kit import Merchant, Reviewer
from service.domain import Review
from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.store.engine import make_engine, session_scope
from service.store.migrate import upgrade
from service.store.tables import (
    DidSnapshotRow,
    OutcomeHistoryRow,
    ProofRow,
    ReverifyAttemptRow,
    ReverifyRunRow,
    ReviewRow,
    SubjectAggregateRow,
)
from service.workflows.evaluate import ReviewPolicy
from service.workflows.reverify import ReverifyOptions, ReverifyReport, reverify
from service.workflows.runtime import Runtime
from service.workflows.submit import prepare_review, submit_review
from tests.support.db import fresh_database_url
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns


@pytest.fixture(scope="session")
def batch_didweb() -> Iterator[DidWebHost]:
    host = DidWebHost().start()
    yield host
    host.stop()


@pytest.fixture(scope="session")
def batch_dns() -> Iterator[LoopbackDns]:
    with LoopbackDns() as server:
        yield server


class Clock:
    """Wall-clock time plus an offset a test can move."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class BatchEnv:
    url: str
    engine: Engine
    rt: Runtime
    chain: EmbeddedChain
    host: DidWebHost
    dns: LoopbackDns
    clock: Clock
    merchant: Merchant
    reviewers: list[Reviewer] = field(default_factory=list)

    # -- seeding through the real submit workflow
    def submit(self, reviewer: Reviewer, *, proofs: list[dict[str, Any] | str], subject: str | None = None,
               rating: int = 5) -> str:  # fmt: skip
        review = Review(
            subject=subject or self.merchant.did,
            version="",
            rating_value=rating,
            review_body="ok",
            screenshot_urls=(),
            proofs=tuple(p if isinstance(p, str) else json.dumps(p, separators=(",", ":")) for p in proofs),
        )
        deadline = int(self.clock()) + 3600
        prepared = prepare_review(rt=self.rt, attester=reviewer.address, review=review, deadline=deadline)
        typed = prepared.typed_data
        return submit_review(
            rt=self.rt,
            attester=reviewer.address,
            data=prepared.data,
            deadline=deadline,
            nonce=int(typed["message"]["nonce"]),
            signature=reviewer.sign(typed),
        )

    def verified_review(self, *, fmt: str = "eip712", issued_ago: int = 3600, merchant: Merchant | None = None) -> str:
        """A fresh reviewer's verified purchase of the merchant's service."""
        reviewer = Reviewer()
        m = merchant or self.merchant
        receipt = m.receipt(payer=reviewer.address, issued_at=int(self.clock()) - issued_ago, fmt=fmt)
        return self.submit(reviewer, proofs=[receipt])

    # -- running
    def reverify(self, *, clock: Clock | None = None, **options: Any) -> ReverifyReport:
        options.setdefault("workers", 0)
        return reverify(
            engine=self.engine,
            resolver=self.rt.resolver,
            controllers=self.rt.controllers,
            policy=self.rt.policy,
            clock=clock or self.clock,
            options=ReverifyOptions(**options),
        )

    # -- reading back
    def review(self, review_id: str) -> ReviewRow:
        with Session(self.engine) as s:
            row = s.get(ReviewRow, review_id)
            assert row is not None
            return row

    def proofs(self, review_id: str) -> list[ProofRow]:
        with Session(self.engine) as s:
            return list(s.exec(select(ProofRow).where(ProofRow.review_id == review_id).order_by(ProofRow.position)))

    def history(self, review_id: str | None = None) -> list[OutcomeHistoryRow]:
        with Session(self.engine) as s:
            stmt = select(OutcomeHistoryRow).order_by(OutcomeHistoryRow.id)
            if review_id is not None:
                stmt = stmt.where(OutcomeHistoryRow.review_id == review_id)
            return list(s.exec(stmt))

    def attempts(self) -> list[ReverifyAttemptRow]:
        with Session(self.engine) as s:
            return list(s.exec(select(ReverifyAttemptRow).order_by(ReverifyAttemptRow.id)))

    def runs(self) -> list[ReverifyRunRow]:
        with Session(self.engine) as s:
            return list(s.exec(select(ReverifyRunRow)))

    def aggregate(self, subject_normalized: str) -> dict[str, Any]:
        with Session(self.engine) as s:
            row = s.get(SubjectAggregateRow, subject_normalized)
            assert row is not None
            return dict(row.state)

    def snapshots(self) -> list[DidSnapshotRow]:
        with Session(self.engine) as s:
            return list(s.exec(select(DidSnapshotRow)))

    # -- tampering (what an attacker with database access, or a bug, could leave behind)
    def replace_proof(self, review_id: str, position: int, proof: dict[str, Any] | str) -> None:
        text = proof if isinstance(proof, str) else json.dumps(proof, separators=(",", ":"))
        with session_scope(self.engine) as s:
            row = s.get(ReviewRow, review_id)
            assert row is not None
            proofs = list(row.proofs_json)
            proofs[position] = text
            row.proofs_json = proofs
            review = Review(subject=row.subject, version=row.version, rating_value=row.rating_value,
                            review_body=row.review_body, screenshot_urls=tuple(row.screenshot_urls),
                            proofs=tuple(proofs))  # fmt: skip
            row.data_hex = "0x" + encode_review(review=review).hex()
            s.add(row)

    def set_proof_columns(self, review_id: str, position: int, **values: Any) -> None:
        with session_scope(self.engine) as s:
            row = s.exec(select(ProofRow).where(ProofRow.review_id == review_id, ProofRow.position == position)).one()
            for name, value in values.items():
                setattr(row, name, value)
            s.add(row)


@pytest.fixture
def batch_env(
    tmp_path: Path, batch_didweb: DidWebHost, batch_dns: LoopbackDns
) -> Iterator[BatchEnv]:
    batch_didweb.clear()
    batch_dns.clear()
    merchant = Merchant(host=batch_didweb.host)
    batch_didweb.set_document(merchant.did_document())
    clock = Clock()
    with fresh_database_url(tmp_path) as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        chain = start_embedded_chain()
        fetcher = SafeFetcher(
            timeout=3.0, insecure_hosts=frozenset({batch_didweb.host}), ca_file=batch_didweb.ca_pem_path
        )
        rt = Runtime(
            engine=engine,
            eas=chain.client(),
            resolver=DidResolver(fetcher=fetcher, ttl=0),
            controllers=ControllerResolver(nameservers=(batch_dns.nameserver,), timeout=1.0, ttl=0),
            policy=ReviewPolicy(receipt_max_age=7 * 24 * 3600, clock_skew=300),
            clock=clock,
        )
        yield BatchEnv(url=url, engine=engine, rt=rt, chain=chain, host=batch_didweb, dns=batch_dns, clock=clock,
                       merchant=merchant)  # fmt: skip
        engine.dispose()


@pytest.fixture
def cli_env(batch_env: BatchEnv, monkeypatch: pytest.MonkeyPatch) -> BatchEnv:
    """Environment for running ``omatrust`` commands against ``batch_env``'s database, did:web host and DNS."""
    monkeypatch.setenv("OMATRUST_DATABASE_URL", batch_env.url)
    monkeypatch.setenv("OMATRUST_DID_WEB_INSECURE_HOSTS", batch_env.host.host)
    monkeypatch.setenv("OMATRUST_DID_WEB_CA_FILE", batch_env.host.ca_pem_path)
    monkeypatch.setenv("OMATRUST_DNS_NAMESERVERS", batch_env.dns.nameserver)
    monkeypatch.setenv("OMATRUST_DNS_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("OMATRUST_RECEIPT_MAX_AGE_SECONDS", str(7 * 24 * 3600))
    monkeypatch.setenv("OMATRUST_CLOCK_SKEW_SECONDS", "300")
    return batch_env


# ---- forging (independent of the verifier: plain JSON/base64 edits of signed artifacts) -------------------------


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_eip712(wrapper: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The same signature over an edited payload (recovers some other address)."""
    forged = json.loads(json.dumps(wrapper))
    forged["proofObject"]["payload"].update(changes)
    return forged


def forge_jws(wrapper: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The same JWS signature with an edited payload part (no longer verifies)."""
    forged = json.loads(json.dumps(wrapper))
    header, payload, signature = forged["proofObject"]["signature"].split(".")
    body = json.loads(_b64url_decode(payload))
    body.update(changes)
    forged["proofObject"]["signature"] = ".".join(
        [header, _b64url(json.dumps(body, separators=(",", ":"), sort_keys=True).encode()), signature]
    )
    return forged


def forge(wrapper: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``forge_jws`` or ``forge_eip712``, by the artifact's format."""
    fmt = wrapper["proofObject"]["format"]
    return forge_jws(wrapper, **changes) if fmt == "jws" else forge_eip712(wrapper, **changes)

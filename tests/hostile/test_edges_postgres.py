"""Values no database can store, and integers out of range, are refused at the edge with a 4xx and a reason — on a
real ``omatrust serve`` over PostgreSQL (which, unlike SQLite, refuses NUL in text and checks BIGINT bounds).
The poison ``resourceUrl`` of the report is a verdict, never a 500."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

from service.chain.codec import encode_review
from service.cli.demo_kit import Merchant, Reviewer
from service.domain import Review
from tests.hostile.conftest import ServeProcess, start_serve
from tests.hostile.payloads import signed_submission
from tests.support.anvil import free_port
from tests.support.db import PG_ADMIN_URL
from tests.support.dns_server import LoopbackDns

pytestmark = pytest.mark.postgres


CLOSED_PORT = free_port()  # nothing listens there: a did:web fetch to it fails inside the socket library


@pytest.fixture(scope="module")
def pg_serve(tmp_path_factory: pytest.TempPathFactory, loopback_dns: LoopbackDns) -> Iterator[ServeProcess]:
    name = f"omatrust_h_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    serve = start_serve(tmp_path_factory.mktemp("pg"), database_url=f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}", env={
        "OMATRUST_DNS_NAMESERVERS": loopback_dns.nameserver, "OMATRUST_DNS_TIMEOUT_SECONDS": "1",
        "OMATRUST_DID_WEB_INSECURE_HOSTS": f"localhost:{CLOSED_PORT}",
    })  # fmt: skip
    try:
        yield serve
    finally:
        serve.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def client(pg_serve: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pg_serve.url, timeout=30) as c:
        yield c


def problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == code
    assert body["instance"] == f"urn:omatrust:request:{resp.headers['x-correlation-id']}"
    return body


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


DID = quote("did:web:shop.example", safe="")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/services/did%3Aweb%3Ashop%00.example/reviews",
        "/v1/services/did%3Aweb%3Ashop%00.example/reputation",
        "/services/did%3Aweb%3Ashop%00.example",
        "/v1/reviews/abc%00def",
        f"/v1/services/{DID}/reviews?cursor=%00",
    ],
    ids=["reviews-did", "reputation-did", "page-did", "review-id", "query"],
)
def test_nul_in_path_or_query_is_400(client: httpx.Client, path: str) -> None:
    problem(client.get(path), 400, "value-not-storable")


@pytest.mark.parametrize(
    "value",
    [[2**70, "a" * 32], [-(2**70), "a" * 32], [1, "abc\u0000"]],
    ids=["2^70", "-2^70", "nul-id"],
)
def test_cursor_values_the_database_cannot_hold_are_refused(client: httpx.Client, value: list[Any]) -> None:
    problem(client.get(f"/v1/services/{DID}/reviews", params={"cursor": cursor(value)}), 422, "bad-field-value")


def test_ranking_cursor_with_nul_is_refused(client: httpx.Client) -> None:
    resp = client.get("/v1/services", params={"sort": "lower90", "cursor": cursor(["lower90", 0.5, "did:\u0000"])})
    problem(resp, 422, "bad-field-value")


@pytest.mark.parametrize(
    "review",
    [
        '{"subject": "did:web:shop\\u0000.example", "ratingValue": 4}',
        '{"subject": "did:web:shop.example", "ratingValue": 4, "reviewBody": "nice\\u0000"}',
        '{"subject": "did:web:shop.example", "ratingValue": 4, "screenshotUrls": ["https://x/\\u0000"]}',
        '{"subject": "did:web:shop.example", "ratingValue": 4, "reviewBody": "\\ud800"}',
    ],
    ids=["nul-subject", "nul-body", "nul-screenshot", "lone-surrogate"],
)
def test_prepare_refuses_unstorable_text(client: httpx.Client, review: str) -> None:
    body = '{"attester": "0x' + "ab" * 20 + '", "review": ' + review + "}"  # JSON escapes sent as written
    resp = client.post("/v1/reviews/prepare", content=body, headers={"content-type": "application/json"})
    problem(resp, 422, "request-invalid")


@pytest.mark.parametrize(
    "review",
    [Review("did:web:shop\u0000.example", "", 4, "", (), ()),
     Review("did:web:shop.example", "", 4, "nul\u0000", (), ())],
    ids=["nul-subject", "nul-body"],
)
def test_submit_refuses_nul_inside_the_signed_data(client: httpx.Client, review: Review) -> None:
    reviewer = Reviewer()
    prepared = reviewer.prepare(client, subject="did:web:shop.example", ratingValue=4)
    typed = prepared.json()["typedData"]
    data = "0x" + encode_review(review=review).hex()
    typed["message"]["data"] = data  # correctly signed: only the content is hostile
    signed = reviewer.signed_body({"typedData": typed, "data": data})
    body = problem(client.post("/v1/reviews", json=signed), 422, "attestation-data-invalid")
    assert "NUL" in body["detail"]


@pytest.mark.parametrize("field", ["deadline", "nonce"])
def test_integer_fields_out_of_range_are_4xx(client: httpx.Client, field: str) -> None:
    body = {"attester": "0x" + "ab" * 20, "data": "0x", "deadline": 1, "nonce": 1, "signature": "0x" + "11" * 65}
    body[field] = 2**256 if field == "nonce" else 2**64
    problem(client.post("/v1/reviews", json=body), 422, "request-invalid")


def test_poison_resource_url_is_a_verdict_not_a_500(client: httpx.Client) -> None:
    merchant = Merchant(host="localhost:%31%38%35%31%30", scheme="http")
    receipt = merchant.receipt(payer="0x" + "11" * 20, issued_at=int(time.time()) - 60, path="/w")
    resp = client.post("/v1/proofs/verify", json=receipt)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["status"], resp.json()["reason"]) == ("invalid", "bad-field-value")
    # and inside a review: judged, never a 500
    signed = signed_submission(client, Reviewer(), subject=merchant.did, proofs=[receipt])
    assert client.post("/v1/reviews", json=signed).status_code in (201, 409, 422)


def test_problem_details_keep_secrets_in_the_log(client: httpx.Client, pg_serve: ServeProcess) -> None:
    # the proof names a did:web host where nothing listens: 503, in our words only (no socket error text, no URL)
    merchant = Merchant(host=f"localhost:{CLOSED_PORT}", scheme="http")
    reviewer = Reviewer()
    receipt = merchant.receipt(payer=reviewer.address, issued_at=int(time.time()) - 60, fmt="jws")
    resp = client.post("/v1/reviews", json=signed_submission(client, reviewer, subject=merchant.did, proofs=[receipt]))
    body = problem(resp, 503, "fetch-failed")
    assert resp.headers["retry-after"]
    assert "://" not in resp.text
    correlation = resp.headers["x-correlation-id"]
    deadline = time.monotonic() + 10
    while correlation not in pg_serve.log():  # the server logged the full story under the id it gave the client
        assert time.monotonic() < deadline, "correlation id not logged"
        time.sleep(0.05)
    assert body["detail"]
    verdict = client.post("/v1/proofs/verify", json=receipt)
    assert verdict.status_code == 200
    assert "://" not in verdict.text


def test_json_with_too_many_values_is_refused_before_parsing(client: httpx.Client) -> None:
    body = b'{"format": "jws", "pad": [' + b"0," * 25_000 + b"0]}"  # ~50 KB: under the size cap, over the value budget
    resp = client.post("/v1/proofs/verify", content=body, headers={"content-type": "application/json"})
    problem(resp, 422, "json-too-many-values")
    assert client.get("/healthz").status_code == 200


def test_nul_inside_a_signed_proof_never_reaches_the_database(client: httpx.Client) -> None:
    from service.domain import ArtifactKind, ReceiptPayload
    from service.proofs.issuer import proof_wrapper, sign_receipt_jws

    merchant = Merchant(host="shop.example")
    reviewer = Reviewer()
    payload = ReceiptPayload(version=1, network="eip155:8453", resource_url="https://shop.example/w",
                             payer=reviewer.address, issued_at=int(time.time()) - 60, transaction="")  # fmt: skip
    envelope = sign_receipt_jws(payload=payload, private_jwk=merchant.jws_key, kid="did:web:shop.example\u0000#k")
    receipt = proof_wrapper(artifact=envelope, kind=ArtifactKind.RECEIPT, issued_at=payload.issued_at)
    resp = client.post("/v1/reviews", json=signed_submission(client, reviewer, subject=merchant.did, proofs=[receipt]))
    assert resp.status_code < 500, resp.text
    # an unknown proof type is stored as "unsupported": with a NUL in its name it must be refused instead
    odd = {"proofType": "x402-receipt\u0000", "proofPurpose": "commercial-tx", "proofObject": {}}
    resp = client.post("/v1/reviews", json=signed_submission(client, Reviewer(), subject=merchant.did, proofs=[odd]))
    problem(resp, 422, "value-not-storable")

"""``evidence-pointer`` proofs (OMATrust proofs spec §5.3.5) against the real loopback HTTPS host: the document on the
subject's own host must carry ``v=1;controller=<DID>`` naming the reviewer. One test per outcome and reason code:
verified (raw text, JSON object, several controllers), controller mismatch (unauthorized), malformed record, host
mismatch (nothing fetched), private address, redirect, oversize (invalid), fetch failures (indeterminate, never
a downgrade), malformed wrappers."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account

from service.domain import ProofStatus, Reason, Review
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.verdicts import ReviewPolicy, judge_review
from service.verdicts.evidence_pointer import names_attester, parse_evidence, url_on_subject_host
from service.verdicts.registry import EVIDENCE_CLASSES, NONE, spec_for
from service.workflows.evaluate import evaluate_review
from service.workflows.evidence_pointer import check_evidence_pointers
from tests.support.didweb_host import DidWebHost

PATH = "/.well-known/omatrust-proof.txt"
NOW = 1_800_000_000
REVIEWER = Account.create().address


@pytest.fixture(scope="module")
def _host() -> Iterator[DidWebHost]:
    with DidWebHost() as host:
        yield host


@pytest.fixture
def host(_host: DidWebHost) -> DidWebHost:
    _host.clear()
    return _host


def fetcher_for(host: DidWebHost, *extra: str, max_bytes: int = 65536) -> SafeFetcher:
    return SafeFetcher(timeout=2.0, ca_file=host.ca_pem_path, insecure_hosts=frozenset({host.host, *extra}),
                       max_bytes=max_bytes)  # fmt: skip


def pointer(url: str, **wrapper: Any) -> str:
    return json.dumps({"proofType": "evidence-pointer", "proofPurpose": "shared-control", "proofObject": {"url": url},
                       **wrapper})  # fmt: skip


def judged(host: DidWebHost, *proofs: str, subject: str | None = None, fetcher: SafeFetcher | None = None,
           attester: str = REVIEWER) -> Any:  # fmt: skip
    review = Review(subject=subject or host.did, version="", rating_value=4, review_body="", screenshot_urls=(),
                    proofs=proofs)  # fmt: skip
    return evaluate_review(review=review, attester=attester.lower(), review_time=NOW, now=NOW,
                           resolver=DidResolver(fetcher=fetcher or fetcher_for(host), ttl=0), controllers=None,
                           policy=ReviewPolicy())  # fmt: skip


def only(verdict: Any) -> tuple[ProofStatus, Reason | None]:
    (p,) = verdict.proofs
    return p.outcome.status, p.outcome.reason


def test_record_naming_the_reviewer_verifies_and_gives_its_own_weak_class(host: DidWebHost) -> None:
    host.set(PATH, f"v=1;controller=did:pkh:eip155:66238:{REVIEWER}", headers={"Content-Type": "text/plain"})
    verdict = judged(host, pointer(host.base_url + PATH))
    assert only(verdict) == (ProofStatus.VERIFIED, None)
    assert verdict.evidence == "evidence-pointer"
    assert not verdict.verified_purchase
    assert verdict.proofs[0].outcome.checked_at == NOW
    assert spec_for("evidence-pointer") is None  # not an artifact type: judged by the fetch, not the pipeline
    assert EVIDENCE_CLASSES.index("evidence-pointer") == EVIDENCE_CLASSES.index(NONE) - 1  # just above none
    assert [r.path for r in host.requests] == [PATH]


def test_json_object_record_with_co_controllers_and_prose_verifies(host: DidWebHost) -> None:
    other = Account.create().address
    text = f"Our wallets: controller=did:pkh:eip155:1:{other}  v=1 ; controller=did:pkh:eip155:8453:{REVIEWER.lower()}"
    host.set_json("/proof.json", {"evidence": text, "note": "ignored"})
    assert only(judged(host, pointer(host.base_url + "/proof.json"))) == (ProofStatus.VERIFIED, None)


def test_record_naming_someone_else_is_unauthorized_controller_mismatch(host: DidWebHost) -> None:
    host.set(PATH, f"v=1;controller=did:pkh:eip155:1:{Account.create().address}")
    verdict = judged(host, pointer(host.base_url + PATH))
    assert only(verdict) == (ProofStatus.UNAUTHORIZED, Reason.EVIDENCE_CONTROLLER_MISMATCH)
    assert verdict.evidence == NONE


@pytest.mark.parametrize("body", [
    f"controller=did:pkh:eip155:1:{REVIEWER}",  # no v=1
    f"v=2;controller=did:pkh:eip155:1:{REVIEWER}",  # another version
    "v=1",  # no controller
    f"v=1;controller={REVIEWER}",  # a bare address is not a DID
    '{"other": "v=1;controller=did:pkh:eip155:1:0x0"}',  # a JSON object without an evidence string
    b"\xff\xfe v=1",  # not UTF-8
], ids=["no-version", "version-2", "no-controller", "bare-address", "json-without-evidence", "not-utf8"])  # fmt: skip
def test_malformed_record_is_invalid(host: DidWebHost, body: str | bytes) -> None:
    host.set(PATH, body)
    assert only(judged(host, pointer(host.base_url + PATH))) == (ProofStatus.INVALID, Reason.EVIDENCE_RECORD_MALFORMED)


def test_url_on_another_host_is_refused_before_any_fetch(host: DidWebHost) -> None:
    host.set(PATH, f"v=1;controller=did:pkh:eip155:1:{REVIEWER}")
    verdict = judged(host, pointer(host.base_url + PATH), subject="did:web:shop.example.com")
    assert only(verdict) == (ProofStatus.INVALID, Reason.EVIDENCE_HOST_MISMATCH)
    assert host.requests == []  # a review cannot make the service fetch from a host it does not review
    pkh = judged(host, pointer(host.base_url + PATH), subject=f"did:pkh:eip155:1:{REVIEWER}")
    assert only(pkh) == (ProofStatus.INVALID, Reason.EVIDENCE_HOST_MISMATCH)


def test_private_address_is_refused(host: DidWebHost) -> None:
    # The same loopback server named by its IP: not a development host, so the SSRF policy refuses the address.
    subject = f"did:web:127.0.0.1%3A{host.port}"
    host.set(PATH, f"v=1;controller=did:pkh:eip155:1:{REVIEWER}")
    verdict = judged(host, pointer(f"https://127.0.0.1:{host.port}{PATH}"), subject=subject)
    assert only(verdict) == (ProofStatus.INVALID, Reason.FETCH_ADDRESS_REFUSED)
    assert host.requests == []


def test_redirect_is_refused(host: DidWebHost) -> None:
    host.set(PATH, f"v=1;controller=did:pkh:eip155:1:{REVIEWER}")
    host.set_redirect("/moved", host.base_url + PATH)
    assert only(judged(host, pointer(host.base_url + "/moved"))) == (ProofStatus.INVALID,
                                                                    Reason.FETCH_REDIRECT_REFUSED)  # fmt: skip
    assert [r.path for r in host.requests] == ["/moved"]


def test_oversize_document_is_refused(host: DidWebHost) -> None:
    host.set(PATH, f"v=1;controller=did:pkh:eip155:1:{REVIEWER} " + "x" * 5000, content_length=False)
    verdict = judged(host, pointer(host.base_url + PATH), fetcher=fetcher_for(host, max_bytes=4096))
    assert only(verdict) == (ProofStatus.INVALID, Reason.FETCH_TOO_LARGE)


def test_server_error_is_indeterminate_not_a_downgrade(host: DidWebHost) -> None:
    host.set(PATH, "try later", status=503)
    verdict = judged(host, pointer(host.base_url + PATH))
    assert only(verdict) == (ProofStatus.INDETERMINATE, Reason.FETCH_HTTP_STATUS)
    assert verdict.evidence == NONE


def test_unreachable_host_is_indeterminate(host: DidWebHost) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subject = f"did:web:localhost%3A{port}"
    verdict = judged(host, pointer(f"https://localhost:{port}{PATH}"), subject=subject,
                     fetcher=fetcher_for(host, f"localhost:{port}"))  # fmt: skip
    assert only(verdict) == (ProofStatus.INDETERMINATE, Reason.FETCH_FAILED)


@pytest.mark.parametrize(("wrapper", "reason"), [
    ({"proofType": "evidence-pointer", "proofObject": {"url": "https://x"}}, Reason.MISSING_FIELD),  # no purpose
    ({"proofType": "evidence-pointer", "proofPurpose": "commercial-tx", "proofObject": {"url": "https://x"}},
     Reason.BAD_FIELD_VALUE),
    ({"proofType": "evidence-pointer", "proofPurpose": "shared-control"}, Reason.MISSING_FIELD),
    ({"proofType": "evidence-pointer", "proofPurpose": "shared-control", "proofObject": {}}, Reason.MISSING_FIELD),
    ({"proofType": "evidence-pointer", "proofPurpose": "shared-control", "proofObject": {"url": "ftp://h/x"}},
     Reason.BAD_FIELD_VALUE),
    ({"proofType": "evidence-pointer", "proofPurpose": "shared-control",
      "proofObject": {"url": "https://u:p@h/x"}}, Reason.BAD_FIELD_VALUE),
])  # fmt: skip
def test_malformed_wrapper_is_invalid(host: DidWebHost, wrapper: dict[str, Any], reason: Reason) -> None:
    assert only(judged(host, json.dumps(wrapper))) == (ProofStatus.INVALID, reason)
    assert host.requests == []


def test_without_a_fetcher_is_indeterminate(host: DidWebHost) -> None:
    review = Review(subject=host.did, version="", rating_value=4, review_body="", screenshot_urls=(),
                    proofs=(pointer(host.base_url + PATH),))  # fmt: skip
    verdict = judge_review(review=review, attester=REVIEWER.lower(), review_time=NOW, now=NOW, documents=None,
                           controllers=None, policy=ReviewPolicy())  # fmt: skip
    assert only(verdict)[0] is ProofStatus.UNSUPPORTED  # what the artifact pipeline alone says
    checked = check_evidence_pointers(verdict=verdict, review=review, attester=REVIEWER, fetcher=None, now=NOW)
    assert only(checked) == (ProofStatus.INDETERMINATE, Reason.FETCH_FAILED)


def test_subject_host_and_controller_matching_rules() -> None:
    assert url_on_subject_host(url="https://Shop.Example.com/p", subject="did:web:shop.example.com")
    assert url_on_subject_host(url="https://shop.example.com:443/p", subject="did:web:shop.example.com")
    assert url_on_subject_host(url="https://localhost:4021/p", subject="did:web:localhost%3A4021")
    assert url_on_subject_host(url="https://shop.example.com/p", subject="did:web:shop.example.com:u:alice")
    assert not url_on_subject_host(url="https://localhost:4022/p", subject="did:web:localhost%3A4021")
    assert not url_on_subject_host(url="https://evil.shop.example.com/p", subject="did:web:shop.example.com")
    assert not url_on_subject_host(url="https://shop.example.com.evil/p", subject="did:web:shop.example.com")
    address = Account.create().address
    assert names_attester(controller=f"did:pkh:eip155:1:{address.lower()}", attester=address)
    assert not names_attester(controller=f"did:pkh:eip155:x:{address}", attester=address)
    assert not names_attester(controller=f"did:pkh:solana:1:{address}", attester=address)
    assert not names_attester(controller=f"did:web:{address}", attester=address)
    assert parse_evidence(b"v=1 controller=did:web:a.example").controllers == ("did:web:a.example",)

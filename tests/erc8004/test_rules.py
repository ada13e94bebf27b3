"""Pure ERC-8004 rules and the URI fetcher's local paths (data:, ipfs gateway over real loopback TLS)."""

from __future__ import annotations

import base64
import json

import pytest
from eth_utils.crypto import keccak

from service.domain import TxLog, TxObservation
from service.errors import FetchFailed, MalformedInput
from service.identity.fetcher import SafeFetcher
from service.verdicts.erc8004 import (
    FeedbackFacts,
    FeedbackReason,
    ProofOfPayment,
    hash_matches,
    judge_payment,
    parse_feedback_file,
    parse_registration,
    rating_feedback_file,
    rating_unit,
    recheck_replaces,
    score_units,
    summarize,
)
from service.verdicts.payment import TRANSFER_TOPIC
from service.workflows.erc8004_fetch import UriFetcher
from tests.support.didweb_host import DidWebHost

CLIENT = "0x" + "aa" * 20
WALLET = "0x" + "bb" * 20
OTHER = "0x" + "cc" * 20
TX = "0x" + "11" * 32
BASE = {"agentRegistry": "eip155:1:0x" + "00" * 20, "agentId": 3, "clientAddress": f"eip155:1:{CLIENT}",
        "createdAt": "2026-11-30T00:00:00Z", "value": 5, "valueDecimals": 0}  # fmt: skip


def _word(address: str) -> str:
    return "0x" + "00" * 12 + address[2:]


def _observation(*, sender: str, to: str, status: int = 1, mined: bool = True, known: bool = True) -> TxObservation:
    log = TxLog(
        address="0x" + "dd" * 20, topics=(TRANSFER_TOPIC, _word(sender), _word(to)), data="0x" + "00" * 31 + "64"
    )
    return TxObservation(network="eip155:1", transaction=TX, head=10, mined=mined, known=known,
                         status=status if mined else None, block_number=5 if mined else None, logs=(log,))  # fmt: skip


@pytest.mark.parametrize("missing", sorted(BASE))
def test_each_required_field_is_required(missing: str) -> None:
    doc = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(MalformedInput):
        parse_feedback_file(json.dumps(doc).encode())


def test_hash_rules() -> None:
    data = b'{"a":1}'
    assert hash_matches(uri="https://x/f.json", data=data, feedback_hash="0x" + keccak(data).hex())
    assert not hash_matches(uri="https://x/f.json", data=data, feedback_hash="0x" + "00" * 32)
    assert hash_matches(uri="ipfs://bafy/f.json", data=data, feedback_hash="0x" + "00" * 32)
    assert not hash_matches(uri="ipfs://bafy/f.json", data=data, feedback_hash="0x" + "12" * 32)


@pytest.mark.parametrize(
    ("proof_to", "paid_to", "obs", "expected"),
    [
        (WALLET, WALLET, {}, None),
        (OTHER, OTHER, {}, FeedbackReason.PAYMENT_WRONG_PAYEE),
        (WALLET, OTHER, {}, FeedbackReason.PAYMENT_WRONG_PAYEE),
        (WALLET, WALLET, {"status": 0}, FeedbackReason.PAYMENT_REVERTED),
        (WALLET, WALLET, {"mined": False}, FeedbackReason.PAYMENT_PENDING),
        (WALLET, WALLET, {"mined": False, "known": False}, FeedbackReason.PAYMENT_NOT_FOUND),
    ],
)  # fmt: skip
def test_payment_rules(proof_to: str, paid_to: str, obs: dict[str, object], expected: FeedbackReason | None) -> None:
    proof = ProofOfPayment(CLIENT, proof_to, 1, TX)
    observation = _observation(sender=CLIENT, to=paid_to, **obs)  # type: ignore[arg-type]
    assert judge_payment(proof=proof, client=CLIENT, payees={WALLET}, observation=observation) == expected


def test_proof_from_someone_else_than_the_client_is_wrong_payer() -> None:
    proof = ProofOfPayment(OTHER, WALLET, 1, TX)
    observation = _observation(sender=OTHER, to=WALLET)
    assert judge_payment(proof=proof, client=CLIENT, payees={WALLET}, observation=observation) == (
        FeedbackReason.PAYMENT_WRONG_PAYER)  # fmt: skip


def test_registration_services() -> None:
    reg = parse_registration(json.dumps({"services": [
        {"name": "DID", "endpoint": "did:web:a.example"}, {"name": "DID", "endpoint": "not a did"},
        {"name": "web", "endpoint": "https://shop.example:8443/x"}, {"name": "web", "endpoint": "http://plain.example"},
        {"name": "agentWallet", "endpoint": f"eip155:8453:{WALLET}"}, {"name": "MCP", "endpoint": "https://m"},
    ], "registrations": [{"agentId": 7, "agentRegistry": "eip155:8453:0xABC"}]}).encode())  # fmt: skip
    assert reg.dids == ("did:web:a.example",)
    assert reg.web_dids == ("did:web:shop.example%3A8443",)
    assert reg.wallets == (WALLET,)
    assert reg.registrations == (("eip155:8453:0xabc", 7),)


def test_summary_excludes_revoked_and_self_feedback() -> None:
    ok, no = "payment-verified", "unverified"
    facts = [
        FeedbackFacts(value=450, decimals=2, tag1="starred", status=ok, self_feedback=False, revoked=False),
        FeedbackFacts(value=2, decimals=0, tag1="starred", status=no, self_feedback=False, revoked=False),
        FeedbackFacts(value=99, decimals=0, tag1="uptime", status=no, self_feedback=False, revoked=False),
        FeedbackFacts(value=5, decimals=0, tag1="starred", status=ok, self_feedback=True, revoked=False),
        FeedbackFacts(value=1, decimals=0, tag1="starred", status=ok, self_feedback=False, revoked=True),
    ]
    summary = summarize(facts)
    assert (summary.count, summary.rated, summary.payment_verified) == (3, 2, 1)
    assert summary.mean == pytest.approx((4.5 + 2) / 2)
    assert (summary.self_feedback, summary.revoked) == (1, 1)


def test_our_feedback_file_parses_back() -> None:
    body = rating_feedback_file(agent_registry=str(BASE["agentRegistry"]), agent_id=3, client_address=CLIENT,
                                created_at="2026-11-30T00:00:00Z", rating=4,
                                proof=ProofOfPayment(CLIENT, WALLET, 1, TX), attestation=None,
                                review_url="https://r/v1/reviews/x")  # fmt: skip
    parsed = parse_feedback_file(body)
    assert (parsed.value, parsed.value_decimals, parsed.client_address) == (75, 0, CLIENT)  # 4★ on the 0–100 scale
    assert parsed.proof_of_payment == ProofOfPayment(CLIENT, WALLET, 1, TX)
    registry = str(BASE["agentRegistry"])
    values = [json.loads(rating_feedback_file(agent_registry=registry, agent_id=3, client_address=CLIENT,
                                              created_at="t", rating=r, proof=None, attestation=None,
                                              review_url="u"))["value"] for r in (1, 2, 3, 4, 5)]  # fmt: skip
    assert values == [0, 25, 50, 75, 100]
    assert [rating_unit(value=v, decimals=0, tag1="starred") for v in values] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_rating_units_are_on_the_0_to_100_scale() -> None:
    assert rating_unit(value=8750, decimals=2, tag1="starred") == pytest.approx(0.875)
    assert rating_unit(value=87, decimals=0, tag1="Rating") == pytest.approx(0.87)
    assert rating_unit(value=101, decimals=0, tag1="starred") is None  # off the scale
    assert rating_unit(value=-1, decimals=0, tag1="starred") is None
    assert rating_unit(value=99, decimals=0, tag1="uptime") is None  # not a rating


def test_score_units_take_verified_live_ratings_once_per_client() -> None:
    ok, no = "payment-verified", "unverified"

    def fact(value: int, *, client: str, at: tuple[int, int], status: str = ok, **kw: bool) -> FeedbackFacts:
        return FeedbackFacts(value=value, decimals=0, tag1="starred", status=status, client=client, position=at,
                             self_feedback=kw.get("self_feedback", False),
                             revoked=kw.get("revoked", False))  # fmt: skip

    units = score_units([
        fact(20, client="a", at=(5, 0)), fact(80, client="a", at=(7, 1)),  # a: the latest counts
        fact(100, client="b", at=(6, 0)), fact(0, client="b", at=(9, 0), revoked=True),  # a revoked one does not
        fact(0, client="c", at=(3, 0), status=no), fact(0, client="d", at=(3, 1), self_feedback=True),
        fact(500, client="e", at=(4, 0)),  # off the 0–100 scale
    ])  # fmt: skip
    assert sorted(units) == [0.8, 1.0]


@pytest.mark.parametrize(
    ("old", "new", "replaces"),
    [
        (("unverified", "payment-not-found"), ("payment-verified", None), True),
        (("unverified", "payment-pending"), ("unverified", "payment-reverted"), True),
        (("unverified", "rpc-failed"), ("unverified", "payment-wrong-payee"), True),
        (("unverified", "network-not-configured"), ("payment-verified", None), True),
        (("unverified", "payment-pending"), ("unverified", "rpc-failed"), False),  # node down: keep
        (("unverified", "payment-not-found"), ("rejected", "fetch-timeout"), False),  # file unreachable now: keep
        (("unverified", "payment-pending"), ("unverified", "payment-pending"), False),
        (("payment-verified", None), ("unverified", "payment-reverted"), False),  # never a downgrade
        (("unverified", "payment-wrong-payee"), ("payment-verified", None), False),  # final: not re-opened
        (("rejected", "feedback-hash-mismatch"), ("payment-verified", None), False),
    ],
)
def test_a_recheck_replaces_only_open_verdicts_with_settled_ones(
    old: tuple[str, str | None], new: tuple[str, str | None], replaces: bool
) -> None:
    assert recheck_replaces(old_status=old[0], old_reason=old[1], new_status=new[0], new_reason=new[1]) is replaces


def test_data_uris_are_decoded_and_bounded() -> None:
    files = UriFetcher(fetcher=SafeFetcher(timeout=1), ipfs_gateway="https://ipfs.invalid", max_bytes=100)
    assert files.fetch(uri="data:application/json;base64," + base64.b64encode(b'{"a":1}').decode()) == b'{"a":1}'
    assert files.fetch(uri="data:application/json,%7B%7D") == b"{}"
    with pytest.raises(FetchFailed) as info:
        files.fetch(uri="data:application/json;base64," + base64.b64encode(b"x" * 101).decode())
    assert info.value.reason.value == "fetch-too-large"
    with pytest.raises(FetchFailed) as info:
        files.fetch(uri="ftp://example.com/x")
    assert info.value.reason.value == "fetch-scheme-refused"


def test_ipfs_goes_through_the_configured_gateway() -> None:
    with DidWebHost() as host:
        host.start()
        host.set("/ipfs/bafyfeedback/f.json", b'{"ok":true}')
        fetcher = SafeFetcher(timeout=3, ca_file=str(host.ca_pem_path), insecure_hosts=frozenset({host.host}))
        files = UriFetcher(fetcher=fetcher, ipfs_gateway=host.base_url + "/")
        assert files.fetch(uri="ipfs://bafyfeedback/f.json") == b'{"ok":true}'
        assert [r.path for r in host.requests_for("/ipfs/bafyfeedback/f.json")] == ["/ipfs/bafyfeedback/f.json"]

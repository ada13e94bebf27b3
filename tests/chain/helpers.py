"""Shared test helpers: reviews, reviewer-signed delegated requests (signed with eth-account, the reference)."""

from __future__ import annotations

import time
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from service.chain.codec import encode_review, review_recipient
from service.chain.delegation import DelegatedRequest
from service.chain.eas_relayer import EasClient
from service.domain import Review

PROOF = (
    '{"proofType":"x402-receipt","proofPurpose":"commercial-tx","proofObject":{"format":"eip712",'
    '"payload":{"version":1,"network":"eip155:8453","resourceUrl":"https://api.example.com/x","payer":"0x0",'
    '"issuedAt":1700000000,"transaction":""},"signature":"0x' + "ab" * 65 + '"}}'
)


def make_review(i: int = 0, *, body: str = "Fast and correct answers.", subject: str | None = None) -> Review:
    return Review(
        subject=subject or f"did:web:api{i}.example.com",
        version="1.0.0",
        rating_value=1 + i % 5,
        review_body=body,
        screenshot_urls=(),
        proofs=(PROOF,),
    )


def sign_request(
    client: EasClient,
    reviewer: LocalAccount,
    review: Review,
    *,
    nonce: int | None = None,
    deadline: int | None = None,
) -> tuple[DelegatedRequest, dict[str, Any]]:
    """Build the typed data through the client, sign it with eth-account's ``sign_typed_data(full_message=...)``."""
    data = encode_review(review=review)
    recipient = review_recipient(subject=review.subject)
    deadline = int(time.time()) + 3600 if deadline is None else deadline
    typed = client.build_attest_typed_data(
        attester=reviewer.address, data=data, recipient=recipient, deadline=deadline, nonce=nonce
    )
    signature = Account.sign_typed_data(reviewer.key, full_message=typed).signature
    request = DelegatedRequest(
        attester=reviewer.address,
        data=data,
        recipient=recipient,
        deadline=deadline,
        nonce=typed["message"]["nonce"],
        signature=bytes(signature),
    )
    return request, typed


def attested_count(client: EasClient, *, attester: str) -> int:
    """How many User Review attestations ``attester`` has on chain (independent of any outbox)."""
    return sum(1 for _ in client.attested_logs(from_block=0, to_block=client.block_number(), attester=attester))


def relayer_state(client: EasClient) -> tuple[int, int]:
    """(balance, transaction count) of the relayer: unchanged ⇔ no gas was spent."""
    assert client.relayer is not None
    w3 = client.w3
    return int(w3.eth.get_balance(client.relayer.address)), int(w3.eth.get_transaction_count(client.relayer.address))

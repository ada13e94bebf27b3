"""Hostile inputs built in the tests (no fixtures on disk): ABI pointer aliasing and friends."""

from __future__ import annotations

import json
from typing import Any

import httpx

from service.chain.codec import encode_review
from service.cli.demo_kit import Reviewer
from service.domain import Review

WORD = 32


def _word(value: int) -> bytes:
    return value.to_bytes(WORD, "big")


def _string_tail(raw: bytes) -> bytes:
    return _word(len(raw)) + raw + b"\x00" * (-len(raw) % WORD)


def aliased_review_data(*, subject: str = "did:web:example.com", shared_bytes: int = 48 * 1024,
                        pointers: int = 1450) -> bytes:  # fmt: skip
    """User Review ABI data whose ``proofs`` array holds ``pointers`` offsets that all point at one
    ``shared_bytes``-long string: a naive decoder builds ``pointers`` copies of it (~70 MB from ~95 KB)."""
    tails = [_string_tail(subject.encode()), _string_tail(b""), _string_tail(b""), _word(0)]
    head_size = 6 * WORD
    offsets = []
    position = head_size
    for tail in tails:
        offsets.append(position)
        position += len(tail)
    proofs_offset = position
    head = _word(offsets[0]) + _word(offsets[1]) + _word(5) + _word(offsets[2]) + _word(offsets[3])
    head += _word(proofs_offset)
    # every element offset (relative to the first offset word) points at the single string after the offsets
    proofs = _word(pointers) + _word(pointers * WORD) * pointers + _string_tail(b"A" * shared_bytes)
    return head + b"".join(tails) + proofs


def signed_submission(
    client: httpx.Client, reviewer: Reviewer, *, subject: str, proofs: list[dict[str, Any]], body: str = ""
) -> dict[str, Any]:
    """A correctly signed ``POST /v1/reviews`` body whose proofs were never looked at by the server: the EAS typed
    data (nonce, deadline, domain) is prepared for a proof-less review, then its ``data`` replaced by ours."""
    prepared = reviewer.prepare(client, subject=subject, ratingValue=4)
    assert prepared.status_code == 200, prepared.text
    typed = prepared.json()["typedData"]
    review = Review(subject=subject, version="", rating_value=4, review_body=body, screenshot_urls=(),
                    proofs=tuple(json.dumps(p, separators=(",", ":"), ensure_ascii=False) for p in proofs))  # fmt: skip
    data = "0x" + encode_review(review=review).hex()
    typed["message"]["data"] = data
    return reviewer.signed_body({"typedData": typed, "data": data})

"""Fuzz targets over the two decoders that read bytes anyone can write: the User Review ABI decoder (chain data,
``POST /v1/reviews``) and the x402 artifact parser (proofs, ``POST /v1/proofs/verify``).

Each target takes raw bytes and either returns or raises one of our domain errors; anything else — or a decoded
review that does not re-encode to the same bytes — is a crash. Used by ``fuzz/fuzz_decoders.py`` (atheris) and by
``tests/hostile/test_fuzz_corpus.py`` (every committed seed and crash input, as a regular test).
"""

from __future__ import annotations

from collections.abc import Callable

from service.chain.codec import decode_review, encode_review
from service.errors import OmaTrustError
from service.proofs.parse import parse_artifact


def review_target(data: bytes) -> None:
    try:
        review = decode_review(data=data)
    except OmaTrustError:
        return
    if encode_review(review=review) != data:
        raise AssertionError("a decoded review does not re-encode to its input")


def artifact_target(data: bytes) -> None:
    try:
        parse_artifact(data=data)
    except OmaTrustError:
        return


TARGETS: dict[str, Callable[[bytes], None]] = {"review": review_target, "artifact": artifact_target}

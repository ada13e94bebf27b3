"""Every committed fuzz input — the seed corpus and any crash the fuzzer ever found (``fuzz/crashes/<target>/``) —
replayed through its target as a regular test: a decoder may only return or raise one of our domain errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.targets import TARGETS
from service.chain.codec import encode_review
from service.domain import Review

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
INPUTS = sorted(
    (target, path)
    for target in TARGETS
    for folder in (FUZZ / "corpus" / target, FUZZ / "crashes" / target)
    if folder.is_dir()
    for path in folder.iterdir()
    if path.is_file()
)


def test_every_target_has_seeds() -> None:
    assert {target for target, _ in INPUTS} == set(TARGETS)


@pytest.mark.parametrize(("target", "path"), INPUTS, ids=[f"{t}/{p.parent.name}/{p.name}" for t, p in INPUTS])
def test_committed_input_does_not_crash(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())


def test_the_review_target_flags_a_decoder_that_is_not_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    import fuzz.targets as targets

    data = encode_review(review=Review("did:web:a.example", "", 3, "", (), ()))
    monkeypatch.setattr(targets, "encode_review", lambda *, review: b"")  # a decoder/encoder that disagree
    with pytest.raises(AssertionError):
        targets.review_target(data)

"""Named inputs in assets/ (see make_assets.py): each is parsed and, for the verify stage, checked with its key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service import errors
from service.domain import ArtifactFormat, ArtifactKind, Reason, VerificationKey
from service.proofs import parse_artifact, recover_eip712_signer, verify_jws
from tests.proofs import make_assets

ASSET_FILES = sorted(make_assets.ASSETS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def run(asset: dict[str, Any]) -> Any:
    data = asset["input_text"] if "input_text" in asset else asset["input"]
    expect = ArtifactKind(asset["expect"]) if asset["expect"] else None
    artifact = parse_artifact(data=data, expect=expect)
    if asset["stage"] == "parse":
        return artifact
    if artifact.format is ArtifactFormat.EIP712:
        return recover_eip712_signer(artifact=artifact)
    verify_jws(artifact=artifact, key=VerificationKey(id=artifact.kid or "", controller="", jwk=asset["key"]))
    return artifact


def test_assets_are_up_to_date() -> None:
    """The files on disk are exactly what the (deterministic) generator produces."""
    built = make_assets.build_assets()
    assert sorted(p.stem for p in ASSET_FILES) == sorted(built)
    for path in ASSET_FILES:
        assert path.read_text(encoding="utf-8") == make_assets.render(built[path.stem]), path.name


@pytest.mark.parametrize("path", [p for p in ASSET_FILES if p.stem.startswith("good-")], ids=lambda p: p.stem)
def test_good_asset(path: Path) -> None:
    asset = load(path)
    assert asset["error"] is None
    result = run(asset)
    if "signer" in asset:
        assert result == asset["signer"]


@pytest.mark.parametrize("path", [p for p in ASSET_FILES if p.stem.startswith("bad-")], ids=lambda p: p.stem)
def test_bad_asset(path: Path) -> None:
    asset = load(path)
    error_type = getattr(errors, asset["error"])
    with pytest.raises(error_type) as info:
        run(asset)
    assert info.value.reason is Reason(asset["reason"]), info.value

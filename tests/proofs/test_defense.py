"""The crypto entry points re-check what parse_artifact already checked (artifacts may be built by other code),
and every Reason the package can raise has a named test."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from service.domain import ArtifactKind, Reason, ReceiptPayload, VerificationKey
from service.errors import SignatureInvalid
from service.proofs import (
    generate_private_jwk,
    jwk_to_public_jwk,
    parse_artifact,
    recover_eip712_signer,
    sign_receipt_eip712,
    sign_receipt_jws,
    verify_jws,
)

RECEIPT = ReceiptPayload(1, "eip155:8453", "https://api.example.com/x", "0xAbC", 1_700_000_000, "")
PROOFS_SRC = Path(__file__).parents[2] / "service" / "proofs"
TESTS = Path(__file__).parent


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda s: s[2:], Reason.SIGNATURE_ENCODING),
        (lambda s: s[:130], Reason.SIGNATURE_COMPACT),
        (lambda s: s[:-2] + "1d", Reason.SIGNATURE_BAD_V),
        (lambda s: "0x" + "00" * 32 + s[66:], Reason.SIGNATURE_INVALID),
        (lambda s: s[:66] + "ff" * 32 + s[130:], Reason.SIGNATURE_INVALID),  # s >= n
    ],
)
def test_recover_rechecks_signature_form(mutate: object, reason: Reason) -> None:
    artifact = parse_artifact(data=sign_receipt_eip712(payload=RECEIPT, private_key=b"\x03" * 32))
    bad = dataclasses.replace(artifact, signature=mutate(artifact.signature))  # type: ignore[operator]
    with pytest.raises(SignatureInvalid) as info:
        recover_eip712_signer(artifact=bad)
    assert info.value.reason is reason


def test_recover_refuses_a_jws_artifact() -> None:
    artifact = parse_artifact(
        data=sign_receipt_jws(payload=RECEIPT, private_jwk=generate_private_jwk(crv="P-256"), kid="did:web:a#k")
    )
    with pytest.raises(SignatureInvalid) as info:
        recover_eip712_signer(artifact=artifact)
    assert info.value.reason is Reason.UNSUPPORTED_FORMAT


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", None])
def test_verify_jws_rechecks_the_alg(alg: str | None) -> None:
    private = generate_private_jwk(crv="P-256")
    artifact = parse_artifact(data=sign_receipt_jws(payload=RECEIPT, private_jwk=private, kid="did:web:a#k"))
    key = VerificationKey(id="did:web:a#k", controller="did:web:a", jwk=jwk_to_public_jwk(private))
    with pytest.raises(SignatureInvalid) as info:
        verify_jws(artifact=dataclasses.replace(artifact, alg=alg), key=key)
    assert info.value.reason is Reason.ALG_NOT_ALLOWED


def test_kind_is_checked_by_fields_even_for_valid_jws() -> None:
    """A receipt JWS verifies as a signature, but never passes as an offer."""
    envelope = sign_receipt_jws(payload=RECEIPT, private_jwk=generate_private_jwk(crv="Ed25519"), kid="k")
    with pytest.raises(Exception) as info:  # noqa: PT011
        parse_artifact(data=envelope, expect=ArtifactKind.OFFER)
    assert getattr(info.value, "reason", None) is Reason.KIND_MISMATCH


def test_every_raised_reason_has_a_named_test() -> None:
    raised = set()
    for path in PROOFS_SRC.glob("*.py"):
        raised |= set(
            re.findall(
                r"\b(?:MalformedInput|SignatureInvalid|Unsupported|Unauthorized|BindingFailed)\("
                r"\s*Reason\.([A-Z_]+)",
                path.read_text(),
            )
        )
    assert raised, "the scan found nothing: the pattern is broken"
    tested = set()
    for path in TESTS.glob("test_*.py"):
        tested |= set(re.findall(r"Reason\.([A-Z_]+)", path.read_text()))
    for path in (TESTS / "assets").glob("*.json"):
        reason = json.loads(path.read_text())["reason"]
        if reason:
            tested.add(Reason(reason).name)
    assert raised - tested == set()

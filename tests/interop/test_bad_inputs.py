"""Named bad inputs end to end: SDK-made artifacts, broken on purpose, through ``verify_artifact`` with the real
HTTPS host and DNS server. Each case asserts its reason code; where the SDK has an opinion, we check it agrees.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from service.domain import ArtifactKind, ProofOutcome, ProofStatus, Reason
from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.proofs import proof_wrapper, sign_jws
from service.workflows.verify import verify_artifact
from tests.interop.keys import b64url, did_jwk, new_jwk
from tests.interop.peer import node_ready, run_peer
from tests.interop.scenario import PAYER, Keys, now, offer_spec, receipt_spec
from tests.support.didweb_host import DidWebHost

pytestmark = [pytest.mark.node, pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))]


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _create(*specs: dict[str, Any]) -> list[dict[str, Any]]:
    return [made["artifact"] for made in run_peer("create", {"specs": list(specs)})["artifacts"]]


def _sdk_ok(artifact: dict[str, Any], kind: str) -> dict[str, Any]:
    result: dict[str, Any] = run_peer("verify", {"artifacts": [{"kind": kind, "artifact": artifact}]})["results"][0]
    return result


def _check(data: Any, resolver: DidResolver | None, controllers: ControllerResolver | None, **kw: Any) -> ProofOutcome:
    return verify_artifact(data=data, resolver=resolver, controllers=controllers, now=now() + 60, **kw)


def _jws_parts(artifact: dict[str, Any]) -> list[str]:
    return str(artifact["signature"]).split(".")


@pytest.fixture
def keys(host: DidWebHost) -> Keys:
    keys = Keys.new()
    host.set_document(keys.document(host.did))
    return keys


@pytest.fixture
def url(host: DidWebHost) -> str:
    return f"{host.base_url}/weather"


def test_tampered_jws_payload_is_signature_invalid(
    keys: Keys, url: str, resolver: DidResolver, controllers: ControllerResolver, host: DidWebHost
) -> None:
    (artifact,) = _create(
        receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="ES256", kid=keys.kid("web", "ES256", host.did))
    )
    header, payload, sig = _jws_parts(artifact)
    claims = json.loads(_unb64(payload))
    claims["payer"] = "0x0000000000000000000000000000000000000bad"
    tampered = {"format": "jws", "signature": f"{header}.{b64url(json.dumps(claims).encode())}.{sig}"}
    outcome = _check(tampered, resolver, controllers)
    assert (outcome.status, outcome.reason, outcome.signature_valid) == (
        ProofStatus.INVALID,
        Reason.SIGNATURE_INVALID,
        False,
    )
    assert not _sdk_ok(tampered, "receipt")["ok"]


def test_tampered_eip712_payload_recovers_someone_else_and_is_unauthorized(
    keys: Keys, url: str, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    (artifact,) = _create(receipt_spec(keys=keys, fmt="eip712", resource_url=url))
    tampered = copy.deepcopy(artifact)
    tampered["payload"]["payer"] = "0x0000000000000000000000000000000000000bad"
    outcome = _check(tampered, resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.UNAUTHORIZED, Reason.SIGNER_NOT_AUTHORIZED)
    sdk = _sdk_ok(tampered, "receipt")
    assert sdk["ok"]
    assert sdk["signer"] == outcome.signer != keys.evm_address


def test_wrong_kid(
    keys: Keys, url: str, resolver: DidResolver, controllers: ControllerResolver, host: DidWebHost
) -> None:
    other = new_jwk("ES256")
    signed_by_other_key = receipt_spec(
        keys=keys, fmt="jws", resource_url=url, alg="ES256", kid=keys.kid("web", "ES256", host.did)
    )
    signed_by_other_key["jwk"] = other  # kid names the service key, signature is by another key
    unknown_fragment = receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="ES256", kid=f"{host.did}#nope")
    wrong_key, missing = _create(signed_by_other_key, unknown_fragment)

    outcome = _check(wrong_key, resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INVALID, Reason.SIGNATURE_INVALID)
    outcome = _check(missing, resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INVALID, Reason.KEY_NOT_FOUND)
    assert not _sdk_ok(wrong_key, "receipt")["ok"]


def test_alg_mismatch(keys: Keys, url: str, resolver: DidResolver, controllers: ControllerResolver) -> None:
    p256 = keys.jwks["ES256"]
    spec = receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="ES256K", kid=did_jwk(p256))
    spec["jwk"] = p256  # header says ES256K, the key is P-256
    (artifact,) = _create(spec)
    assert json.loads(_unb64(_jws_parts(artifact)[0]))["alg"] == "ES256K"
    outcome = _check(artifact, resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INVALID, Reason.ALG_KEY_MISMATCH)


def test_alg_none(keys: Keys, url: str, resolver: DidResolver, controllers: ControllerResolver) -> None:
    (artifact,) = _create(
        receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="EdDSA", kid=keys.kid("jwk", "EdDSA", ""))
    )
    _, payload, _ = _jws_parts(artifact)
    header = b64url(json.dumps({"alg": "none", "kid": keys.kid("jwk", "EdDSA", "")}).encode())
    unsigned = {"format": "jws", "signature": f"{header}.{payload}."}
    outcome = _check(unsigned, resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INVALID, Reason.ALG_NOT_ALLOWED)
    assert not _sdk_ok(unsigned, "receipt")["ok"]


def test_der_signature(keys: Keys, url: str, resolver: DidResolver, controllers: ControllerResolver) -> None:
    (artifact,) = _create(
        receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="ES256", kid=keys.kid("key", "ES256", ""))
    )
    header, payload, sig = _jws_parts(artifact)
    raw = _unb64(sig)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    outcome = _check({"format": "jws", "signature": f"{header}.{payload}.{b64url(der)}"}, resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INVALID, Reason.SIGNATURE_DER)


def test_64_byte_eip712_signature(keys: Keys, url: str, resolver: DidResolver, controllers: ControllerResolver) -> None:
    (artifact,) = _create(receipt_spec(keys=keys, fmt="eip712", resource_url=url))
    sig = bytes.fromhex(artifact["signature"][2:])
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    y_parity = (v - 27) if v >= 27 else v
    compact = {**artifact, "signature": "0x" + (r + ((y_parity << 255) | s).to_bytes(32, "big")).hex()}  # EIP-2098
    outcome = _check(compact, resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INVALID, Reason.SIGNATURE_COMPACT)
    assert not _sdk_ok(compact, "receipt")["ok"]


@pytest.mark.parametrize(("kind", "field"), [("offer", "validUntil"), ("receipt", "transaction"), ("receipt", "payer")])
def test_missing_fields(
    keys: Keys, url: str, resolver: DidResolver, controllers: ControllerResolver, kind: str, field: str
) -> None:
    make = (
        offer_spec(keys=keys, fmt="eip712", resource_url=url, pay_to=PAYER)
        if kind == "offer"
        else (receipt_spec(keys=keys, fmt="eip712", resource_url=url))
    )
    (artifact,) = _create(make)
    del artifact["payload"][field]
    outcome = _check(artifact, resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INVALID, Reason.MISSING_FIELD)
    assert not _sdk_ok(artifact, kind)["ok"]  # the SDK throws too (no silent default: it changes the digest)


def test_version_2(keys: Keys, url: str, resolver: DidResolver, controllers: ControllerResolver) -> None:
    (eip712,) = _create(receipt_spec(keys=keys, fmt="eip712", resource_url=url))
    eip712["payload"]["version"] = 2
    jwk = keys.jwks["ES256"]
    claims = {"version": 2, "network": "eip155:8453", "resourceUrl": url, "payer": PAYER, "issuedAt": now()}
    jws = {"format": "jws", "signature": sign_jws(payload=claims, private_jwk=jwk, kid=did_jwk(jwk))}
    assert _sdk_ok(jws, "receipt")["ok"]  # well signed: only the version is wrong
    for artifact in (eip712, jws):
        outcome = _check(artifact, resolver, controllers)
        assert (outcome.status, outcome.reason) == (ProofStatus.UNSUPPORTED, Reason.UNSUPPORTED_VERSION)


def test_kind_confusion(keys: Keys, url: str, resolver: DidResolver, controllers: ControllerResolver) -> None:
    (receipt,) = _create(
        receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="ES256K", kid=keys.kid("jwk", "ES256K", ""))
    )
    # JWS has no type binding: the SDK's *offer* check accepts a receipt. We decide the kind by the fields.
    assert _sdk_ok(receipt, "offer")["ok"]
    outcome = _check(receipt, resolver, controllers, expect=ArtifactKind.OFFER)
    assert (outcome.status, outcome.reason) == (ProofStatus.INVALID, Reason.KIND_MISMATCH)
    wrapper = proof_wrapper(artifact=receipt, kind=ArtifactKind.RECEIPT) | {"proofType": "x402-offer"}
    outcome = _check(wrapper, resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INVALID, Reason.KIND_MISMATCH)


# ---- did:web fetch rules, through the real HTTPS host and SafeFetcher ----------------------------------------


def _web_receipt(keys: Keys, url: str, did: str) -> dict[str, Any]:
    (artifact,) = _create(
        receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="ES256", kid=keys.kid("web", "ES256", did))
    )
    return artifact


def test_oversize_document(
    keys: Keys, url: str, host: DidWebHost, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    did = host.did_with_path("big")
    host.set_oversize(host.document_path("big"), 70_000)
    outcome = _check(_web_receipt(keys, url, did), resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INDETERMINATE, Reason.FETCH_TOO_LARGE)
    host.set_oversize(host.document_path("big"), 70_000, content_length=False)  # no declared length: capped in flight
    outcome = _check(_web_receipt(keys, url, did), resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INDETERMINATE, Reason.FETCH_TOO_LARGE)


def test_redirect(
    keys: Keys, url: str, host: DidWebHost, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    did = host.did_with_path("moved")
    host.set_document(keys.document(did), "elsewhere")
    host.set_redirect(host.document_path("moved"), host.url(host.document_path("elsewhere")))
    outcome = _check(_web_receipt(keys, url, did), resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INDETERMINATE, Reason.FETCH_REDIRECT_REFUSED)
    assert host.requests_for(host.document_path("elsewhere")) == []  # never followed


def test_private_ip(keys: Keys, url: str, host: DidWebHost, controllers: ControllerResolver) -> None:
    # No development escape hatch: localhost resolves to 127.0.0.1, which the fetch policy refuses.
    strict = DidResolver(fetcher=SafeFetcher(timeout=3.0, ca_file=host.ca_pem_path))
    outcome = _check(_web_receipt(keys, url, host.did), strict, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INDETERMINATE, Reason.FETCH_ADDRESS_REFUSED)
    assert host.requests == []  # refused before connecting
    # The same artifact with an EIP-712 signer: the signature needs no fetch, authorization does.
    (eip712,) = _create(receipt_spec(keys=keys, fmt="eip712", resource_url=url))
    outcome = _check(eip712, strict, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INDETERMINATE, Reason.FETCH_ADDRESS_REFUSED)
    assert outcome.signature_valid
    assert outcome.signer == keys.evm_address

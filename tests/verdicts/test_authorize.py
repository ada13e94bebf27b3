"""Authorization tiers: did-document, dns-txt, offer-payto — positive and negative cases."""

from __future__ import annotations

import base64
import hashlib
import json

import base58
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from service.domain import (
    AuthTier,
    ControllerRecord,
    DidDocument,
    OfferPayload,
    Reason,
    ReceiptPayload,
    SignedArtifact,
    VerificationKey,
)
from service.errors import Unauthorized
from service.proofs import (
    evm_address,
    generate_private_jwk,
    jwk_to_public_jwk,
    parse_artifact,
    recover_eip712_signer,
    sign_offer_eip712,
    sign_receipt_eip712,
    sign_receipt_jws,
)
from service.verdicts import authorize

SERVICE = "did:web:api.example.com"
URL = "https://api.example.com/premium?x=1"
EVM_KEY = b"\x21" * 32
ADDRESS = evm_address(private_key=EVM_KEY)
RECEIPT = ReceiptPayload(1, "eip155:8453", URL, "0xPayer", 1_700_000_000, "")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def document(*keys: VerificationKey, did: str = SERVICE, assertion: tuple[str, ...] = ()) -> DidDocument:
    return DidDocument(id=did, keys=keys, assertion_method=assertion, snapshot_hash="ab" * 32)


def record(*controllers: str, domain: str = "api.example.com") -> ControllerRecord:
    return ControllerRecord(domain=domain, record_name=f"_controllers.{domain}", controllers=controllers)


def eip712_receipt(url: str = URL) -> tuple[SignedArtifact, str]:
    artifact = parse_artifact(
        data=sign_receipt_eip712(payload=ReceiptPayload(1, "n", url, "p", 1, ""), private_key=EVM_KEY)
    )
    return artifact, recover_eip712_signer(artifact=artifact)


def jws_receipt(private_jwk: dict[str, str], kid: str) -> tuple[SignedArtifact, VerificationKey]:
    artifact = parse_artifact(data=sign_receipt_jws(payload=RECEIPT, private_jwk=private_jwk, kid=kid))
    return artifact, VerificationKey(id=kid, controller=kid.split("#")[0], jwk=jwk_to_public_jwk(private_jwk))


def did_key(public_jwk: dict[str, str]) -> str:
    """did:key built independently: multicodec varint prefix + compressed key, base58btc."""
    if public_jwk["crv"] == "Ed25519":
        raw = b"\xed\x01" + unb64(public_jwk["x"])
    else:
        curve = ec.SECP256R1() if public_jwk["crv"] == "P-256" else ec.SECP256K1()
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(unb64(public_jwk["x"]), "big"), int.from_bytes(unb64(public_jwk["y"]), "big"), curve
        )
        compressed = numbers.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )
        raw = (b"\x80\x24" if public_jwk["crv"] == "P-256" else b"\xe7\x01") + compressed
    return "did:key:z" + base58.b58encode(raw).decode()


def did_jwk(public_jwk: dict[str, str]) -> str:
    return "did:jwk:" + b64(json.dumps(public_jwk).encode())


def assert_unauthorized(**kwargs: object) -> None:
    with pytest.raises(Unauthorized) as info:
        authorize(**kwargs)  # type: ignore[arg-type]
    assert info.value.reason is Reason.SIGNER_NOT_AUTHORIZED


# ---- EIP-712 --------------------------------------------------------------------------------------------------


def test_eip712_address_in_did_document() -> None:
    artifact, signer = eip712_receipt()
    vm = VerificationKey(id=SERVICE + "#evm", controller=SERVICE, address=ADDRESS.lower())
    tier = authorize(artifact=artifact, signer=signer, key=None, document=document(vm), controllers=None)
    assert tier == (AuthTier.DID_DOCUMENT, "ab" * 32)


def test_eip712_secp256k1_jwk_in_did_document_gives_the_address() -> None:
    from service.proofs import private_jwk_from_secret

    jwk = jwk_to_public_jwk(private_jwk_from_secret(crv="secp256k1", secret=EVM_KEY))
    artifact, signer = eip712_receipt()
    vm = VerificationKey(id=SERVICE + "#k1", controller=SERVICE, jwk=jwk)
    assert authorize(artifact=artifact, signer=signer, key=None, document=document(vm), controllers=None)[0] is (
        AuthTier.DID_DOCUMENT
    )


def test_eip712_negative_document_cases() -> None:
    artifact, signer = eip712_receipt()
    other = VerificationKey(id=SERVICE + "#evm", controller=SERVICE, address="0x" + "12" * 20)
    mine = VerificationKey(id=SERVICE + "#mine", controller=SERVICE, address=ADDRESS.lower())
    # address not listed
    assert_unauthorized(artifact=artifact, signer=signer, key=None, document=document(other), controllers=None)
    # listed, but in a document of another DID
    assert_unauthorized(
        artifact=artifact,
        signer=signer,
        key=None,
        document=document(mine, did="did:web:evil.example"),
        controllers=None,
    )
    # listed, but assertionMethod names only another method
    assert_unauthorized(
        artifact=artifact,
        signer=signer,
        key=None,
        document=document(mine, other, assertion=(other.id,)),
        controllers=None,
    )
    # ... and accepted when assertionMethod names it
    assert (
        authorize(
            artifact=artifact,
            signer=signer,
            key=None,
            document=document(mine, other, assertion=(mine.id,)),
            controllers=None,
        )[0]
        is AuthTier.DID_DOCUMENT
    )


def test_eip712_did_pkh_controller_any_chain_any_case() -> None:
    artifact, signer = eip712_receipt()
    rec = record("did:web:unrelated.example", f"did:pkh:eip155:8453:{ADDRESS.upper().replace('0X', '0x')}")
    tier, evidence = authorize(artifact=artifact, signer=signer, key=None, document=None, controllers=rec)
    assert tier is AuthTier.DNS_TXT
    assert evidence == hashlib.sha256("\n".join(rec.controllers).encode()).hexdigest()


def test_eip712_dns_negative_cases() -> None:
    artifact, signer = eip712_receipt()
    pkh = f"did:pkh:eip155:1:{ADDRESS}"
    assert_unauthorized(
        artifact=artifact, signer=signer, key=None, document=None, controllers=record("did:pkh:eip155:1:0x" + "12" * 20)
    )
    assert_unauthorized(
        artifact=artifact, signer=signer, key=None, document=None, controllers=record(pkh, domain="evil.example")
    )
    assert_unauthorized(
        artifact=artifact, signer=signer, key=None, document=None, controllers=record(pkh, domain="example.com")
    )  # a parent domain does not count


def test_www_host_accepts_record_of_bare_domain() -> None:
    artifact, signer = eip712_receipt("https://www.example.com/x")
    rec = record(f"did:pkh:eip155:1:{ADDRESS}", domain="example.com")
    assert authorize(artifact=artifact, signer=signer, key=None, document=None, controllers=rec)[0] is AuthTier.DNS_TXT


def test_document_tier_wins_over_dns() -> None:
    artifact, signer = eip712_receipt()
    vm = VerificationKey(id=SERVICE + "#evm", controller=SERVICE, address=ADDRESS.lower())
    tier, _ = authorize(
        artifact=artifact,
        signer=signer,
        key=None,
        document=document(vm),
        controllers=record(f"did:pkh:eip155:1:{ADDRESS}"),
    )
    assert tier is AuthTier.DID_DOCUMENT


def offer_for(url: str, pay_to: str) -> SignedArtifact:
    payload = OfferPayload(1, url, "exact", "eip155:8453", "0xA", pay_to, "1", 0)
    return parse_artifact(data=sign_offer_eip712(payload=payload, private_key=b"\x42" * 32))


def test_offer_payto_positive() -> None:
    artifact, signer = eip712_receipt()
    offer = offer_for("https://api.example.com/other-route", ADDRESS.lower())  # payTo case differs: still a match
    offer_signer = recover_eip712_signer(artifact=offer)
    tier = authorize(
        artifact=artifact, signer=signer, key=None, document=None, controllers=None, offers=[(offer, offer_signer)]
    )
    assert tier == (AuthTier.OFFER_PAYTO, offer.replay_key)


def test_offer_payto_negative_cases() -> None:
    artifact, signer = eip712_receipt()
    other_host = offer_for("https://evil.example/x", ADDRESS)
    other_payto = offer_for(URL, "0x" + "12" * 20)
    for offer in (other_host, other_payto):
        assert_unauthorized(
            artifact=artifact, signer=signer, key=None, document=None, controllers=None, offers=[(offer, "0xsigner")]
        )
    # an offer cannot be authorized through another offer's payTo
    offer = offer_for(URL, ADDRESS)
    assert_unauthorized(
        artifact=offer,
        signer=recover_eip712_signer(artifact=offer),
        key=None,
        document=None,
        controllers=None,
        offers=[(offer_for(URL, recover_eip712_signer(artifact=offer)), "x")],
    )


def test_no_evidence_at_all() -> None:
    artifact, signer = eip712_receipt()
    assert_unauthorized(artifact=artifact, signer=signer, key=None, document=None, controllers=None)


def test_resource_url_without_host_is_unauthorized() -> None:
    artifact, signer = eip712_receipt("not a url")
    assert_unauthorized(artifact=artifact, signer=signer, key=None, document=None, controllers=None)


# ---- JWS ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["P-256", "secp256k1", "Ed25519"])
def private_jwk(request: pytest.FixtureRequest) -> dict[str, str]:
    return generate_private_jwk(crv=request.param)


def test_jws_kid_is_a_method_of_the_service_document(private_jwk: dict[str, str]) -> None:
    kid = SERVICE + "#key-1"
    artifact, key = jws_receipt(private_jwk, kid)
    assert authorize(artifact=artifact, signer=kid, key=key, document=document(key), controllers=None)[0] is (
        AuthTier.DID_DOCUMENT
    )


def test_jws_same_key_listed_under_another_id(private_jwk: dict[str, str]) -> None:
    kid = did_key(jwk_to_public_jwk(private_jwk))
    artifact, key = jws_receipt(private_jwk, kid)
    listed = VerificationKey(id=SERVICE + "#k", controller=SERVICE, jwk=jwk_to_public_jwk(private_jwk))
    assert authorize(artifact=artifact, signer=kid, key=key, document=document(listed), controllers=None)[0] is (
        AuthTier.DID_DOCUMENT
    )


def test_jws_negative_document_cases(private_jwk: dict[str, str]) -> None:
    other = VerificationKey(
        id=SERVICE + "#other", controller=SERVICE, jwk=jwk_to_public_jwk(generate_private_jwk(crv="Ed25519"))
    )
    # a key of another DID that the service does not list
    artifact, key = jws_receipt(private_jwk, "did:web:keys.example.net#k1")
    assert_unauthorized(artifact=artifact, signer=key.id, key=key, document=document(other), controllers=None)
    # the service DID, but a fragment the document does not have
    artifact, key = jws_receipt(private_jwk, SERVICE + "#key-9")
    assert_unauthorized(artifact=artifact, signer=key.id, key=key, document=document(other), controllers=None)
    # listed, but not under assertionMethod while the document has one
    artifact, key = jws_receipt(private_jwk, SERVICE + "#key-1")
    assert_unauthorized(
        artifact=artifact,
        signer=key.id,
        key=key,
        document=document(key, other, assertion=(other.id,)),
        controllers=None,
    )


def test_jws_kid_did_is_a_dns_controller(private_jwk: dict[str, str]) -> None:
    artifact, key = jws_receipt(private_jwk, "did:web:keys.example.net#k1")
    rec = record("did:web:keys.example.net")
    assert authorize(artifact=artifact, signer=key.id, key=key, document=None, controllers=rec)[0] is AuthTier.DNS_TXT


@pytest.mark.parametrize("make_controller", [did_key, did_jwk], ids=["did-key", "did-jwk"])
def test_jws_key_embedded_in_a_dns_controller(private_jwk: dict[str, str], make_controller: object) -> None:
    artifact, key = jws_receipt(private_jwk, "did:web:keys.example.net#k1")
    controller = make_controller(jwk_to_public_jwk(private_jwk))  # type: ignore[operator]
    assert authorize(artifact=artifact, signer=key.id, key=key, document=None, controllers=record(controller))[0] is (
        AuthTier.DNS_TXT
    )
    stranger = make_controller(jwk_to_public_jwk(generate_private_jwk(crv=private_jwk["crv"])))  # type: ignore[operator]
    assert_unauthorized(artifact=artifact, signer=key.id, key=key, document=None, controllers=record(stranger))


def test_jws_is_not_authorized_by_pkh_or_offers() -> None:
    private = generate_private_jwk(crv="secp256k1")
    artifact, key = jws_receipt(private, "did:web:keys.example.net#k1")
    assert_unauthorized(
        artifact=artifact,
        signer=key.id,
        key=key,
        document=None,
        controllers=record(f"did:pkh:eip155:1:{ADDRESS}"),
        offers=[(offer_for(URL, key.id), "x")],
    )


def test_ed25519_did_key_prefix_is_checked() -> None:
    seed = ed25519.Ed25519PrivateKey.generate()
    x = seed.public_key().public_bytes_raw()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(x)}
    wrong_codec = "did:key:z" + base58.b58encode(b"\xe7\x01" + x).decode()
    artifact, key = jws_receipt({**jwk, "d": b64(seed.private_bytes_raw())}, "did:web:k.example#1")
    assert_unauthorized(artifact=artifact, signer=key.id, key=key, document=None, controllers=record(wrong_codec))

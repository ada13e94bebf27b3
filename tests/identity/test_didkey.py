"""did:key and did:jwk decoding (pure), against spec vectors and hand-built encodings."""

from __future__ import annotations

import json

import pytest

from service.domain import Reason
from service.errors import CheckFailed, CouldNotCheck, MalformedInput, Unsupported
from service.identity.didkey import did_jwk_document, did_key_document, key_for_kid
from service.identity.resolver import DidResolver
from tests.identity.keyfactory import CURVES, b58encode, b64u, make_key

# Test vectors of the did:key method specification (w3c-ccg/did-method-key), one per curve; the x402 TS SDK's
# extractPublicKeyFromKid returns the same JWKs.
SPEC_VECTORS = {
    "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp": {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik",
    },
    "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme": {
        "kty": "EC",
        "crv": "secp256k1",
        "x": "h0wVx_2iDlOcblulc8E5iEw1EYh5n1RYtLQfeSTyNc0",
        "y": "O2EATIGbu6DezKFptj5scAIRntgfecanVNXxat1rnwE",
    },
    "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169": {
        "kty": "EC",
        "crv": "P-256",
        "x": "fyNYMN0976ci7xqiSdag3buk-ZCwgXU4kz9XNkBlNUI",
        "y": "hW2ojTNfH7Jbi8--CJUo3OCbH3y5n91g-IMA9MLMbTU",
    },
}


class _NoFetch:
    def fetch(self, *, url: str) -> bytes:
        raise AssertionError(f"self-contained DIDs must not fetch ({url})")


@pytest.mark.parametrize(("did", "jwk"), SPEC_VECTORS.items())
def test_did_key_spec_vectors(did: str, jwk: dict[str, str]) -> None:
    document = did_key_document(did=did)
    identifier = did.removeprefix("did:key:")
    (key,) = document.keys
    assert key.jwk == jwk
    assert key.id == f"{did}#{identifier}"
    assert document.id == did
    assert document.assertion_method == (key.id,)
    assert document.snapshot_hash == ""


@pytest.mark.parametrize("crv", CURVES)
def test_did_key_from_hand_built_multibase(crv: str) -> None:
    key = make_key(crv)
    (resolved,) = did_key_document(did=key.did_key).keys
    assert resolved.jwk == key.jwk
    assert resolved.controller == key.did_key


@pytest.mark.parametrize("crv", CURVES)
def test_did_jwk(crv: str) -> None:
    key = make_key(crv)
    document = did_jwk_document(did=key.did_jwk)
    (resolved,) = document.keys
    assert resolved.jwk == key.jwk
    assert resolved.id == key.did_jwk + "#0"


def test_did_jwk_drops_extra_members_but_refuses_private_keys() -> None:
    key = make_key("P-256")
    with_extras = "did:jwk:" + b64u(json.dumps({**key.jwk, "use": "sig", "kid": "x"}).encode())
    assert did_jwk_document(did=with_extras).keys[0].jwk == key.jwk
    private = "did:jwk:" + b64u(json.dumps(key.private_jwk).encode())
    with pytest.raises(MalformedInput) as info:
        did_jwk_document(did=private)
    assert info.value.reason is Reason.BAD_DID


@pytest.mark.parametrize(
    ("did", "reason", "error"),
    [
        ("did:jwk:not-base64!", Reason.BAD_DID, MalformedInput),
        ("did:jwk:" + b64u(b"[1,2]"), Reason.BAD_DID, MalformedInput),
        ("did:jwk:" + b64u(b'{"kty":"RSA","n":"AQAB","e":"AQAB"}'), Reason.UNSUPPORTED_KEY_TYPE, Unsupported),
        (
            "did:jwk:" + b64u(b'{"kty":"OKP","crv":"X25519","x":"' + b"A" * 43 + b'"}'),
            Reason.UNSUPPORTED_KEY_TYPE,
            Unsupported,
        ),
        (
            "did:jwk:" + b64u(b'{"kty":"EC","crv":"P-256","x":"' + b"A" * 43 + b'","y":"' + b"A" * 43 + b'"}'),
            Reason.BAD_DID,
            MalformedInput,
        ),
        ("did:key:6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", Reason.BAD_DID, MalformedInput),  # no 'z'
        ("did:key:z0OIl", Reason.BAD_DID, MalformedInput),  # not base58
        ("did:key:z" + b58encode(b"\xec\x01" + b"\x01" * 32), Reason.UNSUPPORTED_KEY_TYPE, Unsupported),  # X25519
        ("did:key:z" + b58encode(b"\xed\x01" + b"\x01" * 31), Reason.BAD_DID, MalformedInput),  # short Ed25519
        ("did:key:z" + b58encode(b"\x80\x24\x02" + b"\xff" * 32), Reason.BAD_DID, MalformedInput),  # not on P-256
    ],
)
def test_bad_self_contained_dids(did: str, reason: Reason, error: type[Exception]) -> None:
    resolver = DidResolver(fetcher=_NoFetch())
    with pytest.raises(error) as info:
        resolver.resolve_document(did=did)
    assert info.value.reason is reason  # type: ignore[attr-defined]
    assert not isinstance(info.value, CouldNotCheck)


def test_kid_forms_for_self_contained_dids() -> None:
    key = make_key("Ed25519")
    resolver = DidResolver(fetcher=_NoFetch())
    identifier = key.multibase
    for kid in (key.did_key, f"{key.did_key}#{identifier}"):
        resolved, document = resolver.resolve_key(kid=kid)
        assert resolved.jwk == key.jwk
        assert document.id == key.did_key
    for kid in (key.did_jwk, key.did_jwk + "#0"):
        assert resolver.resolve_key(kid=kid)[0].jwk == key.jwk
    # The SDK ignores the fragment of these kids; we only accept the canonical one.
    other = make_key("Ed25519")
    for kid in (f"{key.did_key}#{other.multibase}", f"{key.did_key}#key-1", key.did_jwk + "#1"):
        with pytest.raises(CheckFailed) as info:
            resolver.resolve_key(kid=kid)
        assert info.value.reason is Reason.KEY_NOT_FOUND


def test_key_for_kid_rejects_foreign_kid() -> None:
    document = did_key_document(did=make_key("P-256").did_key)
    with pytest.raises(CheckFailed):
        key_for_kid(document=document, kid=make_key("P-256").did_key)


@pytest.mark.parametrize(
    "kid", ["did:pkh:eip155:1:0xab5801a7d398351b8be11c439e05c5b3259aec9b", "did:ethr:0x1", "did:example:123#k"]
)
def test_unsupported_did_methods(kid: str) -> None:
    with pytest.raises(Unsupported) as info:
        DidResolver(fetcher=_NoFetch()).resolve_key(kid=kid)
    assert info.value.reason is Reason.UNSUPPORTED_DID_METHOD


@pytest.mark.parametrize(("kid", "reason"), [("", Reason.KID_MISSING), ("key-1", Reason.BAD_DID)])
def test_kid_that_is_not_a_did(kid: str, reason: Reason) -> None:
    with pytest.raises(MalformedInput) as info:
        DidResolver(fetcher=_NoFetch()).resolve_key(kid=kid)
    assert info.value.reason is reason

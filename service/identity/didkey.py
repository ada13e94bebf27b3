"""Pure did:key / did:jwk decoding into a one-key synthetic ``DidDocument`` (no network).

Key ids follow the method specs: ``did:key:z…#z…`` and ``did:jwk:<b64url>#0``. The x402 SDK ignores the fragment of
such kids; we accept the bare DID or that canonical fragment and nothing else (see ``key_for_kid``).
"""

from __future__ import annotations

import json

from service.domain import DidDocument, Reason, VerificationKey
from service.errors import CheckFailed, MalformedInput, Unsupported
from service.identity.keys import KeyMaterialError, b64url_decode, multibase_to_jwk, public_jwk

SELF_CONTAINED_METHODS = ("did:key:", "did:jwk:")


def is_self_contained(did: str) -> bool:
    """True for DIDs whose key is in the DID string itself (no fetch needed)."""
    return did.startswith(SELF_CONTAINED_METHODS)


def did_key_document(*, did: str) -> DidDocument:
    """did:key (multibase ``z``, multicodec Ed25519 0xed / secp256k1 0xe7 / P-256 0x1200) → synthetic document.

    Raises:
        MalformedInput: BAD_DID (not base58btc, bad point, wrong length).
        Unsupported: UNSUPPORTED_KEY_TYPE (another multicodec).
    """
    identifier = did.removeprefix("did:key:")
    if not did.startswith("did:key:") or not identifier.startswith("z") or ":" in identifier or "#" in identifier:
        raise MalformedInput(Reason.BAD_DID, f"not a did:key with a 'z' multibase key: {did!r}")
    try:
        jwk = multibase_to_jwk(value=identifier)
    except KeyMaterialError as exc:
        if exc.unsupported:
            raise Unsupported(Reason.UNSUPPORTED_KEY_TYPE, f"{did}: {exc}") from exc
        raise MalformedInput(Reason.BAD_DID, f"{did}: {exc}") from exc
    return _single_key_document(did=did, key_id=f"{did}#{identifier}", jwk=jwk)


def did_jwk_document(*, did: str) -> DidDocument:
    """did:jwk (base64url of a public JWK's JSON) → synthetic document with key ``<did>#0``.

    Raises:
        MalformedInput: BAD_DID (bad base64url/JSON, private key, bad point).
        Unsupported: UNSUPPORTED_KEY_TYPE (RSA, X25519, …).
    """
    identifier = did.removeprefix("did:jwk:")
    if not did.startswith("did:jwk:") or not identifier or "#" in identifier:
        raise MalformedInput(Reason.BAD_DID, f"not a did:jwk: {did!r}")
    try:
        jwk = public_jwk(jwk=json.loads(b64url_decode(identifier).decode("utf-8")))
    except KeyMaterialError as exc:
        if exc.unsupported:
            raise Unsupported(Reason.UNSUPPORTED_KEY_TYPE, f"did:jwk: {exc}") from exc
        raise MalformedInput(Reason.BAD_DID, f"did:jwk: {exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedInput(Reason.BAD_DID, "did:jwk is not base64url JSON") from exc
    return _single_key_document(did=did, key_id=f"{did}#0", jwk=jwk)


def self_contained_document(*, did: str) -> DidDocument:
    """Dispatch did:key / did:jwk.

    Raises:
        MalformedInput, Unsupported: as ``did_key_document`` / ``did_jwk_document``; UNSUPPORTED_DID_METHOD otherwise.
    """
    if did.startswith("did:key:"):
        return did_key_document(did=did)
    if did.startswith("did:jwk:"):
        return did_jwk_document(did=did)
    raise Unsupported(Reason.UNSUPPORTED_DID_METHOD, did)


def key_for_kid(*, document: DidDocument, kid: str) -> VerificationKey:
    """The single key of a synthetic document, for ``kid`` = the DID or the DID + its canonical fragment.

    Raises:
        CheckFailed: KEY_NOT_FOUND (any other fragment, e.g. ``did:key:zA#zB``).
    """
    key = document.keys[0]
    if kid in (document.id, key.id):
        return key
    raise CheckFailed(Reason.KEY_NOT_FOUND, f"{kid!r} is not {key.id!r}")


def _single_key_document(*, did: str, key_id: str, jwk: dict[str, str]) -> DidDocument:
    key = VerificationKey(id=key_id, controller=did, jwk=jwk)
    return DidDocument(id=did, keys=(key,), assertion_method=(key_id,), snapshot_hash="")

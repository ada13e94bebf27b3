"""Pure parsing of DID documents (bytes in, ``DidDocument`` out) and key look-up by ``kid``.

Shape errors make the whole document unusable (``DID_DOCUMENT_INVALID``: the host answered, the answer is bad).
A single verification method we cannot use (unknown type, RSA, a published private key, a bad point) is skipped
and remembered in ``ParsedDocument.skipped`` so that a ``kid`` pointing at it gets a precise reason rather than
``KEY_NOT_FOUND``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.domain import DidDocument, Reason, VerificationKey
from service.errors import CheckFailed, MalformedInput, OmaTrustError, Unsupported
from service.identity.keys import (
    KeyMaterialError,
    b64url_encode,
    base58_decode,
    caip10_evm_address,
    evm_address,
    multibase_to_jwk,
    public_jwk,
)

# Types whose publicKeyMultibase may be the bare 32-byte key (early Ed25519VerificationKey2020 documents).
_RAW_ED25519_TYPES = frozenset({"Ed25519VerificationKey2020", "Ed25519VerificationKey2018"})


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A parsed document plus the verification methods that were present but unusable (id → reason, detail)."""

    document: DidDocument
    skipped: Mapping[str, tuple[Reason, str]] = field(default_factory=dict)


def parse_did_document(*, did: str, raw: bytes) -> DidDocument:
    """``read_did_document`` without the skipped-method detail.

    Raises:
        MalformedInput: DID_DOCUMENT_INVALID, DID_DOCUMENT_ID_MISMATCH.
    """
    return read_did_document(did=did, raw=raw).document


def read_did_document(*, did: str, raw: bytes) -> ParsedDocument:
    """Parse the exact bytes served for ``did``.

    Keys come from ``verificationMethod`` and from methods embedded in ``assertionMethod``; relative ids
    (``#key-1``) are made absolute against the document id. A method with both a JWK and an EVM account gives two
    ``VerificationKey`` entries with the same id (the domain type holds one or the other). ``snapshot_hash`` is the
    sha256 of ``raw``.

    Raises:
        MalformedInput: DID_DOCUMENT_INVALID (not UTF-8 JSON, not an object, wrong member types, duplicate method
            ids), DID_DOCUMENT_ID_MISMATCH (``id`` is not ``did``).
    """
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedInput(Reason.DID_DOCUMENT_INVALID, "not JSON") from exc
    if not isinstance(doc, dict):
        raise MalformedInput(Reason.DID_DOCUMENT_INVALID, "document is not a JSON object")
    doc_id = doc.get("id")
    if not isinstance(doc_id, str):
        raise MalformedInput(Reason.DID_DOCUMENT_INVALID, "document has no string 'id'")
    if doc_id != did:
        raise MalformedInput(Reason.DID_DOCUMENT_ID_MISMATCH, f"document id {doc_id!r} is not {did!r}")

    keys: list[VerificationKey] = []
    skipped: dict[str, tuple[Reason, str]] = {}
    seen: set[str] = set()

    def add_method(method: Any) -> str:
        vm_id = _method_id(method, doc_id)
        if vm_id in seen:
            raise MalformedInput(Reason.DID_DOCUMENT_INVALID, f"duplicate verification method id {vm_id!r}")
        seen.add(vm_id)
        try:
            keys.extend(_method_keys(method, vm_id, doc_id))
        except OmaTrustError as exc:
            skipped[vm_id] = (exc.reason, exc.detail)
        return vm_id

    for method in _list_member(doc, "verificationMethod"):
        add_method(method)
    assertion: list[str] = []
    for ref in _list_member(doc, "assertionMethod"):
        if isinstance(ref, str):
            assertion.append(_absolute(ref, doc_id))
        else:
            assertion.append(add_method(ref))

    document = DidDocument(
        id=doc_id,
        keys=tuple(keys),
        assertion_method=tuple(dict.fromkeys(assertion)),
        snapshot_hash=hashlib.sha256(raw).hexdigest(),
        raw=raw,
    )
    return ParsedDocument(document=document, skipped=skipped)


def find_key(*, parsed: ParsedDocument, kid: str) -> VerificationKey:
    """The key a JWS ``kid`` names in an already-resolved document.

    With a fragment the match is exact on the absolute id (relative ids were made absolute when parsing). Without a
    fragment (the SDK accepts ``kid = did:web:host``): the first ``assertionMethod`` key, else the only key of the
    document; a document with several keys and no ``assertionMethod`` is ambiguous → KEY_NOT_FOUND. A JWK key is
    preferred over an address-only entry with the same id, since only a JWK can verify a JWS.

    Raises:
        CheckFailed: KEY_NOT_FOUND.
        Unsupported / MalformedInput: the kid names a method that was skipped (its reason).
    """
    document = parsed.document
    _, has_fragment, _ = kid.partition("#")
    if has_fragment:
        wanted: list[str] = [kid]
    elif document.assertion_method:
        wanted = list(document.assertion_method)
    else:
        wanted = list(dict.fromkeys(k.id for k in document.keys))
        if len(wanted) > 1:
            raise CheckFailed(Reason.KEY_NOT_FOUND, f"kid {kid!r} has no fragment and the document has several keys")
    for key_id in wanted:
        candidates = [k for k in document.keys if k.id == key_id]
        if candidates:
            return next((k for k in candidates if k.jwk is not None), candidates[0])
    if has_fragment and kid in parsed.skipped:
        reason, detail = parsed.skipped[kid]
        error = Unsupported if reason is Reason.UNSUPPORTED_KEY_TYPE else MalformedInput
        raise error(reason, f"{kid}: {detail}")
    raise CheckFailed(Reason.KEY_NOT_FOUND, f"no verification method {kid!r} in {document.id}")


def _list_member(doc: Mapping[str, Any], name: str) -> list[Any]:
    value = doc.get(name, [])
    if not isinstance(value, list):
        raise MalformedInput(Reason.DID_DOCUMENT_INVALID, f"{name} is not an array")
    return value


def _absolute(ref: str, doc_id: str) -> str:
    if ref.startswith("#"):
        return doc_id + ref
    if ref.startswith("did:"):
        return ref
    raise MalformedInput(Reason.DID_DOCUMENT_INVALID, f"verification method reference {ref!r} is not a DID URL")


def _method_id(method: Any, doc_id: str) -> str:
    if not isinstance(method, dict):
        raise MalformedInput(Reason.DID_DOCUMENT_INVALID, "verification method is not an object")
    vm_id = method.get("id")
    if not isinstance(vm_id, str) or not vm_id:
        raise MalformedInput(Reason.DID_DOCUMENT_INVALID, "verification method has no string 'id'")
    return _absolute(vm_id, doc_id)


def _method_keys(method: Mapping[str, Any], vm_id: str, doc_id: str) -> list[VerificationKey]:
    """Keys of one method. Raises MalformedInput/Unsupported (caught by the caller: the method is skipped)."""
    controller = method.get("controller", doc_id)
    if not isinstance(controller, str):
        raise MalformedInput(Reason.DID_DOCUMENT_INVALID, "controller is not a string")
    controller = doc_id + controller if controller.startswith("#") else controller
    vm_type = method.get("type")
    out: list[VerificationKey] = []
    try:
        if "publicKeyJwk" in method:
            jwk = public_jwk(jwk=method["publicKeyJwk"])
        elif "publicKeyMultibase" in method:
            jwk = multibase_to_jwk(value=method["publicKeyMultibase"], raw_ed25519=vm_type in _RAW_ED25519_TYPES)
        elif "publicKeyBase58" in method and vm_type in _RAW_ED25519_TYPES:
            raw_key = base58_decode(str(method["publicKeyBase58"]))
            if len(raw_key) != 32:
                raise KeyMaterialError("Ed25519 publicKeyBase58 must be 32 bytes")
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw_key)}
        else:
            jwk = None
    except KeyMaterialError as exc:
        reason = Reason.UNSUPPORTED_KEY_TYPE if exc.unsupported else Reason.DID_DOCUMENT_INVALID
        raise (Unsupported if exc.unsupported else MalformedInput)(reason, str(exc)) from exc
    if jwk is not None:
        out.append(VerificationKey(id=vm_id, controller=controller, jwk=jwk))
    address = caip10_evm_address(method.get("blockchainAccountId")) or evm_address(method.get("ethereumAddress"))
    if address is not None:
        out.append(VerificationKey(id=vm_id, controller=controller, address=address))
    if not out:
        raise Unsupported(Reason.UNSUPPORTED_KEY_TYPE, f"no supported key material (type {vm_type!r})")
    return out

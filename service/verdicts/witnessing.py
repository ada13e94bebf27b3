"""What a Controller Witness may say: does a DNS ``_controllers`` record or a did:web document assert that a DID
controls the subject? Used by the witness service (``POST /v1/witness``) before it attests what it saw.

* ``dns-txt`` — one of the record's ``controller=`` DIDs is the controller (same DID, the same EVM address on any
  chain for did:pkh, or the same embedded key for did:jwk / did:key);
* ``did-json`` — the subject's own document lists the controller's key: a verification method with the controller's
  EVM address (did:pkh) or its public key (did:jwk / did:key), or a verification method whose id or controller is the
  controller DID.
"""

from __future__ import annotations

from service.domain import ControllerRecord, DidDocument
from service.proofs.keys import evm_address_of_jwk
from service.verdicts.onchain import Signer, names_signer

DNS_TXT = "dns-txt"
DID_JSON = "did-json"


def _as_signer(controller: str) -> Signer:
    parts = controller.split(":")
    if len(parts) == 5 and parts[:3] == ["did", "pkh", "eip155"]:
        return Signer(kid=controller, address=parts[4].lower())
    return Signer(kid=controller)


def dns_asserts(*, record: ControllerRecord | None, controller: str) -> bool:
    """Does the subject's ``_controllers`` record name ``controller``?"""
    if record is None:
        return False
    wanted = _as_signer(controller)
    return any(
        names_signer(entry, wanted) or names_signer(controller, _as_signer(entry)) for entry in record.controllers
    )


def document_asserts(*, document: DidDocument | None, subject: str, controller: str) -> bool:
    """Does the subject's own did:web document list ``controller``'s key?"""
    if document is None or document.id.lower() != subject.lower():
        return False
    wanted = _as_signer(controller)
    for key in document.keys:
        address = key.address or (evm_address_of_jwk(key.jwk) if key.jwk else None)
        if address is not None and wanted.address is not None and address.lower() == wanted.address:
            return True
        if key.jwk is not None and names_signer(controller, Signer(jwk=key.jwk)):
            return True
        if controller in (key.id, key.controller) and controller.lower() != subject.lower():
            return True
    return False

"""The look-ups a verdict may need, as small Protocols.

``service.identity``'s ``DidResolver`` and ``ControllerResolver`` satisfy them as they are (structural typing: this
package never imports them), and re-verification satisfies them from the evidence it gathered and stored
(``service.workflows.reverify_memo``). Every method raises the domain errors of ``service.errors``: a
``CouldNotCheck`` when the look-up could not be made, a ``CheckFailed`` subclass when its answer is bad.
"""

from __future__ import annotations

from typing import Protocol

from service.domain import ControllerRecord, DidDocument, VerificationKey


class KeySource(Protocol):
    """Resolves a JWS ``kid`` to its verification key (and the document it was found in)."""

    def resolve_key(self, *, kid: str) -> tuple[VerificationKey, DidDocument]: ...


class DocumentSource(KeySource, Protocol):
    """Resolves a DID to its current document, and a ``kid`` to its key."""

    def resolve_document(self, *, did: str) -> DidDocument: ...


class ControllerSource(Protocol):
    """The DNS ``_controllers`` record of a host (``None``: the host lists no controllers)."""

    def lookup(self, *, domain: str) -> ControllerRecord | None: ...


class SnapshotSource(Protocol):
    """Evidence stored when a verdict was first reached, by its evidence hash (``None``: not stored / not that
    kind). Used by the "authorized as of issuedAt" rule."""

    def snapshot_document(self, *, evidence_hash: str) -> DidDocument | None: ...

    def snapshot_key(self, *, evidence_hash: str, kid: str) -> VerificationKey:
        """The key ``kid`` names in the stored document.

        Raises:
            CheckFailed / MalformedInput / Unsupported: no such usable key in that document (or no such document).
        """
        ...

    def snapshot_controllers(self, *, evidence_hash: str) -> ControllerRecord | None: ...

"""The one definition of each evidence format: what a verdict's ``evidence_hash`` is a hash of, how that evidence
is kept as text (``DidSnapshotRow.raw``) and read back, and under which host a DNS answer is looked up.

* **did:web document** (tier ``did-document``): the exact bytes served; the hash is ``DidDocument.snapshot_hash``
  (sha256 hex of those bytes, computed where the bytes are parsed). Kept as their UTF-8 text.
* **DNS controllers** (tier ``dns-txt``): the hash is the sha256 hex of the controllers joined with ``"\\n"``
  (the record name is not hashed: the older ``_omatrust`` name listing the same controllers is the same evidence).
  Kept as the record name, then one controller per line.
* **Host key**: DNS controllers are looked up for the host of the artifact's ``resourceUrl`` — lower-case, no
  trailing dot, no port.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from service.dids import url_host_port
from service.domain import AuthTier, ControllerRecord, DidDocument

DOCUMENT_SNAPSHOT = AuthTier.DID_DOCUMENT.value  # DidSnapshotRow.kind of a stored did:web document
DNS_SNAPSHOT = AuthTier.DNS_TXT.value  # DidSnapshotRow.kind of a stored DNS answer
SNAPSHOT_TIERS = frozenset({AuthTier.DID_DOCUMENT, AuthTier.DNS_TXT})  # tiers whose evidence is kept


@dataclass(frozen=True, slots=True)
class EvidenceText:
    """Evidence as it is kept: its hash, the DID it is about, its kind and its text."""

    evidence_hash: str
    did: str
    kind: str
    text: str


def controller_host(resource_url: str) -> str:
    """The host whose DNS controllers may authorize signers for ``resource_url``.

    Raises:
        MalformedInput: BAD_FIELD_VALUE when the URL has no usable host.
    """
    return url_host_port(resource_url)[0]


def controllers_hash(record: ControllerRecord) -> str:
    """The evidence hash of a DNS answer."""
    return hashlib.sha256("\n".join(record.controllers).encode("utf-8")).hexdigest()


def dns_evidence(record: ControllerRecord) -> EvidenceText:
    """A DNS answer as it is kept (``did`` is the did:web of the host it was found for)."""
    return EvidenceText(
        evidence_hash=controllers_hash(record),
        did=f"did:web:{record.domain}",
        kind=DNS_SNAPSHOT,
        text="\n".join([record.record_name, *record.controllers]),
    )


def read_dns_evidence(text: str) -> ControllerRecord:
    """A kept DNS answer back as the record it was (inverse of :func:`dns_evidence`). Never raises."""
    name, *controllers = text.split("\n")
    domain = name.split(".", 1)[1] if "." in name else name
    return ControllerRecord(domain=domain, record_name=name, controllers=tuple(controllers))


def document_evidence(*, did: str, document: DidDocument) -> EvidenceText:
    """A fetched did:web document as it is kept."""
    return EvidenceText(
        evidence_hash=document.snapshot_hash,
        did=did,
        kind=DOCUMENT_SNAPSHOT,
        text=document.raw.decode("utf-8", "replace"),
    )


def document_bytes(text: str) -> bytes:
    """The bytes of a kept document (inverse of :func:`document_evidence` for documents that were UTF-8)."""
    return text.encode("utf-8")

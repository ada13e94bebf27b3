"""Look-ups for re-verification workers, answered from evidence the parent process gathered — never from the
network.

A task carries the did:web documents as fetched (bytes, or why they could not be had), the DNS ``_controllers``
answers, and the evidence snapshots stored with the proofs. :class:`TaskEvidence` answers the look-up Protocols of
``service.verdicts.sources`` from them: ``DocumentSource`` and ``ControllerSource`` from the fresh evidence,
``SnapshotSource`` from the stored one. A look-up the parent did not send is recorded as *needed* (the parent
fetches it and sends the review again) and answered as ``lookup-skipped`` meanwhile. did:key / did:jwk kids are
decoded locally.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from service.domain import ControllerRecord, DidDocument, ProofStatus, Reason, VerificationKey
from service.errors import DnsFailed, FetchFailed, MalformedInput, OmaTrustError, Unsupported
from service.identity.documents import ParsedDocument, find_key, read_did_document
from service.identity.resolver import DidResolver
from service.store.batch import Snapshot
from service.verdicts.evidence import DNS_SNAPSHOT, DOCUMENT_SNAPSHOT, document_bytes, read_dns_evidence

INDETERMINATE = ProofStatus.INDETERMINATE.value


class Failure(NamedTuple):
    """A look-up that failed in the parent, re-raised identically in the worker."""

    status: str  # indeterminate | invalid | unsupported
    reason: str
    detail: str

    @classmethod
    def of(cls, exc: OmaTrustError) -> Failure:
        return cls(exc.status.value, exc.reason.value, exc.detail)

    def error(self, *, dns: bool = False) -> OmaTrustError:
        reason = Reason(self.reason)
        if self.status == INDETERMINATE:
            return DnsFailed(reason, self.detail) if dns else FetchFailed(reason, self.detail)
        if self.status == ProofStatus.UNSUPPORTED.value:
            return Unsupported(reason, self.detail)
        return MalformedInput(reason, self.detail)


DocEvidence = bytes | Failure
DnsEvidence = ControllerRecord | None | Failure


class Evidence(NamedTuple):
    docs: dict[str, DocEvidence]  # did:web → the document bytes as fetched, or why it could not be had
    dns: dict[str, DnsEvidence]  # host (``service.verdicts.evidence.controller_host``) → its controller record
    snapshots: dict[str, Snapshot]  # evidence hash → stored snapshot


class TaskEvidence:
    """The look-up sources of one task (``DocumentSource``, ``ControllerSource``, ``SnapshotSource``).

    ``allow_need=False``: a look-up that was not sent is not asked for again (it stays ``lookup-skipped``).
    """

    def __init__(self, evidence: Evidence, *, allow_need: bool) -> None:
        self._evidence = evidence
        self._allow_need = allow_need
        self._local = DidResolver(fetcher=_NoFetch())  # did:key / did:jwk, and the errors of other methods
        self._parsed: dict[str, ParsedDocument | Failure] = {}
        self._snapshot_docs: dict[str, ParsedDocument | None] = {}
        self.needed_dids: set[str] = set()
        self.needed_hosts: set[str] = set()

    def forget_needs(self) -> None:
        self.needed_dids.clear()
        self.needed_hosts.clear()

    # -- DocumentSource
    def resolve_document(self, *, did: str) -> DidDocument:
        if did.startswith("did:web:"):
            return self._web(did).document
        return self._local.resolve_document(did=did)

    def resolve_key(self, *, kid: str) -> tuple[VerificationKey, DidDocument]:
        did = kid.partition("#")[0] if isinstance(kid, str) else ""
        if did.startswith("did:web:"):
            parsed = self._web(did)
            return find_key(parsed=parsed, kid=kid), parsed.document
        return self._local.resolve_key(kid=kid)

    # -- ControllerSource
    def lookup(self, *, domain: str) -> ControllerRecord | None:
        if domain in self._evidence.dns:
            found = self._evidence.dns[domain]
            if isinstance(found, Failure):
                raise found.error(dns=True)
            return found
        if self._allow_need:
            self.needed_hosts.add(domain)
        raise DnsFailed(Reason.LOOKUP_SKIPPED, f"{domain} was not looked up")

    # -- SnapshotSource
    def snapshot_document(self, *, evidence_hash: str) -> DidDocument | None:
        parsed = self._snapshot_document(evidence_hash)
        return parsed.document if parsed is not None else None

    def snapshot_key(self, *, evidence_hash: str, kid: str) -> VerificationKey:
        parsed = self._snapshot_document(evidence_hash)
        if parsed is None:
            raise FetchFailed(Reason.LOOKUP_SKIPPED, f"no stored document {evidence_hash}")
        return find_key(parsed=parsed, kid=kid)

    def snapshot_controllers(self, *, evidence_hash: str) -> ControllerRecord | None:
        snapshot = self._evidence.snapshots.get(evidence_hash)
        if snapshot is None or snapshot.kind != DNS_SNAPSHOT:
            return None
        return read_dns_evidence(snapshot.raw)

    # -- memo
    def _web(self, did: str) -> ParsedDocument:
        found = self._parsed.get(did)
        if found is None:
            raw = self._evidence.docs.get(did)
            if raw is None:
                if self._allow_need:
                    self.needed_dids.add(did)
                raise FetchFailed(Reason.LOOKUP_SKIPPED, f"{did} was not looked up")
            found = self._parsed[did] = raw if isinstance(raw, Failure) else parsed_document(did, raw)
        if isinstance(found, Failure):
            raise found.error()
        return found

    def _snapshot_document(self, evidence_hash: str) -> ParsedDocument | None:
        if evidence_hash not in self._snapshot_docs:
            snapshot = self._evidence.snapshots.get(evidence_hash)
            parsed: ParsedDocument | None = None
            if snapshot is not None and snapshot.kind == DOCUMENT_SNAPSHOT:
                found = parsed_document(snapshot.did, document_bytes(snapshot.raw))
                parsed = found if isinstance(found, ParsedDocument) else None
            self._snapshot_docs[evidence_hash] = parsed
        return self._snapshot_docs[evidence_hash]


@functools.lru_cache(maxsize=1024)
def parsed_document(did: str, raw: bytes) -> ParsedDocument | Failure:
    """``raw`` parsed as the document of ``did``, or why it could not be. A memo of a pure function, keyed by the
    content: a worker process parses each document once for the whole run, not once per task (parsing checks
    every key's curve point, which costs about as much as judging a review)."""
    try:
        return read_did_document(did=did, raw=raw)
    except OmaTrustError as exc:  # the parent only sends documents that parsed; keep the worker honest anyway
        return Failure.of(exc)


class _NoFetch:
    def fetch(self, *, url: str) -> bytes:
        raise FetchFailed(Reason.LOOKUP_SKIPPED, f"workers do not fetch ({url})")

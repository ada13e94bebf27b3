"""Stored OMATrust attestations (Key Binding, Controller Witness, Linked Identifier, User Review Response): writes
from chain sync and the look-ups the on-chain authorization tiers read (``AttestationLookup`` of
``service.verdicts.onchain``, satisfied structurally)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, literal_column, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.records import (
    CONTROLLER_WITNESS,
    KEY_BINDING,
    LINKED_IDENTIFIER,
    USER_REVIEW_RESPONSE,
    Attested,
    ControllerWitness,
    KeyBinding,
    LinkedIdentifier,
    ReviewResponse,
)
from service.store.engine import read_scope
from service.store.tables import OmatrustAttestationRow
from service.ttl_cache import TtlLru

VALID = "valid"
REJECTED = "rejected"
AUTHORIZED = "authorized"  # a review response from an address authorized for the subject
UNAUTHORIZED = "unauthorized"
_BUILD: dict[str, Any] = {
    KEY_BINDING: KeyBinding,
    CONTROLLER_WITNESS: ControllerWitness,
    LINKED_IDENTIFIER: LinkedIdentifier,
    USER_REVIEW_RESPONSE: ReviewResponse,
}


def record_fields(record: object) -> dict[str, Any]:
    """A decoded record as the JSON stored in ``fields`` (tuples become lists)."""
    assert dataclasses.is_dataclass(record)
    assert not isinstance(record, type)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(record).items()}


def _record(kind: str, fields: Mapping[str, Any]) -> Any:
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    return _BUILD[kind](**values)


def stored_uids(session: Session, *, uids: Sequence[str]) -> set[str]:
    """Which of these UIDs are stored already."""
    if not uids:
        return set()
    rows = session.exec(
        select(OmatrustAttestationRow.uid).where(col(OmatrustAttestationRow.uid).in_([u.lower() for u in uids]))
    )
    return set(rows)


def add_attestations(session: Session, *, rows: Iterable[OmatrustAttestationRow]) -> int:
    """Insert rows whose UID is not stored yet (re-read blocks are harmless); returns how many were new."""
    rows = list(rows)
    known = stored_uids(session, uids=[r.uid for r in rows])
    new = [r for r in rows if r.uid not in known]
    session.add_all(new)
    return len(new)


def apply_revocations(session: Session, *, revoked: Mapping[str, int]) -> int:
    """Record revocation times (``uid → time``) of stored attestations; returns how many rows changed."""
    changed = 0
    for uid, when in revoked.items():
        result = session.execute(
            update(OmatrustAttestationRow)
            .where(col(OmatrustAttestationRow.uid) == uid.lower(), col(OmatrustAttestationRow.revocation_time) == 0)
            .values(revocation_time=when)
        )
        changed += int(getattr(result, "rowcount", 0) or 0)
    return changed


def delete_attestations_after(session: Session, *, block: int) -> int:
    """Delete the attestations stored from blocks above ``block`` (orphaned by a reorg); returns how many."""
    result = session.execute(delete(OmatrustAttestationRow).where(col(OmatrustAttestationRow.block_number) > block))
    return int(getattr(result, "rowcount", 0) or 0)


def revoked_uids(session: Session) -> list[str]:
    """UIDs of the stored attestations that carry a revocation time."""
    return list(session.exec(select(OmatrustAttestationRow.uid).where(col(OmatrustAttestationRow.revocation_time) > 0)))


def set_revocation_times(session: Session, *, times: Mapping[str, int]) -> int:
    """Overwrite revocation times (``uid → time``, 0: not revoked) with what the chain says now; returns how many
    rows changed."""
    changed = 0
    for uid, when in times.items():
        result = session.execute(
            update(OmatrustAttestationRow)
            .where(col(OmatrustAttestationRow.uid) == uid.lower(), col(OmatrustAttestationRow.revocation_time) != when)
            .values(revocation_time=when)
        )
        changed += int(getattr(result, "rowcount", 0) or 0)
    return changed


def responses_for(session: Session, *, review_uids: Sequence[str]) -> dict[str, list[OmatrustAttestationRow]]:
    """Authorized review responses by the review UID they answer, oldest first."""
    if not review_uids:
        return {}
    rows = session.exec(
        select(OmatrustAttestationRow)
        .where(col(OmatrustAttestationRow.kind) == USER_REVIEW_RESPONSE)
        .where(col(OmatrustAttestationRow.status) == AUTHORIZED)
        .where(col(OmatrustAttestationRow.ref_uid).in_([u.lower() for u in review_uids]))
        .order_by(col(OmatrustAttestationRow.attestation_time))
    )
    out: dict[str, list[OmatrustAttestationRow]] = {}
    for row in rows:
        out.setdefault(row.ref_uid, []).append(row)
    return out


_A = OmatrustAttestationRow.__table__.c  # type: ignore[attr-defined]
# The valid Key Bindings, Controller Witnesses and Linked Identifiers of a subject, oldest first (built once).
_OF_SUBJECT = (
    core_select(_A.kind, _A.uid, _A.attester, _A.attestation_time, _A.revocation_time, _A.fields)
    .where(
        _A.subject_key == bindparam("subject"),
        _A.kind.in_([literal_column(f"'{k}'") for k in (KEY_BINDING, CONTROLLER_WITNESS, LINKED_IDENTIFIER)]),
        _A.status == literal_column(f"'{VALID}'"),
    )
    .order_by(_A.attestation_time, _A.uid)
)


_ByKind = dict[str, list[Attested[Any]]]


class RecentAttestations(TtlLru[str, _ByKind]):
    """The stored attestations of the subjects judged in the last ``ttl`` seconds, shared by one process's
    submissions and prepares (``onchain_context(..., shared=True)``), so that a busy merchant's reviews do not each
    read the same rows. At most ``size`` subjects (least recently used dropped). Thread-safe.

    What it may miss is what was stored by *another* process during the last ``ttl`` seconds (a sync, a witness).
    That cannot weaken a verdict: a judgement that reused rows and did not verify and bind every proof is judged
    again on fresh rows (``workflows.submit.check_proofs``). It can only let a revocation or a window's end stored
    that recently count a little later — by less than the sync interval and confirmation depth the index already
    lags the chain by. Sync and witness writes in this process call :meth:`clear`; a read that started before a
    clear is not kept (``generation``), so a cleared entry cannot come back stale."""

    def __init__(self, *, ttl: float, size: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(ttl=ttl, size=size, clock=clock)
        self.generation = 0

    def keep(self, subject: str, found: _ByKind, *, read_at: tuple[int, float]) -> None:
        """Keep ``found``, read at ``read_at`` (the :meth:`mark` taken before the read), unless a clear came since."""
        generation, when = read_at
        with self._lock:
            if generation == self.generation and self.ttl > 0:
                self._put(subject, found, when)

    def mark(self) -> tuple[int, float]:
        with self._lock:
            return self.generation, self.clock()

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()


class StoredAttestations:
    """``AttestationLookup`` over the ``omatrust_attestations`` table (valid rows only, revoked ones included).

    One instance serves one judgement (``onchain_context`` builds one per review or request): the Key Bindings,
    Controller Witnesses and Linked Identifiers of a subject are read together in one query the first time any of
    them is asked for, and kept for the instance's life — a review's tiers ask for several kinds of the same subject.
    With ``shared``, a subject read by another judgement of this process in the last seconds is not read again
    (:class:`RecentAttestations`).
    """

    _KINDS = (KEY_BINDING, CONTROLLER_WITNESS, LINKED_IDENTIFIER)

    def __init__(self, *, engine: Engine, shared: RecentAttestations | None = None) -> None:
        self.engine = engine
        self.shared = shared
        self.reused = False  # some subject was served from ``shared`` (its rows may be up to its TTL old)
        self._by_subject: dict[str, _ByKind] = {}

    def _find(self, kind: str, subject: str) -> list[Attested[Any]]:
        found = self._by_subject.get(subject)
        if found is None and self.shared is not None:
            found = self.shared.get(subject)
            self.reused = self.reused or found is not None
        if found is None:
            read_at = self.shared.mark() if self.shared is not None else None
            found = {k: [] for k in self._KINDS}
            with read_scope(self.engine) as conn:  # one statement: plain columns, no transaction
                rows = conn.execute(_OF_SUBJECT, {"subject": subject}).all()
            for row_kind, uid, attester, at, revoked_at, fields in rows:
                found[row_kind].append(Attested(uid, attester, at, revoked_at, _record(row_kind, fields)))
            if self.shared is not None and read_at is not None:
                self.shared.keep(subject, found, read_at=read_at)
        self._by_subject[subject] = found
        return found[kind]

    def key_bindings(self, *, subject: str) -> Sequence[Attested[KeyBinding]]:
        return self._find(KEY_BINDING, subject)

    def controller_witnesses(self, *, subject: str) -> Sequence[Attested[ControllerWitness]]:
        return self._find(CONTROLLER_WITNESS, subject)

    def linked_identifiers(self, *, subject: str) -> Sequence[Attested[LinkedIdentifier]]:
        return self._find(LINKED_IDENTIFIER, subject)

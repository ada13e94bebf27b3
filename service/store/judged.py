"""The one write path for a judged review: submit (API), sync (chain) and the row writes of re-verification.

Storing a review is: serialize on its attester → (API) idempotency and EAS nonce checks → find the live review of
(attester, normalized subject) → learn which of its receipts already back another live review → let the caller
finish judging with those facts → supersede, insert the review, claim its receipts, add its proof rows, change
the score aggregates, enqueue it for publishing. All in the caller's transaction (callers add the evidence
snapshots in it afterwards). On PostgreSQL an API review's locking reads — the attester lock, the idempotency and
nonce facts, the live review, the claims and the subject's aggregate row — go out together
(:func:`lock_and_read`), before the checks that use them.

The rules (who is live, supersession, arriving superseded, replayed receipts, claim transfer) are written once, in
:func:`_write_review`; a :class:`ChunkWriter` reads the facts they need in one query each and writes the rows with
one statement per table (PostgreSQL, a few rows: one statement in all) — for one review (submit) or for a whole sync
chunk (all its reviews applied in order).

Serialization: every writer of an attester's reviews first takes that attester's write lock
(:func:`lock_attesters`) — PostgreSQL: a transaction-scoped advisory lock on a hash of the address; SQLite: the
database's single write lock (``BEGIN IMMEDIATE``). Lock order is always attester locks (sorted) → review rows →
subject aggregate rows (sorted), so writers cannot deadlock. There is no global row: writers of different subjects
never wait on each other (the global aggregate is folded on read, ``workflows.aggregates.global_aggregate``).
The partial unique index ``ux_reviews_live``
(one live review per attester and subject) backs the rule in the database whatever path writes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import text
from sqlmodel import Session

from service.domain import Reason
from service.errors import ChainRejected, OmaTrustError, ReceiptAlreadyClaimed
from service.store.aggregates import drop_empty, lock_many_read
from service.store.batch import (
    CLAIM_KEYS_PER_READ,
    LIVE_PAIRS_PER_READ,
    Rider,
    claim_values,
    claims_of,
    claims_read,
    insert_rows,
    live_ids_read,
    live_reviews_of,
    live_rows,
    move_claims,
    new_row,
    proof_values,
    review_values,
    rider_key,
)
from service.store.outbox import (
    OutboxFacts,
    facts_many_read,
    next_nonce,
    outbox_facts,
    outbox_facts_many,
    outbox_values,
)
from service.store.pipeline import Read, can_pipeline, run_reads
from service.store.reviews import claim_conflicts
from service.store.tables import OutboxRow, ProofRow, ReceiptClaimRow, ReviewRow

_LOCK_NAMESPACE = b"omatrust:attester:"


def _lock_key(attester: str) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock`` (stable across processes and versions)."""
    digest = hashlib.sha256(_LOCK_NAMESPACE + attester.lower().encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_LOCK_ONE = text("SELECT pg_advisory_xact_lock(:k)")
_LOCK_MANY = text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:ks AS bigint[])) AS k")


def lock_attesters(session: Session, *, attesters: Iterable[str]) -> None:
    """Take the write lock of each attester for the rest of the transaction. Call before any other write or
    locking read of the transaction (see the lock order in the module docstring).

    PostgreSQL: one advisory lock per attester, in sorted order, taken by one statement (``unnest`` yields the
    array in order; a sync chunk locks up to thousands of attesters). SQLite: the database write lock (``BEGIN
    IMMEDIATE``), which serializes every writer — the session must not have started a transaction yet.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        keys = sorted({_lock_key(a) for a in attesters})
        if len(keys) == 1:
            session.connection().execute(_LOCK_ONE, {"k": keys[0]})
        elif keys:
            session.connection().execute(_LOCK_MANY, {"ks": keys})
    elif dialect == "sqlite":
        conn = session.connection()
        if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class AggregateChange(Protocol):
    """Applies a review write to the score aggregates in the same transaction (the workflows' scoring rules)."""

    def __call__(
        self, session: Session, *, added: ReviewRow | None, removed: ReviewRow | None, now: int,
        riders: list[Rider] | None = None, locked: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        """``riders``: writes may be appended there (to run with the review's rows) instead of executed now.
        ``locked``: subjects' stored states the transaction has locked already (``store.aggregates.lock_many``)."""


class GroupAggregates(AggregateChange, Protocol):
    """An :class:`AggregateChange` that records the changes of many reviews and applies them at once."""

    def flush(
        self, session: Session, *, now: int, riders: list[Rider] | None = None,
        locked: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        """Lock the recorded subjects' aggregate rows (sorted) and write their new states, in ``session``.
        ``riders``: the write may be appended there instead, to run with the caller's rows. ``locked``: as for
        ``__call__`` (the rows are not locked again when it holds every recorded subject)."""


@dataclass(frozen=True, slots=True)
class Publication:
    """The signed EAS delegated request that publishes an API review (an outbox row)."""

    content_key: str
    recipient: str
    data_hex: str
    deadline: int
    nonce: int
    signature: str
    chain_nonce: int  # the attester's chain nonce before the transaction: read, or the claim when known to be next


@dataclass(frozen=True, slots=True)
class Placement:
    """What the store knows about a review about to be written: given to the caller's judge."""

    previous: ReviewRow | None  # the live review of (attester, subject), locked
    arrives_superseded: bool  # ``previous`` is newer (chain data arriving late): the new row is stored superseded
    replayed: Mapping[str, str]  # replay key → the other live review it backs, among the candidate receipts


@dataclass
class JudgedRows:
    """The rows of a judged review (``review.superseded_by`` is set here, not by the caller)."""

    review: ReviewRow
    proofs: list[ProofRow]
    receipt_keys: Sequence[str]  # receipts this review claims (not the replayed ones)


@dataclass(frozen=True, slots=True)
class Stored:
    review_id: str
    existing: bool = False  # the same signed request had already been accepted: nothing was written
    superseded: str | None = None  # the review this one superseded
    arrives_superseded: bool = False


class WriteTarget(Protocol):
    """Where the write path reads the store's facts and puts a review's rows (:class:`ChunkWriter`: one review,
    or a whole sync chunk buffered in memory and written in bulk). The rules that use these facts are in
    :func:`_write_review`, once for every writer."""

    def live_review(self, *, attester: str, subject_normalized: str) -> ReviewRow | None: ...

    def receipt_holder(self, *, replay_key: str) -> str | None: ...

    def supersede(self, *, row: ReviewRow, by: str) -> None: ...

    def insert(self, *, row: ReviewRow, proofs: Sequence[ProofRow]) -> None: ...

    def claim(self, *, replay_keys: Sequence[str], review: ReviewRow, superseding: str | None) -> None: ...


def supersession(*, previous: ReviewRow | None, review_time: int, latest: bool) -> tuple[bool, ReviewRow | None]:
    """(the new review arrives superseded, the live review it supersedes). One live review per (attester,
    subject): the latest by review time (ties: the one written last); ``latest``: the new one whatever the times."""
    arrives_superseded = not latest and previous is not None and previous.review_time > review_time
    return arrives_superseded, (previous if previous is not None and not arrives_superseded else None)


def _write_review(
    session: Session,
    target: WriteTarget,
    *,
    attester: str,
    subject_normalized: str,
    review_time: int,
    candidate_receipts: Sequence[str],
    judge: Callable[[Placement], JudgedRows],
    aggregates: AggregateChange,
    now: int,
    latest: bool,
    riders: list[Rider] | None = None,
    locked: Mapping[str, dict[str, Any]] | None = None,
) -> tuple[ReviewRow, ReviewRow | None, bool]:
    """The rules of storing a judged review, whatever the target: find the live review of (attester, subject),
    decide the supersession, find the replayed candidate receipts, judge, then supersede, insert, claim and change
    the aggregates. Returns (the new row, the row it superseded, whether it arrived superseded).

    Raises:
        ReceiptAlreadyClaimed: see :func:`store_judged_review`.
        whatever ``judge`` raises (nothing was written).
    """
    previous = target.live_review(attester=attester, subject_normalized=subject_normalized)
    arrives_superseded, superseding = supersession(previous=previous, review_time=review_time, latest=latest)
    replayed = {
        key: holder
        for key in candidate_receipts
        if (holder := target.receipt_holder(replay_key=key)) is not None
        and (superseding is None or holder != superseding.id)
    }
    rows = judge(Placement(previous=previous, arrives_superseded=arrives_superseded, replayed=replayed))
    row = rows.review
    if arrives_superseded and previous is not None:
        row.superseded_by = previous.id
    if superseding is not None:
        target.supersede(row=superseding, by=row.id)
    target.insert(row=row, proofs=rows.proofs)
    if not arrives_superseded:
        target.claim(replay_keys=rows.receipt_keys, review=row, superseding=superseding.id if superseding else None)
    aggregates(session, added=row, removed=superseding, now=now, riders=riders, locked=locked)
    return row, superseding, arrives_superseded


def store_judged_review(
    session: Session,
    *,
    attester: str,
    subject_normalized: str,
    review_time: int,
    candidate_receipts: Sequence[str],
    judge: Callable[[Placement], JudgedRows],
    aggregates: AggregateChange,
    now: int,
    publication: Publication | None = None,
    latest: bool = False,
    locked: bool = False,
    target: WriteTarget | None = None,
    riders: Sequence[Rider] = (),
) -> Stored:
    """Store one judged review in the caller's transaction (see the module docstring). ``judge`` finishes the
    verdict with the store's facts and returns the rows; it may raise to refuse the review (nothing is written).
    ``latest``: the review supersedes the live one whatever their times (API: the order of acceptance is the
    order of the attester's reviews). Otherwise the later ``review_time`` is live (chain data may arrive late).
    ``locked``: the caller already holds the attester's lock (a sync chunk locks all its attesters up front).
    ``target``: where facts are read and rows go (default: a :class:`ChunkWriter` of this one review, flushed
    before returning; a sync chunk passes its own and flushes it once for the chunk). ``riders``: writes that go
    with the review's rows when it is stored (not when the same request was accepted before), e.g. its publish job;
    with the default target they and the aggregate update share the rows' statement on PostgreSQL.

    Raises:
        ChainRejected(DELEGATION_NONCE): ``publication.nonce`` is not the attester's next nonce (the chain's, or
            one past the attester's requests this service accepted and has not failed).
        ReceiptAlreadyClaimed: a receipt the review claims backs another live review (a judge that unbinds
            replayed receipts never gets this).
        whatever ``judge`` raises.
    """
    own: ChunkWriter | None = None
    deferred: list[Rider] | None = None  # the aggregate update, run with the rows (one review at once only)
    facts: OutboxFacts | None
    if not locked and publication is not None and target is None:  # an API review: its reads in one round trip
        [facts], target = lock_and_read(
            session, attesters=[attester], requests=[(publication.content_key, attester)],
            pairs=[(attester, subject_normalized)], replay_keys=candidate_receipts, now=now,
        )  # fmt: skip
        own, deferred = target, []
    else:
        if not locked:
            lock_attesters(session, attesters=[attester])
        facts = outbox_facts(session, content_key=publication.content_key, attester=attester) if publication else None
    if publication is not None and facts is not None:
        if facts.known_review_id is not None:
            if own is not None:
                _drop_unused_aggregates(session, own, written=(), riders=None)
            return Stored(review_id=facts.known_review_id, existing=True)
        check_nonce(publication, own_next=facts.own_next)
    if target is None:  # one review: its own ChunkWriter, written at once
        target = own = ChunkWriter.load(session, pairs=[(attester, subject_normalized)],
                                        replay_keys=candidate_receipts)  # fmt: skip
        deferred = []
    row, superseding, arrives_superseded = _write_review(
        session, target, attester=attester, subject_normalized=subject_normalized, review_time=review_time,
        candidate_receipts=candidate_receipts, judge=judge, aggregates=aggregates, now=now, latest=latest,
        riders=deferred, locked=own.locked_aggregates if own is not None else None,
    )  # fmt: skip
    outbox = _outbox_row(publication, review_id=row.id, attester=attester, now=now) if publication else None
    if own is not None:
        own.flush(session, outboxes=[outbox] if outbox is not None else (), riders=[*(deferred or ()), *riders])
    else:
        outboxes = [outbox_values(outbox)] if outbox is not None else []
        insert_rows(session, tables=[(OutboxRow.__table__, outboxes)], riders=riders)  # type: ignore[attr-defined]
    return Stored(
        review_id=row.id,
        superseded=superseding.id if superseding else None,
        arrives_superseded=arrives_superseded,
    )


def lock_and_read(
    session: Session,
    *,
    attesters: Sequence[str],
    requests: Sequence[tuple[str, str]],
    pairs: Iterable[tuple[str, str]],
    replay_keys: Iterable[str],
    now: int,
) -> tuple[list[OutboxFacts], ChunkWriter]:
    """:func:`lock_attesters`, then :func:`outbox_facts_many` of ``requests`` (content key, attester) and
    :meth:`ChunkWriter.load` — on PostgreSQL sent as one pipeline (``store.pipeline``) with the lock of the pairs'
    subject aggregate rows (``store.aggregates.lock_many``, kept in ``ChunkWriter.locked_aggregates``): two round
    trips instead of six (psycopg waits for BEGIN first), and the server takes the locks in the write path's order,
    each statement after the one before. The live reviews, claims and aggregate rows are locked before the caller
    learns that a request was accepted already or carries a wrong nonce: a repeat costs the reads it skipped
    before, and takes (and, for a subject that had none, creates and then deletes) the aggregate row's lock.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database failed (nothing is written).
    """
    wanted, keys = sorted(set(pairs)), sorted(set(replay_keys))
    conn = session.connection()
    if requests and len(wanted) <= LIVE_PAIRS_PER_READ and len(keys) <= CLAIM_KEYS_PER_READ and can_pipeline(conn):
        locks = sorted({_lock_key(a) for a in attesters})
        reads = [Read(statement=_LOCK_MANY, params={"ks": locks}, result=list), facts_many_read(requests=requests),
                 live_ids_read(pairs=wanted), claims_read(replay_keys=keys),
                 lock_many_read(subjects=[s for _, s in wanted], now=now)]  # fmt: skip
        _, facts, live_ids, claims, states = run_reads(conn, reads=reads)
        return facts, ChunkWriter.from_reads(pairs=wanted, live=live_rows(session, ids=live_ids), claims=claims,
                                             locked_aggregates=states)  # fmt: skip
    lock_attesters(session, attesters=attesters)
    return outbox_facts_many(session, requests=requests), ChunkWriter.load(session, pairs=wanted, replay_keys=keys)


def check_nonce(publication: Publication, *, own_next: int | None) -> None:
    """The EAS nonce rule of an API review: its nonce is the attester's next (``store.outbox.next_nonce`` of
    ``publication.chain_nonce`` and ``own_next``).

    Raises:
        ChainRejected(DELEGATION_NONCE): it is not.
    """
    expected = next_nonce(chain=publication.chain_nonce, own_next=own_next)
    if publication.nonce != expected:
        raise ChainRejected(Reason.DELEGATION_NONCE, f"nonce {publication.nonce}, expected {expected}")


def _outbox_row(publication: Publication, *, review_id: str, attester: str, now: int) -> OutboxRow:
    return new_row(
        OutboxRow, content_key=publication.content_key, review_id=review_id, attester=attester,
        recipient=publication.recipient, data_hex=publication.data_hex, deadline=publication.deadline,
        nonce=str(publication.nonce), signature=publication.signature, created_at=now, updated_at=now,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Submission:
    """An API review to store as one of a group (:func:`store_submissions`): the arguments of
    :func:`store_judged_review` for it."""

    attester: str
    subject_normalized: str
    review_time: int
    candidate_receipts: Sequence[str]
    judge: Callable[[Placement], JudgedRows]
    publication: Publication
    riders: Sequence[Rider] = ()


class _Refused(Exception):
    """A submission's judge refused it (before anything of it was written)."""

    def __init__(self, error: OmaTrustError) -> None:
        super().__init__(str(error))
        self.error = error


def store_submissions(
    session: Session, *, items: Sequence[Submission], aggregates: GroupAggregates, now: int
) -> list[Stored | OmaTrustError]:
    """Store a group of API reviews in the caller's transaction, in order, with the outcomes
    :func:`store_judged_review` (``latest=True``) would give each in turn — an item sees the items before it (a
    repeated request is ``existing``; an attester's next nonce counts its earlier items; a receipt claimed earlier
    is replayed; a later review supersedes an earlier one) — but with the store's facts read and the rows written
    once for the group: every attester locked (sorted) in one statement, the outbox facts, live reviews and receipt
    claims read in one statement each, the subjects' aggregate rows locked and changed once (``aggregates``
    records the changes; flushed before the rows are written, as the one-review path locks its aggregate row before
    its write: the same lock order, so neither waits on a row the other inserts while holding what it needs), and
    every row written together (:class:`ChunkWriter`).

    A refused item (DELEGATION_NONCE, or an :class:`OmaTrustError` its judge raised) is returned in its place and
    nothing of it is written.

    Raises:
        anything else, e.g. a database error: the group is not stored (roll the transaction back).
    """
    facts, target = lock_and_read(
        session, attesters=[i.attester for i in items],
        requests=[(i.publication.content_key, i.attester) for i in items],
        pairs=[(i.attester, i.subject_normalized) for i in items],
        replay_keys=[k for i in items for k in i.candidate_receipts], now=now,
    )  # fmt: skip
    accepted: dict[str, str] = {}  # content key → review id, accepted in this group
    group_next: dict[str, int] = {}  # attester → one past the nonces accepted in this group
    outboxes: list[OutboxRow] = []
    riders: dict[str, Rider] = {}  # one of each (the same publish job for many reviews), by rider_key
    out: list[Stored | OmaTrustError] = []
    for item, fact in zip(items, facts, strict=True):
        pub = item.publication
        known = fact.known_review_id or accepted.get(pub.content_key)
        if known is not None:
            out.append(Stored(review_id=known, existing=True))
            continue
        try:
            check_nonce(pub, own_next=max(fact.own_next or 0, group_next.get(item.attester, 0)) or None)
            row, superseding, arrives_superseded = _write_review(
                session, target, attester=item.attester, subject_normalized=item.subject_normalized,
                review_time=item.review_time, candidate_receipts=item.candidate_receipts,
                judge=functools.partial(_judge_refusing, item.judge), aggregates=aggregates, now=now, latest=True,
            )  # fmt: skip
        except ChainRejected as exc:
            out.append(exc)
            continue
        except _Refused as refused:
            out.append(refused.error)
            continue
        accepted[pub.content_key] = row.id
        group_next[item.attester] = pub.nonce + 1
        outboxes.append(_outbox_row(pub, review_id=row.id, attester=item.attester, now=row.created_at))
        for rider in item.riders:
            riders.setdefault(rider_key(rider), rider)
        out.append(Stored(review_id=row.id, superseded=superseding.id if superseding else None,
                          arrives_superseded=arrives_superseded))  # fmt: skip
    saves: list[Rider] = []  # the aggregates' new states, written with the rows
    aggregates.flush(session, now=now, riders=saves, locked=target.locked_aggregates)  # locked before the inserts
    written = [i for i, o in zip(items, out, strict=True) if isinstance(o, Stored) and not o.existing]
    _drop_unused_aggregates(session, target, written=written, riders=saves)
    # In a fixed order (by their parameters): two groups inserting the same jobs in different orders would wait on
    # each other's uncommitted rows. Riders of one call must not share parameter names: the rest run alone.
    distinct = [riders[k] for k in sorted(riders)]
    target.flush(session, outboxes=outboxes, riders=[*saves, *distinct[:1]])
    for rider in distinct[1:]:
        insert_rows(session, tables=[], riders=[rider])
    return out


def _drop_unused_aggregates(
    session: Session, writer: ChunkWriter, *, written: Sequence[Submission], riders: list[Rider] | None
) -> None:
    """Delete the aggregate rows ``lock_and_read`` locked and found empty (it created them) whose subject none of
    the ``written`` items is about: what storing nothing of the others would have left (no row). Appended to
    ``riders``, or run now when it is None."""
    wanted = {i.subject_normalized for i in written}
    unused = [s for s, state in (writer.locked_aggregates or {}).items() if not state and s not in wanted]
    if not unused:
        return
    if riders is not None:
        riders.append(drop_empty(subjects=unused))
    else:
        insert_rows(session, tables=[], riders=[drop_empty(subjects=unused)])


def _judge_refusing(judge: Callable[[Placement], JudgedRows], placement: Placement) -> JudgedRows:
    try:
        return judge(placement)
    except OmaTrustError as exc:
        raise _Refused(exc) from exc


class ChunkWriter:
    """A :class:`WriteTarget` for one review or a whole sync chunk: the live reviews of every (attester, subject)
    pair and the holders of every candidate receipt are read in one query each (:meth:`load`), each review is
    judged against what the chunk already holds (several reviews of one attester and subject apply in order), and
    :meth:`flush` writes everything in bulk — supersessions of stored rows first, then the new reviews, receipt
    claims and proofs (executemany). The caller must hold every attester's lock (``lock_attesters``) before
    :meth:`load`."""

    def __init__(self) -> None:
        self._live: dict[tuple[str, str], ReviewRow | None] = {}
        self._live_ids: set[str] = set()  # reviews known live (loaded or written in this chunk)
        self._holders: dict[str, str | None] = {}  # replay key → the review its claim names (None: no claim)
        self._stored_claims: set[str] = set()  # replay keys that have a claim row already
        self._changed_claims: dict[str, ReviewRow] = {}  # replay key → the review it now backs
        self._rows: list[ReviewRow] = []
        self._proofs: list[ProofRow] = []
        self.locked_aggregates: dict[str, dict[str, Any]] | None = None  # the subjects' states, locked (lock_and_read)

    @classmethod
    def load(
        cls, session: Session, *, pairs: Iterable[tuple[str, str]], replay_keys: Iterable[str]
    ) -> ChunkWriter:
        """Read the store's facts for these (attester, normalized subject) pairs and candidate receipts, one query
        each (the live reviews and the claims are locked on PostgreSQL)."""
        wanted = sorted(set(pairs))
        return cls.from_reads(pairs=wanted, live=live_reviews_of(session, pairs=wanted),
                              claims=claims_of(session, replay_keys=sorted(set(replay_keys))))  # fmt: skip

    @classmethod
    def from_reads(
        cls, *, pairs: Iterable[tuple[str, str]], live: Iterable[ReviewRow], claims: Iterable[tuple[str, str, bool]],
        locked_aggregates: dict[str, dict[str, Any]] | None = None,
    ) -> ChunkWriter:  # fmt: skip
        """A writer over facts read already: the live reviews of ``pairs`` and the claims (as :func:`claims_of`),
        and the subjects' aggregate states when the caller locked them (``store.aggregates.lock_many``)."""
        writer = cls()
        writer.locked_aggregates = locked_aggregates
        for pair in pairs:
            writer._live[pair] = None
        for row in live:
            writer._live[(row.attester, row.subject_normalized)] = row
            writer._live_ids.add(row.id)
        for key, holder, holder_live in claims:
            writer._holders[key] = holder
            writer._stored_claims.add(key)
            if holder_live:
                writer._live_ids.add(holder)
        return writer

    def live_review(self, *, attester: str, subject_normalized: str) -> ReviewRow | None:
        """The live review of the pair as the chunk stands now.

        Raises:
            LookupError: the pair was not given to :meth:`load` (a caller bug).
        """
        try:
            return self._live[(attester, subject_normalized)]
        except KeyError:
            raise LookupError(f"({attester}, {subject_normalized}) was not loaded for this chunk") from None

    def receipt_holder(self, *, replay_key: str) -> str | None:
        holder = self._holders.get(replay_key)
        return holder if holder is not None and holder in self._live_ids else None

    def supersede(self, *, row: ReviewRow, by: str) -> None:
        row.superseded_by = by  # a stored row: its UPDATE is flushed first (before the inserts)
        self._live_ids.discard(row.id)
        self._live[(row.attester, row.subject_normalized)] = None

    def insert(self, *, row: ReviewRow, proofs: Sequence[ProofRow]) -> None:
        self._rows.append(row)
        self._proofs.extend(proofs)
        if row.superseded_by is None:
            self._live[(row.attester, row.subject_normalized)] = row
            self._live_ids.add(row.id)

    def claim(self, *, replay_keys: Sequence[str], review: ReviewRow, superseding: str | None) -> None:
        """``review`` claims these receipts (transferring claims of reviews that are not live, or of ``superseding``).

        Raises:
            ReceiptAlreadyClaimed: another live review holds one of them (nothing is claimed).
        """
        for key in replay_keys:
            holder = self._holders.get(key)
            if holder is not None and claim_conflicts(holder=holder, holder_live=holder in self._live_ids,
                                                      review_id=review.id, superseding=superseding):  # fmt: skip
                raise ReceiptAlreadyClaimed(key, holder)
        for key in replay_keys:
            self._holders[key] = review.id
            self._changed_claims[key] = review

    def flush(
        self, session: Session, *, outboxes: Sequence[OutboxRow] = (), riders: Sequence[Rider] = ()
    ) -> None:
        """Write what the chunk holds (and ``outboxes``, API reviews' publish requests), in the caller's
        transaction: the supersessions first, then every new row with the ``riders`` (on PostgreSQL, for a few
        reviews, in a single statement), then the claims moved to new reviews."""
        session.flush()  # the supersessions of stored rows (loaded, changed ORM rows): before the new live rows
        new_claims = [claim_values(k, r) for k, r in self._changed_claims.items() if k not in self._stored_claims]
        insert_rows(session, tables=[
            (ReviewRow.__table__, [review_values(r) for r in self._rows]),  # type: ignore[attr-defined]
            (ReceiptClaimRow.__table__, new_claims),  # type: ignore[attr-defined]
            (ProofRow.__table__, [proof_values(p) for p in self._proofs]),  # type: ignore[attr-defined]
            (OutboxRow.__table__, [outbox_values(o) for o in outboxes]),  # type: ignore[attr-defined]
        ], riders=riders)  # fmt: skip
        # claims moved to new reviews: after those rows exist
        move_claims(session, moved=[(k, r) for k, r in self._changed_claims.items() if k in self._stored_claims])
        self._rows, self._proofs, self._changed_claims = [], [], {}

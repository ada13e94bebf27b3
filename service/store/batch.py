"""Batch queries for re-verification and chain sync: keyset-paginated column reads, bulk writes, run checkpoints,
the indexer checkpoint and rejected chain attestations.

Reads select plain columns (tuples, no ORM objects): a re-verification run reads every review, and building ORM
objects would cost more than verifying them. Functions take a session; the caller owns the transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    JSON,
    String,
    Text,
    any_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import configure_mappers, instrumentation
from sqlmodel import Session, SQLModel, col

from service.store.in_lists import ByDialect
from service.store.pipeline import Read, run_read
from service.store.tables import (
    ChainRejectRow,
    DidSnapshotRow,
    IndexerProgressRow,
    OutcomeHistoryRow,
    ProofRow,
    ReceiptClaimRow,
    ReverifyAttemptRow,
    ReverifyRunRow,
    ReviewRow,
)

_Row = TypeVar("_Row", bound=SQLModel)


class ReviewKey(NamedTuple):
    """Position of a review in the batch order (the ``ix_reviews_subject_time`` index)."""

    subject_normalized: str
    review_time: int
    review_id: str


class BatchReview(NamedTuple):
    id: str
    subject: str
    subject_normalized: str
    attester: str
    review_time: int
    rating_value: int
    proofs_json: str  # the stored JSON text of the proofs list
    verified_purchase: bool
    evidence: str
    superseded: bool
    attestation_uid: str | None
    problem: str | None

    @property
    def key(self) -> ReviewKey:
        return ReviewKey(self.subject_normalized, self.review_time, self.id)


class BatchProof(NamedTuple):
    id: int
    review_id: str
    position: int
    status: str
    reason: str | None
    kind: str | None
    format: str | None
    signature_valid: bool
    signer: str | None
    tier: str | None
    replay_key: str | None
    bound: bool
    issued_at: int | None
    checked_at: int
    evidence_hash: str | None


class Snapshot(NamedTuple):
    snapshot_hash: str
    did: str
    kind: str
    raw: str
    first_seen_at: int


@dataclass(frozen=True, slots=True)
class Selection:
    """Which reviews a batch run covers (all filters optional; ``subjects`` restricts to a partition's subjects)."""

    subject_normalized: str | None = None
    since: int | None = None
    status: str | None = None


# Core table columns: pages are read without the ORM (no per-row entity bookkeeping).
_REVIEWS = ReviewRow.__table__  # type: ignore[attr-defined]
_PROOFS = ProofRow.__table__  # type: ignore[attr-defined]
_R = _REVIEWS.c
_P = _PROOFS.c
_IN_BATCH = 500  # values per IN list (SQLite limits bound parameters per statement)

_REVIEW_COLUMNS = (
    _R.id,
    _R.subject,
    _R.subject_normalized,
    _R.attester,
    _R.review_time,
    _R.rating_value,
    cast(_R.proofs_json, Text),  # the JSON text: decoded by the worker that judges it, not here
    _R.verified_purchase,
    _R.evidence,
    _R.superseded_by,
    _R.attestation_uid,
    _R.problem,
)

_PROOF_COLUMNS = (
    _P.id,
    _P.review_id,
    _P.position,
    _P.status,
    _P.reason,
    _P.kind,
    _P.format,
    _P.signature_valid,
    _P.signer,
    _P.tier,
    _P.replay_key,
    _P.bound,
    _P.issued_at,
    _P.checked_at,
    _P.evidence_hash,
)


def _filtered(stmt: Any, selection: Selection) -> Any:
    if selection.subject_normalized is not None:
        stmt = stmt.where(col(ReviewRow.subject_normalized) == selection.subject_normalized)
    if selection.since is not None:
        stmt = stmt.where(col(ReviewRow.review_time) >= selection.since)
    if selection.status is not None:
        other = _PROOFS.alias("status_proofs")  # its own alias: the outer query may join proofs too
        stmt = stmt.where(exists().where(other.c.review_id == _R.id, other.c.status == selection.status))
    return stmt


def subject_counts(session: Session, *, selection: Selection) -> list[tuple[str, int]]:
    """(subject_normalized, number of selected reviews) for every subject with selected reviews, sorted."""
    stmt = _filtered(
        select(col(ReviewRow.subject_normalized), func.count()).group_by(col(ReviewRow.subject_normalized)),
        selection,
    ).order_by(col(ReviewRow.subject_normalized))
    return [(str(s), int(n)) for s, n in session.execute(stmt)]


def count_reviews(session: Session, *, selection: Selection) -> int:
    return int(session.execute(_filtered(select(func.count()).select_from(ReviewRow), selection)).scalar_one())


def review_page(
    session: Session,
    *,
    selection: Selection,
    after: ReviewKey | None,
    limit: int,
    subjects: Sequence[str] | None = None,
) -> list[BatchReview]:
    """The next ``limit`` selected reviews after ``after`` in (subject_normalized, review_time, id) order.

    ``subjects`` (a sorted slice of a partition's subjects) restricts the page to those subjects.
    """
    stmt = _filtered(select(*_REVIEW_COLUMNS), selection)
    if subjects is not None:
        stmt = stmt.where(_R.subject_normalized.in_(list(subjects)))
    if after is not None:
        stmt = stmt.where(tuple_(_R.subject_normalized, _R.review_time, _R.id) > tuple_(*after))
    stmt = stmt.order_by(_R.subject_normalized, _R.review_time, _R.id).limit(limit)
    out: list[BatchReview] = []
    for r in session.connection().execute(stmt).all():
        review = BatchReview(
            id=r[0], subject=r[1], subject_normalized=r[2], attester=r[3], review_time=int(r[4]),
            rating_value=int(r[5]), proofs_json=r[6] or "[]", verified_purchase=bool(r[7]), evidence=r[8],
            superseded=r[9] is not None, attestation_uid=r[10], problem=r[11],
        )  # fmt: skip
        out.append(review)
    return out


def proofs_of(
    session: Session,
    *,
    selection: Selection,
    first: ReviewKey,
    last: ReviewKey,
    subjects: Sequence[str] | None = None,
) -> dict[str, list[BatchProof]]:
    """Proof rows of the selected reviews whose keys lie in [first, last] — i.e. of one page from
    ``review_page`` — in one range query (no IN list of ids), grouped by review id (order within a review not
    guaranteed: callers go by ``position``)."""
    joined = select(*_PROOF_COLUMNS).select_from(_PROOFS.join(_REVIEWS, _P.review_id == _R.id))
    stmt = _filtered(joined, selection)
    key = tuple_(_R.subject_normalized, _R.review_time, _R.id)
    stmt = stmt.where(key >= tuple_(*first), key <= tuple_(*last))
    if subjects is not None:
        stmt = stmt.where(_R.subject_normalized.in_(list(subjects)))
    out: dict[str, list[BatchProof]] = {}
    for r in session.connection().execute(stmt).all():
        out.setdefault(r[1], []).append(BatchProof._make(r))
    return out


def proofs_of_reviews(session: Session, *, review_ids: Sequence[str]) -> dict[str, list[BatchProof]]:
    """Proof rows of these reviews (one page of ``review_page``) by the ``ix_proofs_review_id`` index, grouped by
    review id (order within a review not guaranteed: callers go by ``position``). PostgreSQL: one array parameter;
    SQLite: IN lists of at most ``_IN_BATCH``."""
    ids = list(review_ids)
    if not ids:
        return {}
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        statements = [select(*_PROOF_COLUMNS).where(_P.review_id == any_(bindparam("ids", ids, type_=ARRAY(String))))]
    else:
        statements = [select(*_PROOF_COLUMNS).where(_P.review_id.in_(ids[k : k + _IN_BATCH]))
                      for k in range(0, len(ids), _IN_BATCH)]  # fmt: skip
    out: dict[str, list[BatchProof]] = {}
    for stmt in statements:
        for r in conn.execute(stmt).all():
            out.setdefault(r[1], []).append(BatchProof._make(r))
    return out


def snapshots_by_hash(session: Session, *, hashes: Iterable[str]) -> dict[str, Snapshot]:
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    stmt = select(
        col(DidSnapshotRow.snapshot_hash),
        col(DidSnapshotRow.did),
        col(DidSnapshotRow.kind),
        col(DidSnapshotRow.raw),
        col(DidSnapshotRow.first_seen_at),
    ).where(col(DidSnapshotRow.snapshot_hash).in_(wanted))
    return {r[0]: Snapshot(r[0], r[1], r[2], r[3], int(r[4])) for r in session.execute(stmt)}


def lock_reviews(session: Session, *, review_ids: Sequence[str]) -> dict[str, ReviewRow]:
    """The current rows of these reviews, locked for the rest of the transaction (PostgreSQL; SQLite writers are
    serialized anyway)."""
    if not review_ids:
        return {}
    stmt = select(ReviewRow).where(col(ReviewRow.id).in_(list(review_ids))).order_by(col(ReviewRow.id))
    return {row.id: row for row in session.execute(stmt.with_for_update()).scalars()}  # id order: as every writer


def update_proofs(session: Session, *, changes: Sequence[Mapping[str, Any]]) -> None:
    """Bulk UPDATE of proof rows; each mapping has ``id`` plus the columns to set (all mappings the same keys)."""
    if changes:
        session.execute(update(ProofRow), list(changes))


def update_reviews(session: Session, *, changes: Sequence[Mapping[str, Any]]) -> None:
    """Bulk UPDATE of review rows by primary key ``id``."""
    if changes:
        session.execute(update(ReviewRow), list(changes))


def insert_history(session: Session, *, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(insert(OutcomeHistoryRow), list(rows))


def insert_attempts(session: Session, *, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(insert(ReverifyAttemptRow), list(rows))


def history_of_run(session: Session, *, run_id: str) -> list[OutcomeHistoryRow]:
    stmt = select(OutcomeHistoryRow).where(col(OutcomeHistoryRow.run_id) == run_id).order_by(col(OutcomeHistoryRow.id))
    return list(session.execute(stmt).scalars())


# ---- re-verification runs -------------------------------------------------------------------------------------


def create_run(session: Session, *, run_id: str, selection: Mapping[str, Any], now: int) -> ReverifyRunRow:
    row = ReverifyRunRow(run_id=run_id, selection=dict(selection), started_at=now, updated_at=now)
    session.add(row)
    return row


def get_run(session: Session, *, run_id: str) -> ReverifyRunRow | None:
    return session.get(ReverifyRunRow, run_id)


def latest_unfinished_run(session: Session, *, selection: Mapping[str, Any]) -> ReverifyRunRow | None:
    """The most recently started run still ``running`` whose selection equals ``selection``."""
    stmt = (
        select(ReverifyRunRow)
        .where(col(ReverifyRunRow.state) == "running")
        .order_by(col(ReverifyRunRow.started_at).desc(), col(ReverifyRunRow.run_id).desc())
    )
    rows: list[ReverifyRunRow] = list(session.execute(stmt).scalars())
    return next((row for row in rows if dict(row.selection) == dict(selection)), None)


def save_run_progress(
    session: Session,
    *,
    run_id: str,
    last: ReviewKey | None,
    reviews_checked: int,
    tallies: Mapping[str, Any],
    now: int,
    finished: bool = False,
) -> None:
    """Move the run's checkpoint. Called first in a chunk's transaction, it also takes SQLite's write lock before
    the chunk's rows are re-read."""
    values: dict[str, Any] = {"reviews_checked": reviews_checked, "tallies": dict(tallies), "updated_at": now}
    if last is not None:
        values.update(last_subject=last.subject_normalized, last_time=last.review_time, last_review_id=last.review_id)
    if finished:
        values.update(state="done", finished_at=now)
    session.execute(update(ReverifyRunRow).where(col(ReverifyRunRow.run_id) == run_id).values(**values))


def run_checkpoint(row: ReverifyRunRow) -> ReviewKey | None:
    if row.last_review_id is None or row.last_subject is None or row.last_time is None:
        return None
    return ReviewKey(row.last_subject, int(row.last_time), row.last_review_id)


# ---- chain sync ---------------------------------------------------------------------------------------------------


def advance_indexer_checkpoint(session: Session, *, name: str, block: int, now: int) -> None:
    """Set the checkpoint to ``block`` unless it is already further (a re-scan from an older block never moves it
    back)."""
    row = session.get(IndexerProgressRow, name, with_for_update=True)
    if row is None:
        session.add(IndexerProgressRow(name=name, last_block=block, updated_at=now))
    elif block > row.last_block:
        row.last_block, row.updated_at = block, now
        session.add(row)


def known_uids(session: Session, *, uids: Sequence[str]) -> set[str]:
    """Which of these attestation UIDs are already stored (as reviews or as rejects)."""
    if not uids:
        return set()
    wanted = [u.lower() for u in uids]
    uid = col(ReviewRow.attestation_uid)
    found = set(session.execute(select(uid).where(uid.in_(wanted))).scalars())
    reject = col(ChainRejectRow.uid)
    found |= set(session.execute(select(reject).where(reject.in_(wanted))).scalars())
    return {str(u) for u in found}


def unlinked_own_review(session: Session, *, attester: str, subject_normalized: str, data_hex: str) -> ReviewRow | None:
    """A review we accepted through the API with exactly this attestation data and no UID yet (published, but the
    publisher has not recorded the UID): the attestation found on chain is that review."""
    stmt = select(ReviewRow).where(
        col(ReviewRow.attester) == attester,
        col(ReviewRow.subject_normalized) == subject_normalized,
        col(ReviewRow.attestation_uid).is_(None),
        col(ReviewRow.source) == "api",
    )
    rows: list[ReviewRow] = list(session.execute(stmt).scalars())
    return next((row for row in rows if row.data_hex.lower() == data_hex.lower()), None)


def add_chain_reject(session: Session, *, row: ChainRejectRow) -> None:
    session.add(row)



# ---- bulk writes of a sync chunk (service.store.judged.ChunkWriter) -------------------------------------------------

_CLAIMS = ReceiptClaimRow.__table__  # type: ignore[attr-defined]


# Built once per dialect (list parameters): building and cache-keying them per write cost more than running them.
_LIVE_OF = ByDialect(  # plain columns: most writes find none, and then no ORM query runs at all
    lambda in_list: select(_R.id, _R.attester, _R.subject_normalized)
    .where(in_list(_R.attester, "attesters"))
    .where(in_list(_R.subject_normalized, "subjects"))
    .where(_R.superseded_by.is_(None))
    .order_by(_R.id)  # rows are locked in the order returned: one order for every writer
    .with_for_update()
)
_CLAIMS_OF = ByDialect(
    lambda in_list: select(_CLAIMS.c.replay_key, _CLAIMS.c.review_id, _R.id, _R.superseded_by)
    .select_from(_CLAIMS.outerjoin(_REVIEWS, _R.id == _CLAIMS.c.review_id))
    .where(in_list(_CLAIMS.c.replay_key, "keys"))
    .order_by(_CLAIMS.c.replay_key)
    .with_for_update(of=_CLAIMS)
)


def live_reviews_of(session: Session, *, pairs: Sequence[tuple[str, str]]) -> list[ReviewRow]:
    """The live reviews of these (attester, normalized subject) pairs, locked (PostgreSQL) for the supersession
    decisions of a write: their rows are locked (in id order) by a plain read, then loaded as ORM objects (to be
    changed) only when there are any."""
    ids: list[str] = []
    conn = session.connection()
    for k in range(0, len(pairs), LIVE_PAIRS_PER_READ):
        ids.extend(run_read(conn, live_ids_read(pairs=pairs[k : k + LIVE_PAIRS_PER_READ])))
    return live_rows(session, ids=ids)


LIVE_PAIRS_PER_READ = _IN_BATCH // 2  # two bound parameters per pair (SQLite)


def live_ids_read(*, pairs: Sequence[tuple[str, str]]) -> Read[list[str]]:
    """The ids of the live reviews of these pairs (at most :data:`LIVE_PAIRS_PER_READ`), locked in id order."""
    wanted = set(pairs)
    params = {"attesters": sorted({a for a, _ in pairs}), "subjects": sorted({s for _, s in pairs})}
    return Read(statement=_LIVE_OF, params=params,
                result=lambda rows: [i for i, a, s in rows if (a, s) in wanted])  # fmt: skip


def live_rows(session: Session, *, ids: Sequence[str]) -> list[ReviewRow]:
    """The ORM rows of the live reviews :func:`live_ids_read` found (held already), in id order."""
    out: list[ReviewRow] = []  # (IN lists bounded as above)
    for k in range(0, len(ids), _IN_BATCH):
        out.extend(lock_reviews(session, review_ids=ids[k : k + _IN_BATCH]).values())
    return out


def claims_of(session: Session, *, replay_keys: Sequence[str]) -> list[tuple[str, str, bool]]:
    """(replay key, the review its claim names, whether that review is live) for the claimed ones among these
    receipts; the claim rows are locked (PostgreSQL), as ``claim_receipts`` locks them one by one."""
    out: list[tuple[str, str, bool]] = []
    conn = session.connection()
    for k in range(0, len(replay_keys), CLAIM_KEYS_PER_READ):
        out.extend(run_read(conn, claims_read(replay_keys=replay_keys[k : k + CLAIM_KEYS_PER_READ])))
    return out


CLAIM_KEYS_PER_READ = _IN_BATCH


def claims_read(*, replay_keys: Sequence[str]) -> Read[list[tuple[str, str, bool]]]:
    """The read of :func:`claims_of` for at most :data:`CLAIM_KEYS_PER_READ` keys."""
    return Read(statement=_CLAIMS_OF, params={"keys": list(replay_keys)},
                result=lambda rows: [(key, holder, found is not None and superseded_by is None)
                                     for key, holder, found, superseded_by in rows])  # fmt: skip


def _values(row: Any, table: Any, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    # The instance dict holds every loaded or set column (read directly: ≈ 10× cheaper than instrumented getattr).
    have = row.__dict__
    return {c.name: have[c.name] if c.name in have else getattr(row, c.name) for c in table.columns
            if c.name not in skip}  # fmt: skip


@functools.cache
def _fields_of(model: type[SQLModel]) -> tuple[frozenset[str], frozenset[str], dict[str, Any]]:
    """(every field, the required ones, the plain defaults of the others) of a table model."""
    required, defaults = set(), {}
    for name, info in model.model_fields.items():
        if info.is_required() or info.default_factory is not None or isinstance(info.default, (list, dict, set)):
            required.add(name)  # only immutable defaults are filled in (shared by every row): others must be given
        else:
            defaults[name] = info.default
    return frozenset(model.model_fields), frozenset(required), defaults


def new_row(model: type[_Row], /, **values: Any) -> _Row:
    """A new (transient) row of ``model`` built without SQLModel's per-field validation and ``setattr`` path
    (≈ 10 µs instead of 40–375 µs: a submission builds a review, its proofs and an outbox row; sync a review per
    attestation). Fields not given take their declared default. The row behaves as ``model(...)`` does: it can be
    added to a session or written by :func:`insert_rows`, and later attribute changes are tracked. Values are taken
    as given (not validated): for rows the service builds itself, not for outside input.

    Raises:
        ValueError: a field is unknown, or a field without a default is missing.
    """
    fields, required, defaults = _fields_of(model)
    if not values.keys() <= fields or not required <= values.keys():
        raise ValueError(f"{model.__name__}: unknown {sorted(values.keys() - fields)}, "
                         f"missing {sorted(required - values.keys())}")  # fmt: skip
    if not model.__mapper__.configured:  # type: ignore[attr-defined]
        configure_mappers()
    row: _Row = instrumentation.manager_of_class(model).new_instance()  # ORM state, pydantic private attrs
    row.__dict__.update(defaults)  # immutable defaults (None, numbers, strings) only: shared safely
    row.__dict__.update(values)  # the ORM reads a new row's values from its instance dict at INSERT
    object.__setattr__(row, "__pydantic_fields_set__", set(values))
    object.__setattr__(row, "__pydantic_extra__", None)
    return row


def new_review_row(**values: Any) -> ReviewRow:
    """:func:`new_row` of a review, every column given (sync and submit write each one explicitly).

    Raises:
        ValueError: ``values`` does not name exactly the table's columns.
    """
    if values.keys() != _fields_of(ReviewRow)[0]:
        raise ValueError(f"columns missing or unknown: {sorted(_fields_of(ReviewRow)[0] ^ values.keys())}")
    return new_row(ReviewRow, **values)


_MOVE_CLAIM = (
    update(_CLAIMS)
    .where(_CLAIMS.c.replay_key == bindparam("key"))
    .values(review_id=bindparam("rid"), attester=bindparam("att"), subject_normalized=bindparam("subj"))
)


def move_claims(session: Session, *, moved: Sequence[tuple[str, ReviewRow]]) -> None:
    """Point existing receipt claims (replay key → review) at their new review, in one executemany. New claims are
    inserted with the review rows (:func:`insert_rows`)."""
    if moved:
        session.connection().execute(_MOVE_CLAIM, [
            {"key": k, "rid": r.id, "att": r.attester, "subj": r.subject_normalized} for k, r in moved
        ])  # fmt: skip


# At most this many rows per table are written by one statement on PostgreSQL (:func:`insert_rows`); larger
# writes (sync chunks) use one executemany per table.
_ONE_STATEMENT_ROWS = 8


@dataclass(frozen=True, slots=True)
class Rider:
    """A write that goes with the rows of an :func:`insert_rows` call, in the same transaction (on PostgreSQL, in
    the same statement: no round trip of its own). ``statement`` is an INSERT or UPDATE built once (module level);
    its bind parameter names must not be used by the other riders of the call."""

    statement: Any
    params: Mapping[str, Any]


def rider_key(rider: Rider) -> str:
    """A fixed order for riders: writers that run the same riders (e.g. the same publish jobs, whose inserts wait
    on each other's uncommitted rows) run them in this order, so none waits on another in a cycle. Riders with
    equal parameters are taken for the same write."""
    return repr(sorted(rider.params.items()))


def _recordset_insert(table: Any, columns: tuple[str, ...], param: str) -> Any:
    """``INSERT INTO t (columns) SELECT columns FROM json_populate_recordset(NULL::t, :param)``: every row of the
    table in one JSON parameter, so the statement's text does not depend on the number of rows and it has one bound
    parameter per table (psycopg caches the parsing of a statement only up to 50 parameters; per-value adaptation is
    replaced by one ``json.dumps``). A ``None`` in a JSON column is written as JSON ``null``, as the ORM writes it."""
    src = func.json_populate_recordset(literal_column(f"NULL::{table.name}"), bindparam(param, type_=JSON)).alias("r")
    picks: list[Any] = [
        literal_column(f"coalesce(r.{c}, 'null'::json)" if isinstance(table.c[c].type, JSON) else f"r.{c}")
        for c in columns
    ]
    return insert(table).from_select(list(columns), select(*picks).select_from(src))


@functools.lru_cache(maxsize=64)
def _one_statement(shape: tuple[tuple[Any, tuple[str, ...]], ...], riders: tuple[Any, ...]) -> Any:
    """One statement (PostgreSQL: data-modifying CTEs) writing the rows of each ``(table, columns)`` of ``shape``
    (bound parameter ``rows_<k>``: the k-th table's rows as JSON) and running the ``riders``. Built once per shape
    (and compiled once: it is cacheable)."""
    parts = [_recordset_insert(table, columns, f"rows_{k}") for k, (table, columns) in enumerate(shape)]
    parts += list(riders)
    main = parts[-1]
    for k, part in enumerate(parts[:-1]):
        main = main.add_cte(part.cte(f"w{k}"))
    return main


def insert_rows(
    session: Session, *, tables: Sequence[tuple[Any, Sequence[Mapping[str, Any]]]], riders: Sequence[Rider] = ()
) -> None:
    """INSERT ``(table, rows)`` (each row: column → value, every row of a table with the same columns) in the
    caller's transaction, and run the ``riders`` after them. PostgreSQL with few rows: all in one statement (one
    round trip; foreign keys are checked at the end of the statement, so child rows may come with their parents;
    database-assigned ids need not follow the order of the rows — nothing orders proofs by id; the riders must not
    read what the statement writes). Otherwise one executemany per table, in the order given, then each rider.
    Each row gives every column but database-assigned ids; values are JSON types (str, int, bool, None, list, dict)
    and storable (``service.storable``: no NUL anywhere, JSON values included — PostgreSQL's JSON record functions
    decode every escape); the PostgreSQL database is UTF-8 (its default; a ``SQL_ASCII`` one refuses non-ASCII here).

    Raises:
        ValueError: two riders use the same bound parameter name.
    """
    tables = [(t, rows) for t, rows in tables if rows]
    if not tables and not riders:
        return
    params: dict[str, Any] = {f"rows_{k}": list(rows) for k, (_, rows) in enumerate(tables)}
    for rider in riders:
        if params.keys() & rider.params.keys():
            raise ValueError(f"riders share bound parameters: {sorted(params.keys() & rider.params.keys())}")
        params.update(rider.params)
    conn = session.connection()
    small = all(len(rows) <= _ONE_STATEMENT_ROWS for _, rows in tables)
    if conn.dialect.name != "postgresql" or not small or len(tables) + len(riders) == 1:
        for table, rows in tables:
            conn.execute(insert(table), list(rows))
        for rider in riders:
            conn.execute(rider.statement, dict(rider.params))
        return
    shape = tuple((t, tuple(rows[0])) for t, rows in tables)
    conn.execute(_one_statement(shape, tuple(r.statement for r in riders)), params)


def review_values(row: ReviewRow) -> dict[str, Any]:
    """The columns of a review row to insert."""
    return _values(row, _REVIEWS)


def proof_values(row: ProofRow) -> dict[str, Any]:
    """The columns of a proof row to insert (its id is assigned by the database)."""
    return _values(row, _PROOFS, skip=("id",))


def claim_values(replay_key: str, review: ReviewRow) -> dict[str, Any]:
    """The columns of a receipt claim of ``review``."""
    return {"replay_key": replay_key, "review_id": review.id, "attester": review.attester,
            "subject_normalized": review.subject_normalized}  # fmt: skip

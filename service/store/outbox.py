"""The publish outbox in SQL: plain row operations. The publisher's contract (durable on return, oldest first,
terminal states sticky) is implemented on top of these in ``service.workflows.outbox``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, literal_column, union_all
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from service.store.engine import read_scope
from service.store.in_lists import ByDialect
from service.store.pipeline import Read, run_read
from service.store.tables import OutboxRow

TERMINAL = ("confirmed", "failed")


def outboxes_for(session: Session, *, review_ids: list[str]) -> dict[str, OutboxRow]:
    """The outbox row of each review that has one (one query)."""
    if not review_ids:
        return {}
    stmt = select(OutboxRow).where(col(OutboxRow.review_id).in_(review_ids))
    return {row.review_id: row for row in session.exec(stmt)}


def count_by_state(session: Session, *, state: str) -> int:
    return int(session.exec(select(func.count()).select_from(OutboxRow).where(OutboxRow.state == state)).one())


def _of_digits(digits: Sequence[str] | None) -> list[Any]:
    """Filter on the attester's last hex digit (a relayer key's share of attesters; None → every attester)."""
    return [] if digits is None else [func.substr(OutboxRow.attester, 42, 1).in_(list(digits))]


def pending_due(
    session: Session, *, limit: int, now: int, digits: Sequence[str] | None = None, skip_locked: bool = False
) -> list[OutboxRow]:
    """Pending rows due by ``now``, oldest first. ``skip_locked`` (PostgreSQL): lock them ``FOR UPDATE SKIP
    LOCKED`` until the session ends — rows another transaction holds are passed over, never waited for."""
    stmt = (
        select(OutboxRow)
        .where(OutboxRow.state == "pending", col(OutboxRow.next_attempt_at) <= now, *_of_digits(digits))
        .order_by(col(OutboxRow.id))
        .limit(limit)
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.exec(stmt))


def in_state(session: Session, *, state: str, digits: Sequence[str] | None = None) -> list[OutboxRow]:
    stmt = select(OutboxRow).where(OutboxRow.state == state, *_of_digits(digits)).order_by(col(OutboxRow.id))
    return list(session.exec(stmt))


def rows_by_id(session: Session, *, ids: Sequence[int]) -> list[OutboxRow]:
    stmt = select(OutboxRow).where(col(OutboxRow.id).in_(list(ids))).order_by(col(OutboxRow.id))
    return list(session.exec(stmt.with_for_update()))  # in id order: one lock order for every claimer


IN_FLIGHT = ("pending", "submitted")  # requests whose nonce is not consumed on chain yet
OWN = (*IN_FLIGHT, "confirmed")  # requests this service accepted and has not failed


def _next_nonce(nonces: Sequence[str]) -> int | None:
    """One past the highest of these EAS nonces (stored as decimal text), None when there are none."""
    return max(int(n) for n in nonces) + 1 if nonces else None


def next_nonce(*, chain: int, own_next: int | None) -> int:
    """The EAS nonce an attester's next request must carry: the chain's, or one past their requests this service
    accepted and has not failed (``own_next``, ``OWN`` states: they land in order), whichever is higher. Confirmed
    requests count too: ``chain`` may be a read older than their confirmation."""
    return max(chain, own_next or 0)


@dataclass(frozen=True, slots=True)
class OutboxFacts:
    """What the outbox knows about one signed request and its attester (:func:`outbox_facts`)."""

    known_review_id: str | None  # the review of an accepted request with the same content key (any state)
    own_next: int | None  # one past the highest nonce of the attester's requests in ``OWN`` states


_O = OutboxRow.__table__  # type: ignore[attr-defined]
# Built once (bound parameters): building and cache-keying a statement per call cost more than running it.
_FACTS = union_all(
    select(literal_column("'k'"), _O.c.review_id, literal_column("''")).where(_O.c.content_key == bindparam("key")),
    select(literal_column("'n'"), _O.c.state, _O.c.nonce).where(
        _O.c.attester == bindparam("attester"), _O.c.state.in_([literal_column(f"'{s}'") for s in OWN])
    ),
)


def outbox_facts(conn: Session | Connection, *, content_key: str | None, attester: str) -> OutboxFacts:
    """The review of the accepted request with this content key (None: not asked) and the attester's next nonce by
    our own requests (``OWN``), in one statement (one round trip; plain columns, no ORM objects). Works on a session
    (in its transaction) or a bare connection."""
    bare = conn.connection() if isinstance(conn, Session) else conn
    known: str | None = None
    own: list[str] = []
    for what, value, nonce in bare.execute(_FACTS, {"key": content_key, "attester": attester}):
        if what == "k":
            known = value
        else:
            own.append(nonce)
    return OutboxFacts(known_review_id=known, own_next=_next_nonce(own))


def read_outbox_facts(engine: Engine, *, content_key: str | None, attester: str) -> OutboxFacts:
    """:func:`outbox_facts` on a connection of its own, without a transaction (one statement, one round trip).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    with read_scope(engine) as conn:
        return outbox_facts(conn, content_key=content_key, attester=attester)


def outbox_facts_many(conn: Session | Connection, *, requests: Sequence[tuple[str, str]]) -> list[OutboxFacts]:
    """:func:`outbox_facts` of each (content key, attester), in order, in one statement."""
    if not requests:
        return []
    return run_read(conn.connection() if isinstance(conn, Session) else conn, facts_many_read(requests=requests))


def facts_many_read(*, requests: Sequence[tuple[str, str]]) -> Read[list[OutboxFacts]]:
    """The read of :func:`outbox_facts_many` (to run with others: ``store.pipeline.run_reads``)."""
    keys = sorted({k for k, _ in requests})
    attesters = sorted({a for _, a in requests})

    def facts(rows: Iterable[Sequence[Any]]) -> list[OutboxFacts]:
        known: dict[str, str] = {}
        own: dict[str, list[str]] = {}
        for what, key, value, nonce in rows:
            if what == "k":
                known[key] = value
            else:
                own.setdefault(key, []).append(nonce)
        return [OutboxFacts(known_review_id=known.get(k), own_next=_next_nonce(own.get(a, []))) for k, a in requests]

    return Read(statement=_FACTS_MANY, params={"keys": keys, "attesters": attesters}, result=facts)


_FACTS_MANY = ByDialect(
    lambda in_list: union_all(
        select(literal_column("'k'"), _O.c.content_key, _O.c.review_id, literal_column("''")).where(
            in_list(_O.c.content_key, "keys")
        ),
        select(literal_column("'n'"), _O.c.attester, _O.c.state, _O.c.nonce).where(
            in_list(_O.c.attester, "attesters"), _O.c.state.in_([literal_column(f"'{s}'") for s in OWN])
        ),
    )
)


def outbox_values(row: OutboxRow) -> dict[str, Any]:
    """The columns of a new outbox row to insert (its id is assigned by the database)."""
    have = row.__dict__  # every column is set on a constructed row (cheaper than instrumented getattr)
    return {c.name: have[c.name] for c in _O.columns if c.name != "id"}

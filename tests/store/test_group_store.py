"""A group of API submissions stored together (``store_submissions``, ``submit._store_group``) gives each the outcome
and leaves the store exactly as storing them one by one (``store_judged_review``) would — on both databases."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import select

from service.domain import Reason
from service.errors import ChainRejected, OmaTrustError, ReceiptAlreadyClaimed
from service.store.engine import session_scope
from service.store.judged import (
    JudgedRows,
    Placement,
    Publication,
    Stored,
    Submission,
    store_judged_review,
    store_submissions,
)
from service.store.tables import OutboxRow, ReviewRow
from service.verdicts import ReviewVerdict
from service.workflows.aggregate_batch import ChunkAggregates
from service.workflows.aggregates import review_change
from service.workflows.runtime import Runtime
from service.workflows.submit import _Done, _Pending, _store_group
from tests.support.db import fresh_database_url

NOW = 1_767_225_600
A, B, C = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20
S1, S2 = "did:web:one.example", "did:web:two.example"
R1, R2 = "0x" + "11" * 32, "0x" + "22" * 32


@dataclass(frozen=True)
class Item:
    review_id: str
    attester: str
    subject: str
    nonce: int
    receipts: tuple[str, ...] = ()
    request: str = ""  # the signed request (content key); default: one of its own

    def key(self) -> str:
        return "0x" + (self.request or self.review_id).encode().hex().ljust(64, "0")[:64]


def _judge(item: Item, at: int, placement: Placement) -> JudgedRows:
    if placement.replayed:  # as submit's judge: a replayed receipt refuses the review
        raise ReceiptAlreadyClaimed(*next(iter(placement.replayed.items())))
    row = ReviewRow(
        id=item.review_id, subject=item.subject, subject_normalized=item.subject, did_address="0x" + "00" * 20,
        attester=item.attester, rating_value=4, data_hex="0x", review_time=at, source="api",
        verified_purchase=bool(item.receipts), evidence="verified" if item.receipts else "none", created_at=at,
    )  # fmt: skip
    return JudgedRows(review=row, proofs=[], receipt_keys=item.receipts)


def _submission(item: Item, at: int) -> Submission:
    pub = Publication(content_key=item.key(), recipient="0x" + "00" * 20, data_hex="0x", deadline=0,
                      nonce=item.nonce, signature="0x", chain_nonce=0)  # fmt: skip
    return Submission(attester=item.attester, subject_normalized=item.subject, review_time=at,
                      candidate_receipts=item.receipts, judge=functools.partial(_judge, item, at),
                      publication=pub)  # fmt: skip


def _runtime(engine: Engine) -> Runtime:
    return Runtime(engine=engine, eas=None, resolver=None, controllers=None)  # type: ignore[arg-type]


def _alone(engine: Engine, item: Item, at: int) -> Stored | OmaTrustError:
    s = _submission(item, at)
    try:
        with session_scope(engine) as session:
            return store_judged_review(
                session, attester=s.attester, subject_normalized=s.subject_normalized, review_time=at,
                candidate_receipts=s.candidate_receipts, judge=s.judge, aggregates=review_change(_runtime(engine)),
                now=at, publication=s.publication, latest=True,
            )  # fmt: skip
    except OmaTrustError as exc:
        return exc


def _together(engine: Engine, items: list[Item], at: int) -> list[Stored | OmaTrustError]:
    aggregates = ChunkAggregates(rt=_runtime(engine))
    with session_scope(engine) as session:
        return store_submissions(session, items=[_submission(i, at) for i in items], aggregates=aggregates, now=at)


def _shape(outcome: Stored | OmaTrustError) -> tuple[Any, ...]:
    if isinstance(outcome, Stored):
        return ("stored", outcome.review_id, outcome.existing, outcome.superseded, outcome.arrives_superseded)
    return (type(outcome).__name__, outcome.reason)


def _tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "reviews": "SELECT id, attester, subject_normalized, superseded_by, review_time FROM reviews",
        "claims": "SELECT replay_key, review_id, attester, subject_normalized FROM receipt_claims",
        "outbox": "SELECT content_key, review_id, attester, nonce, state FROM outbox",
        "aggregates": "SELECT subject_normalized, review_count, state FROM subject_aggregates",
    }
    with engine.connect() as conn:
        return {name: sorted(tuple(map(str, r)) for r in conn.execute(text(q))) for name, q in queries.items()}


@pytest.fixture
def two_engines(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    from service.store.engine import make_engine
    from service.store.migrate import upgrade

    (tmp_path / "one").mkdir()
    (tmp_path / "group").mkdir()
    with fresh_database_url(tmp_path / "one") as one, fresh_database_url(tmp_path / "group") as group:
        engines = (make_engine(url=one), make_engine(url=group))
        for e in engines:
            upgrade(engine=e)
        yield engines
        for e in engines:
            e.dispose()


# Stored before the group: A's review of S1 (nonce 0) backed by R1.
BEFORE = [Item("pre-a-s1", A, S1, 0, (R1,))]
GROUP = [
    Item("a-s1", A, S1, 1, (R2,)),  # supersedes pre-a-s1; claims R2
    Item("a-s1-bad-nonce", A, S1, 1),  # nonce 1 was just used by the item before: DELEGATION_NONCE
    Item("a-s2", A, S2, 2),  # A's next nonce counts the group's earlier item
    Item("b-s1", B, S1, 0, (R1,)),  # R1's holder (pre-a-s1) was superseded: the claim moves to b-s1
    Item("c-s1", C, S1, 0, (R2,)),  # R2 backs a-s1 (live, written earlier in the group): replayed
    Item("a-s2-again", A, S2, 2, request="a-s2"),  # the same signed request as a-s2: existing
    Item("b-s1-later", B, S1, 1, (R1,)),  # supersedes b-s1 (written in this group) and takes its claim over
    Item("c-s2", C, S2, 0),  # c-s1 was refused: its nonce 0 is still C's next
    Item("c-s1-second", C, S1, 1),  # after c-s2, C's next is 1
]


def test_a_group_stores_what_one_by_one_stores(two_engines: tuple[Engine, Engine]) -> None:
    one, group = two_engines
    for engine in (one, group):
        for item in BEFORE:
            assert isinstance(_alone(engine, item, NOW), Stored)
    singly = [_shape(_alone(one, item, NOW + 10)) for item in GROUP]
    together = [_shape(o) for o in _together(group, GROUP, NOW + 10)]
    assert together == singly
    assert _tables(group) == _tables(one)
    # and the outcomes are the ones the rules give (not merely the same wrong ones twice)
    assert singly == [
        ("stored", "a-s1", False, "pre-a-s1", False),
        ("ChainRejected", Reason.DELEGATION_NONCE),
        ("stored", "a-s2", False, None, False),
        ("stored", "b-s1", False, None, False),
        ("ReceiptAlreadyClaimed", Reason.RECEIPT_REPLAYED),
        ("stored", "a-s2", True, None, False),
        ("stored", "b-s1-later", False, "b-s1", False),
        ("stored", "c-s2", False, None, False),
        ("stored", "c-s1-second", False, None, False),
    ]
    claims = {row[0]: row[1] for row in _tables(group)["claims"]}
    assert claims == {R1: "b-s1-later", R2: "a-s1"}


S3 = "did:web:three.example"


def test_refused_items_and_repeats_about_new_subjects_leave_no_aggregate_row(
    two_engines: tuple[Engine, Engine],
) -> None:
    """The write locks (creating when missing) every subject's aggregate row before it knows which items it will
    store: the rows of subjects no stored item is about must not stay behind."""
    one, group = two_engines
    items = [Item("a-s1", A, S1, 0), Item("b-s3-bad-nonce", B, S3, 7), Item("c-s2-bad-nonce", C, S2, 3),
             Item("b-s2", B, S2, 0)]  # S2: one refused item and one stored  # fmt: skip
    singly = [_shape(_alone(one, i, NOW)) for i in items]
    together = [_shape(o) for o in _together(group, items, NOW)]
    assert together == singly
    assert [s[0] for s in singly] == ["stored", "ChainRejected", "ChainRejected", "stored"]
    assert _tables(group) == _tables(one)
    assert [row[:2] for row in _tables(group)["aggregates"]] == [(S1, "1"), (S2, "1")]
    repeat = _alone(group, Item("a-s1-again", A, S1, 0, request="a-s1"), NOW + 5)  # a row with reviews stays
    assert isinstance(repeat, Stored)
    assert repeat.existing
    assert [row[:2] for row in _tables(group)["aggregates"]] == [(S1, "1"), (S2, "1")]
    with session_scope(group) as session:  # no row (as a recompute may leave it): a repeat creates none
        session.execute(text("DELETE FROM subject_aggregates"))
    assert isinstance(_alone(group, Item("a-s1-again", A, S1, 0, request="a-s1"), NOW + 5), Stored)
    assert _tables(group)["aggregates"] == []


def test_a_group_too_big_for_one_statement_writes_what_one_by_one_writes(
    two_engines: tuple[Engine, Engine],
) -> None:
    """Past ``batch._ONE_STATEMENT_ROWS`` rows the group's rows and riders (the aggregates' UPDATE, the empty rows'
    DELETE) run as separate statements: the same store."""
    one, group = two_engines
    items = [Item(f"r{k}", "0x" + f"{k + 16:02x}" * 20, f"did:web:s{k % 3}.example", 0) for k in range(40)]
    items.append(Item("refused", A, S3, 5))  # its new subject's row is created, locked, then deleted
    singly = [_shape(_alone(one, i, NOW)) for i in items]
    together = [_shape(o) for o in _together(group, items, NOW)]
    assert together == singly
    assert _tables(group) == _tables(one)


def _pending(engine: Engine, item: Item, judge: Callable[[Placement], JudgedRows] | None = None) -> _Pending:
    sub = _submission(item, NOW)
    if judge is not None:
        sub = Submission(attester=sub.attester, subject_normalized=sub.subject_normalized, review_time=NOW,
                         candidate_receipts=sub.candidate_receipts, judge=judge,
                         publication=sub.publication)  # fmt: skip
    verdict = ReviewVerdict(proofs=(), verified_purchase=False, evidence="none")
    return _Pending(rt=_runtime(engine), submission=sub, verdict=verdict, now=NOW)


def test_a_group_the_database_refuses_is_stored_one_by_one_and_loses_no_other(
    two_engines: tuple[Engine, Engine],
) -> None:
    engine = two_engines[1]
    assert isinstance(_alone(engine, Item("taken", C, S2, 0), NOW), Stored)
    clash = Item("clash", B, S1, 0)

    def same_id_as_a_stored_review(placement: Placement) -> JudgedRows:
        rows = _judge(clash, NOW, placement)
        rows.review.id = "taken"  # the primary key of a stored review: the database refuses the insert
        return rows

    items = [_pending(engine, Item("first", A, S1, 0)), _pending(engine, clash, same_id_as_a_stored_review),
             _pending(engine, Item("third", A, S2, 1))]  # fmt: skip
    outcomes = _store_group(items)
    assert [type(o).__name__ for o in outcomes] == ["_Done", "IntegrityError", "_Done"]
    assert [o.stored.review_id for o in outcomes if isinstance(o, _Done)] == ["first", "third"]
    ids = [row[0] for row in _tables(engine)["reviews"]]
    assert ids == ["first", "taken", "third"]
    assert [(row[1], row[3]) for row in _tables(engine)["outbox"]] == [("first", "0"), ("taken", "0"), ("third", "1")]


def test_a_refusal_in_a_group_is_that_submissions_alone(two_engines: tuple[Engine, Engine]) -> None:
    engine = two_engines[1]
    outcomes = _store_group([_pending(engine, Item("x", A, S1, 0)), _pending(engine, Item("y", A, S2, 5))])
    assert isinstance(outcomes[0], _Done)
    assert outcomes[0].stored.review_id == "x"
    assert isinstance(outcomes[1], ChainRejected)
    assert outcomes[1].reason is Reason.DELEGATION_NONCE
    assert [row[0] for row in _tables(engine)["reviews"]] == ["x"]


def test_the_items_of_one_transaction_are_confirmed_together(two_engines: tuple[Engine, Engine]) -> None:
    """``SqlOutbox.mark_confirmed_many`` (the publisher, for the items one mined transaction carried): each outbox
    row confirmed with its own UID and block, its review pointing at its attestation; a confirmed row is sticky."""
    from service.chain.outbox import Confirmation
    from service.store.chains import ensure_chain
    from service.workflows.outbox import SqlOutbox

    engine = two_engines[1]
    for k, item in enumerate([Item("r0", A, S1, 0), Item("r1", B, S1, 0), Item("r2", C, S1, 0)]):
        assert isinstance(_alone(engine, item, NOW + k), Stored)
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT review_id, id FROM outbox")).all())
    with session_scope(engine) as session:
        chain_ref = ensure_chain(session, chain_id=31337, genesis_hash="0x" + "99" * 32, eas_address="0x" + "42" * 20,
                                 now=NOW)  # fmt: skip
    outbox = SqlOutbox(engine=engine, chain_ref=chain_ref)
    outbox.mark_confirmed(item_id=ids["r0"], uid="0x" + "0A" * 32, tx_hash="0xt0", block_number=5, now=NOW)
    outbox.mark_confirmed_many(confirmed=[
        Confirmation(item_id=ids["r0"], uid="0x" + "ff" * 32, tx_hash="0xt1", block_number=6),  # already confirmed
        Confirmation(item_id=ids["r1"], uid="0x" + "1B" * 32, tx_hash="0xt1", block_number=6, block_hash="0xh6"),
        Confirmation(item_id=ids["r2"], uid="0x" + "2c" * 32, tx_hash="0xt1", block_number=6, block_hash="0xh6"),
    ], now=NOW + 9)  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT review_id, state, uid, tx_hash, block_number, block_hash, chain_ref "
                                 "FROM outbox ORDER BY review_id")).all()  # fmt: skip
        reviews = conn.execute(text("SELECT id, attestation_uid, attestation_block, chain_ref FROM reviews "
                                    "ORDER BY id")).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [
        ("r0", "confirmed", "0x" + "0a" * 32, "0xt0", 5, None, chain_ref),
        ("r1", "confirmed", "0x" + "1b" * 32, "0xt1", 6, "0xh6", chain_ref),
        ("r2", "confirmed", "0x" + "2c" * 32, "0xt1", 6, "0xh6", chain_ref),
    ]
    assert [tuple(r) for r in reviews] == [
        ("r0", "0x" + "0a" * 32, 5, chain_ref),
        ("r1", "0x" + "1b" * 32, 6, chain_ref),
        ("r2", "0x" + "2c" * 32, 6, chain_ref),
    ]
    with session_scope(engine) as session:  # each row's history says when and how it was confirmed, once
        history = {r.review_id: r.history for r in session.exec(select(OutboxRow))}
    assert [e["event"] for e in history["r0"]] == ["confirmed"]
    assert history["r1"][-1] == {"at": NOW + 9, "event": "confirmed", "txHash": "0xt1", "uid": "0x" + "1b" * 32,
                                 "block": 6}  # fmt: skip


def test_a_group_the_database_cannot_take_fails_every_caller_at_once(tmp_path: Path) -> None:
    """Unreachable database: one attempt for the group, its error to every caller (503, retry) — not one more
    failing attempt per item."""
    from sqlalchemy import event

    from service.store.engine import make_engine

    engine = make_engine(url=f"sqlite:///{tmp_path / 'missing-dir' / 'omatrust.db'}")
    attempts: list[int] = []
    event.listen(engine, "do_connect", lambda *args: attempts.append(1))
    outcomes = _store_group([_pending(engine, Item(f"u{k}", A, S1, k)) for k in range(3)])
    assert [type(o).__name__ for o in outcomes] == ["OperationalError"] * 3
    assert len(attempts) == 1

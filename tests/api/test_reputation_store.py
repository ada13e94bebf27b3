"""Reputation on histories written straight through the store + ``apply_review_change`` (fast, large, random):
aggregate path vs exact recompute through the database, the global prior, recompute/audit, and the CLI.

Expected values come from independent references: plain Python counts over the generated history and the
documented formulas (docs/scoring.md) re-derived here, never from service.scoring.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from service.store.engine import session_scope
from service.store.judged import JudgedRows, store_judged_review
from service.store.tables import ReviewRow, SubjectAggregateRow
from service.workflows.aggregates import apply_review_change
from service.workflows.reputation import DbContext, reputation
from service.workflows.score_audit import recompute
from tests.support.db import migrated_engine

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
H = 180 * DAY  # half-life of params v1 (docs/scoring.md)
LAMBDA = {"verified": 1.0, "offer-only": 0.5, "unauthorized": 0.25, "none": 0.25}
EVIDENCE = tuple(LAMBDA)


@dataclass
class Inserted:
    id: str
    subject: str
    attester: str
    rating: int
    time: int
    evidence: str
    superseded_by: str | None = None


def insert_review(
    engine: Engine,
    *,
    rid: str,
    subject: str,
    attester: str,
    rating: int,
    time: int,
    evidence: str,
    body: str = "",
    uid: str | None = None,
) -> str | None:
    """Write one review through the write path submit and sync use (``store_judged_review``): supersede the
    attester's live review, update aggregates. Returns the id of the superseded review, if any."""
    row = ReviewRow(
        id=rid, subject=subject, subject_normalized=subject, did_address="0x" + "00" * 20, attester=attester,
        rating_value=rating, review_body=body, data_hex="0x", review_time=time, source="chain",
        verified_purchase=evidence == "verified", evidence=evidence, attestation_uid=uid, created_at=time,
    )  # fmt: skip
    with session_scope(engine) as session:
        stored = store_judged_review(
            session, attester=attester, subject_normalized=subject, review_time=time, candidate_receipts=(),
            judge=lambda _placement: JudgedRows(review=row, proofs=[], receipt_keys=()),
            aggregates=apply_review_change, now=time,
        )  # fmt: skip
    return stored.superseded


def random_history(rng: random.Random, *, subjects: list[str], n: int) -> list[Inserted]:
    """Reviews in time order over two years; ~30% by a reviewer who already reviewed the subject (supersession)."""
    out: list[Inserted] = []
    reviewers: dict[str, list[str]] = {s: [] for s in subjects}
    times = sorted(rng.randrange(NOW - 730 * DAY, NOW) for _ in range(n))
    for i, t in enumerate(times):
        subject = rng.choice(subjects)
        if reviewers[subject] and rng.random() < 0.3:
            attester = rng.choice(reviewers[subject])
        else:
            attester = f"0x{rng.getrandbits(160):040x}"
            reviewers[subject].append(attester)
        # Skewed classes and ratings, so some buckets are empty and some hold one old review.
        evidence = rng.choices(EVIDENCE, weights=(6, 1, 1, 3))[0]
        rating = rng.choices((1, 2, 3, 4, 5), weights=(1, 1, 2, 4, 6))[0]
        out.append(Inserted(f"r{i:05d}", subject, attester, rating, t, evidence))
    return out


def insert_all(engine: Engine, history: list[Inserted]) -> None:
    by_id = {h.id: h for h in history}
    for h in history:
        old = insert_review(engine, rid=h.id, subject=h.subject, attester=h.attester, rating=h.rating, time=h.time,
                            evidence=h.evidence, uid="0x" + h.id.encode().hex().rjust(64, "0"))  # fmt: skip
        if old is not None:
            by_id[old].superseded_by = h.id


engine = migrated_engine  # a fresh, migrated database per test


def ctx(engine: Engine, now: int = NOW) -> DbContext:
    return DbContext(engine=engine, clock=lambda: float(now))


# -- independent reference of the documented model -------------------------------------------------------------


def reference_prior(history: list[Inserted]) -> float:
    """μ₀: decay-weighted mean r of all live verified reviews, clamped to [0.05, 0.95]; 0.7 without any."""
    live = [h for h in history if h.superseded_by is None and h.evidence == "verified"]
    if not live:
        return 0.7
    w = [2.0 ** ((h.time - NOW) / H) for h in live]
    mean = sum(wi * (h.rating - 1) / 4 for wi, h in zip(w, live, strict=True)) / sum(w)
    return min(0.95, max(0.05, mean))


def reference_score(history: list[Inserted], *, subject: str, prior: float, now: int = NOW) -> dict[str, float]:
    """score / confidence / effective evidence of one subject by the formulas of docs/scoring.md."""
    live = [h for h in history if h.subject == subject and h.superseded_by is None]
    weights = [LAMBDA[h.evidence] * 2.0 ** (-(now - h.time) / H) for h in live]
    v = sum(w for w, h in zip(weights, live, strict=True) if h.evidence == "verified")
    unverified = [(w, h) for w, h in zip(weights, live, strict=True) if h.evidence != "verified"]
    u = sum(w for w, _ in unverified)
    kappa = min(0.25, (1 - prior) / prior)
    cap = max(kappa * v, 2 * u / len(unverified) if unverified else 0.0)
    s = 1.0 if u <= cap else cap / u
    alpha, beta = 4 * prior, 4 * (1 - prior)
    for w, h in zip(weights, live, strict=True):
        w *= 1.0 if h.evidence == "verified" else s
        alpha += w * (h.rating - 1) / 4
        beta += w * (1 - (h.rating - 1) / 4)
    n = v + s * u
    return {"score": 100 * alpha / (alpha + beta), "confidence": n / (4 + n), "effectiveEvidence": n}


def close(a: float | None, b: float | None, tol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


# -- tests -----------------------------------------------------------------------------------------------------


def test_aggregate_path_equals_full_recompute_on_random_history(engine: Engine) -> None:
    rng = random.Random(20260101)
    subjects = [f"did:web:s{i}.example" for i in range(4)]
    history = random_history(rng, subjects=subjects, n=400)
    insert_all(engine, history)
    prior = reference_prior(history)
    assert any(h.superseded_by for h in history)
    for subject in subjects:
        fast = reputation(rt=ctx(engine), did=subject).score
        exact = reputation(rt=ctx(engine), did=subject, explain=True).score
        mine = [h for h in history if h.subject == subject]
        live = [h for h in mine if h.superseded_by is None]
        # Counts and histograms against plain counting over the generated history.
        for s in (fast, exact):
            assert (s.counts.total, s.counts.live, s.counts.superseded) == (len(mine), len(live), len(mine) - len(live))
            assert s.counts.verified == sum(h.evidence == "verified" for h in live)
            assert list(s.histogram_verified) == [
                sum(h.rating == r and h.evidence == "verified" for h in live) for r in range(1, 6)
            ]
            assert list(s.histogram_unverified) == [
                sum(h.rating == r and h.evidence != "verified" for h in live) for r in range(1, 6)
            ]
            assert s.last_review_at == max(h.time for h in mine)
            assert close(s.prior_mean, prior)
            ref = reference_score(history, subject=subject, prior=prior)
            assert close(s.score, ref["score"]), (s.score, ref)
            assert close(s.confidence, ref["confidence"])
            assert close(s.effective_evidence, ref["effectiveEvidence"])
        # The two paths agree on everything, including the movers found from ≤ 5 candidates per bucket.
        assert close(fast.lower90, exact.lower90)
        assert close(fast.top_reviewer_share, exact.top_reviewer_share)
        assert fast.reviewer_dominates == exact.reviewer_dominates
        assert [m.review_id for m in fast.top_movers] == [m.review_id for m in exact.top_movers]
        assert len(fast.top_movers) == 5
        assert all(m.attestation_uid for m in fast.top_movers)


def test_recompute_agrees_then_detects_and_repairs_drift(engine: Engine) -> None:
    rng = random.Random(7)
    subjects = [f"did:web:r{i}.example" for i in range(3)]
    history = random_history(rng, subjects=subjects, n=150)
    insert_all(engine, history)
    before = {s: reputation(rt=ctx(engine), did=s).score for s in subjects}

    report = recompute(rt=ctx(engine), did=None)
    assert (report.subjects, report.disagreements, report.global_differences) == (3, 0, ())
    assert close(report.prior_mean_before, reference_prior(history))

    # Corrupt one subject's stored aggregate (a phantom increment), as a lost write or a bug would.
    victim = subjects[1]
    with session_scope(engine) as session:
        row = session.get(SubjectAggregateRow, victim)
        assert row is not None
        state = json.loads(json.dumps(row.state))
        i = next(k for k, c in enumerate(state["counts"]) if c > 0)
        state["counts"][i] += 1
        row.state = state
        session.add(row)
    single = recompute(rt=ctx(engine), did=victim)
    assert single.disagreements == 1
    assert "aggregate.counts" in single.checks[0].differences
    assert "counts" in single.checks[0].differences
    # A stored aggregate of a subject that has no reviews is dropped by the full rebuild.
    with session_scope(engine) as session:
        session.add(SubjectAggregateRow(subject_normalized="did:web:ghost.example", state={}, review_count=3,
                                        updated_at=NOW))  # fmt: skip
    full = recompute(rt=ctx(engine), did=None)
    assert (full.subjects, full.disagreements) == (3, 0)
    with session_scope(engine) as session:
        assert session.get(SubjectAggregateRow, "did:web:ghost.example") is None
    after = {s: reputation(rt=ctx(engine), did=s).score for s in subjects}
    for s in subjects:
        assert close(after[s].score, before[s].score)
        assert after[s].counts == before[s].counts


def test_global_prior_follows_verified_reviews_across_subjects(engine: Engine) -> None:
    insert_review(engine, rid="a", subject="did:web:a.example", attester="0x" + "1" * 40, rating=5, time=NOW,
                  evidence="verified")  # fmt: skip
    insert_review(engine, rid="b", subject="did:web:b.example", attester="0x" + "2" * 40, rating=2, time=NOW - H,
                  evidence="verified")  # fmt: skip
    insert_review(engine, rid="c", subject="did:web:b.example", attester="0x" + "3" * 40, rating=1, time=NOW,
                  evidence="none")  # fmt: skip
    # Weights 1 and ½ (one half-life old): μ₀ = (1·1 + ½·¼) / 1.5 = 0.75; unverified reviews do not count.
    fresh = reputation(rt=ctx(engine), did="did:web:nobody.example").score
    assert close(fresh.prior_mean, 0.75)
    assert close(fresh.score, 75.0)
    assert fresh.counts.total == 0
    assert fresh.top_movers == ()
    # The attester of "b" re-rates 5★: superseded review leaves the mean, μ₀ = 1 → clamped to 0.95.
    insert_review(engine, rid="b2", subject="did:web:b.example", attester="0x" + "2" * 40, rating=5, time=NOW,
                  evidence="verified")  # fmt: skip
    assert close(reputation(rt=ctx(engine), did="did:web:nobody.example").score.prior_mean, 0.95)


def test_read_cost_does_not_grow_with_reviews(engine: Engine) -> None:
    """The aggregate path reads ≤ 5 reviews per non-empty bucket, whatever the subject's size."""
    subject = "did:web:big.example"
    rows = [
        {"id": f"x{i:06d}", "subject": subject, "subject_normalized": subject, "did_address": "0x" + "00" * 20,
         "attester": f"0x{i:040x}", "version": "", "rating_value": 1 + i % 5, "review_body": "",
         "screenshot_urls": [], "proofs_json": [], "data_hex": "0x", "review_time": NOW - i,
         "source": "chain", "verified_purchase": i % 2 == 0, "evidence": "verified" if i % 2 == 0 else "none",
         "superseded_by": None, "attestation_uid": None, "created_at": NOW}
        for i in range(3000)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(ReviewRow.__table__.insert(), rows)  # type: ignore[attr-defined]
    assert recompute(rt=ctx(engine), did=subject).subjects == 1
    reputation(rt=ctx(engine), did=subject)  # folds the global prior (O(subjects), once per fold; docs/scoring.md)
    statements: list[str] = []
    from sqlalchemy import event

    def capture(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        score = reputation(rt=ctx(engine), did=subject).score
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert score.counts.live == 3000
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, statements  # the aggregate row + one UNION ALL of the 10 non-empty buckets
    assert selects[1].upper().count("LIMIT") == 10


def test_cli_score_prints_json_and_recomputes(engine: Engine, tmp_path: Path) -> None:
    subject = "did:web:cli.example"
    insert_review(engine, rid="c1", subject=subject, attester="0x" + "a" * 40, rating=5, time=NOW, evidence="verified")
    insert_review(engine, rid="c2", subject=subject, attester="0x" + "b" * 40, rating=1, time=NOW, evidence="none")
    env = {**os.environ, "OMATRUST_DATABASE_URL": engine.url.render_as_string(hide_password=False)}

    def run(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "service.cli.main", "score", *args], env=env, capture_output=True,
                             text=True, timeout=60, check=True)  # fmt: skip
        return json.loads(out.stdout)

    plain = run(subject)
    assert plain["did"] == subject
    assert plain["counts"] == {"total": 2, "live": 2, "verified": 1, "unverified": 1, "superseded": 0}
    assert plain["histogram"] == {"verified": [0, 0, 0, 0, 1], "unverified": [1, 0, 0, 0, 0]}
    assert "contributions" not in plain
    explained = run(subject, "--explain")
    assert {c["reviewId"] for c in explained["contributions"]} == {"c1", "c2"}
    total = sum(c["contribution"] for c in explained["contributions"])
    assert close(total, explained["score"] - 100 * explained["priorMean"], 1e-9)
    audited = run(subject, "--recompute")
    assert audited["recompute"]["disagreements"] == 0
    assert audited["reputation"]["counts"] == plain["counts"]
    everything = run("--recompute")
    assert everything["recompute"]["subjects"] == 1


def test_concurrent_writers_keep_subject_and_global_rows_exact(engine: Engine) -> None:
    """Writers on several subjects at once (first writes racing to create the rows, then the shared global row):
    no deadlock, no lost update — the audit finds stored and rebuilt aggregates identical."""
    from concurrent.futures import ThreadPoolExecutor

    subjects = [f"did:web:c{i}.example" for i in range(3)]

    def writer(w: int) -> None:
        rng = random.Random(w)
        for k in range(20):
            insert_review(engine, rid=f"w{w}-{k}", subject=rng.choice(subjects), attester=f"0x{w:020x}{k % 3:020x}",
                          rating=rng.randint(1, 5), time=NOW - rng.randrange(DAY),
                          evidence=rng.choice(EVIDENCE))  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(writer, range(4)))
    report = recompute(rt=ctx(engine), did=None)
    assert (report.subjects, report.disagreements, report.global_differences) == (3, 0, ())
    assert sum(reputation(rt=ctx(engine), did=s).score.counts.total for s in subjects) == 80


def test_reads_after_begin_snapshot_see_one_snapshot(engine: Engine) -> None:
    """The aggregate row and the candidate reviews are read by two statements; a write committed between them must
    not be visible to the second (on SQLite and PostgreSQL)."""
    from service.store.scoring_queries import aggregate_states, begin_snapshot, bucket_candidates

    subject = "did:web:snap.example"
    insert_review(engine, rid="s1", subject=subject, attester="0x" + "1" * 40, rating=5, time=NOW, evidence="verified")
    with session_scope(engine) as session:
        begin_snapshot(session)
        before = aggregate_states(session, keys=[subject])[subject].review_count
        insert_review(engine, rid="s2", subject=subject, attester="0x" + "2" * 40, rating=5, time=NOW,
                      evidence="verified")  # fmt: skip
        facts = bucket_candidates(session, subject_normalized=subject, buckets=[("verified", 5)], per_bucket=5)
        again = aggregate_states(session, keys=[subject])[subject].review_count
    assert (before, again, [f.id for f in facts]) == (1, 1, ["s1"])
    with session_scope(engine) as session:
        assert aggregate_states(session, keys=[subject])[subject].review_count == 2

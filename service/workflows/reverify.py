"""Batch re-verification of stored proofs (``omatrust reverify``): read → look up → judge → write, in chunks.

* **Reading**: keyset pages of ``chunk_size`` reviews in (subject_normalized, review_time, id) order (the
  ``ix_reviews_subject_time`` index) with their proofs and the evidence snapshots they refer to — plain columns,
  one query each.
* **Look-ups**: each did:web document and each DNS ``_controllers`` answer is looked up once per run, in a thread
  pool (``lookup_threads`` at a time), by this process only. The result — bytes or the failure — is sent to the
  workers with the reviews that need it.
* **Judging**: pure, CPU-bound, in a process pool over all cores (``service.workflows.reverify_judge``), several
  chunks in flight while the next one is read. See that module for the "authorized as of issuedAt" rule.
* **Writing**: one transaction per chunk — changed proof rows, an ``OutcomeHistoryRow`` per changed outcome, the
  attempts that could not be completed, changed reviews and their aggregates, and the run's checkpoint (the key
  of the chunk's last review). A crash loses at most the chunks not yet committed; ``resume`` continues after the
  checkpoint, so every review is judged (and recorded) exactly once per run.
* ``dry_run`` writes nothing at all (no run row either).

An ``indeterminate`` judgement never changes a stored verdict; it is recorded as an attempt and makes the run's
exit code 3 (``ReverifyReport.exit_code``).
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
import signal
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.dids import did_web_for_url, did_web_host, normalize_did
from service.domain import Reason
from service.errors import MalformedInput, OmaTrustError, ResumeError
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.payments.reader import PaymentReader
from service.store.batch import (
    BatchProof,
    BatchReview,
    ReviewKey,
    Selection,
    Snapshot,
    count_reviews,
    create_run,
    get_run,
    history_of_run,
    latest_unfinished_run,
    proofs_of_reviews,
    review_page,
    run_checkpoint,
    save_run_progress,
    snapshots_by_hash,
    subject_counts,
)
from service.store.engine import session_scope
from service.verdicts.evidence import dns_evidence, document_evidence
from service.workflows.evaluate import ReviewPolicy
from service.workflows.partition import Partition
from service.workflows.payment_recheck import recheck_payments
from service.workflows.reverify_judge import Task, TaskResult, judge_task
from service.workflows.reverify_memo import INDETERMINATE, DnsEvidence, DocEvidence, Evidence, Failure
from service.workflows.reverify_report import (
    DETAIL_LIMIT,
    Progress,
    ReverifyReport,
    attempt_json,
    change_json,
    history_json,
    review_change_json,
    tallies,
    transitions_from,
)
from service.workflows.reverify_write import write_chunk_rows

LATEST = "latest"  # ``ReverifyOptions.resume``: the latest unfinished run with the same selection
IF_ANY = "if-any"  # ... or, when there is none, a new run (what a retried batch job wants)
SUBJECTS_PER_QUERY = 500  # partitioned runs: subjects per IN (...) list
MAX_NEED_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class ReverifyOptions:
    subject: str | None = None  # a DID; normalized before matching
    since: int | None = None  # only reviews made at or after this unix time
    status: str | None = None  # only reviews with a proof whose stored status is this
    partition: Partition | None = None
    dry_run: bool = False
    resume: str | None = None  # a run id, LATEST or IF_ANY
    chunk_size: int = 2000
    task_size: int = 250
    workers: int | None = None  # verification processes; None = one per core; 0 = in this process
    lookup_threads: int = 16
    inflight_chunks: int = 2
    report_limit: int = DETAIL_LIMIT  # entries kept per list of the report; the rest are counted (see reverify_report)

    def selection_key(self) -> dict[str, Any]:
        """The selection as stored with a run (and compared when resuming)."""
        return {
            "subject": normalize_did(self.subject) if self.subject else None,
            "since": self.since,
            "status": self.status,
            "partition": str(self.partition) if self.partition else None,
        }


# ---- look-ups (this process only, once per run) -----------------------------------------------------------------


class _Lookups:
    def __init__(
        self, *, resolver: DidResolver | None, controllers: ControllerResolver | None, threads: int
    ) -> None:
        self.resolver = resolver
        self.controllers = controllers
        self.docs: dict[str, DocEvidence] = {}
        self.dns: dict[str, DnsEvidence] = {}
        self.fresh: dict[str, tuple[str, str, str]] = {}  # evidence hash → (did, kind, raw) seen in this run
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="omatrust-lookup")

    def ensure(self, *, dids: set[str], hosts: set[str]) -> None:
        """Look up every document and DNS answer not yet known in this run, concurrently."""
        new_dids = sorted(d for d in dids if d not in self.docs)
        new_hosts = sorted(h for h in hosts if h not in self.dns)
        doc_results = self.pool.map(self._doc, new_dids)
        dns_results = self.pool.map(self._dns, new_hosts)
        for did, (evidence, fresh) in zip(new_dids, doc_results, strict=True):
            self.docs[did] = evidence
            if fresh is not None:
                self.fresh[fresh[0]] = (fresh[1], fresh[2], fresh[3])
        for host, (answer, fresh) in zip(new_hosts, dns_results, strict=True):
            self.dns[host] = answer
            if fresh is not None:
                self.fresh[fresh[0]] = (fresh[1], fresh[2], fresh[3])

    def _doc(self, did: str) -> tuple[DocEvidence, tuple[str, str, str, str] | None]:
        if self.resolver is None:
            return Failure(INDETERMINATE, Reason.LOOKUP_SKIPPED.value, "no DID resolver"), None
        try:
            document = self.resolver.resolve_document(did=did)
        except OmaTrustError as exc:
            return Failure.of(exc), None
        kept = document_evidence(did=did, document=document)
        return document.raw, (kept.evidence_hash, kept.did, kept.kind, kept.text)

    def _dns(self, host: str) -> tuple[DnsEvidence, tuple[str, str, str, str] | None]:
        if self.controllers is None:
            return Failure(INDETERMINATE, Reason.LOOKUP_SKIPPED.value, "no DNS resolver"), None
        try:
            record = self.controllers.lookup(domain=host)
        except OmaTrustError as exc:
            return Failure.of(exc), None
        if record is None:
            return None, None
        kept = dns_evidence(record)
        return record, (kept.evidence_hash, kept.did, kept.kind, kept.text)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _service_did(subject: str) -> str | None:
    """The did:web a review's receipts are normally issued under: its subject's host, as ``did_web_for_url`` writes
    it (only a guess to look documents up early; a wrong guess costs one extra round for that subject)."""
    if not subject.startswith("did:web:"):
        return None
    try:
        return did_web_for_url(f"https://{did_web_host(subject)}/")
    except (MalformedInput, ValueError):
        return None


# ---- the run ------------------------------------------------------------------------------------------------------


@dataclass
class _Chunk:
    reviews: list[BatchReview]
    proofs: dict[str, list[BatchProof]]
    pending: list[AsyncResult[TaskResult] | TaskResult]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates the pool


class _Run:
    def __init__(
        self,
        *,
        engine: Engine,
        resolver: DidResolver | None,
        controllers: ControllerResolver | None,
        policy: ReviewPolicy,
        clock: Callable[[], float],
        options: ReverifyOptions,
        progress: Callable[[Progress], None] | None,
        on_chunk: Callable[[list[str]], None] | None,
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.clock = clock
        self.options = options
        self.progress = progress
        self.on_chunk = on_chunk
        self.now = int(clock())
        self.token = uuid.uuid4().hex
        self.lookups = _Lookups(resolver=resolver, controllers=controllers, threads=options.lookup_threads)
        self.snapshots: dict[str, Snapshot] = {}
        self.missing_snapshots: set[str] = set()
        self.extra_dids: dict[str, set[str]] = {}  # subject → documents its reviews turned out to need
        self.extra_hosts: dict[str, set[str]] = {}
        self.guesses: dict[str, str | None] = {}  # subject → the did:web its receipts are probably issued under
        self.stored_snapshots: set[str] = set()
        self.pool: Pool | None = None
        self.started = time.monotonic()

    # -- setup
    def prepare(self) -> tuple[ReverifyReport, Selection, ReviewKey | None, list[str] | None]:
        options = self.options
        selection_key = options.selection_key()
        with Session(self.engine) as session:
            run = None
            if options.resume in (LATEST, IF_ANY):
                run = latest_unfinished_run(session, selection=selection_key)
                if run is None and options.resume == LATEST:
                    raise ResumeError(f"no unfinished run with selection {selection_key}")
            elif options.resume:
                run = get_run(session, run_id=options.resume)
                if run is None:
                    raise ResumeError(f"no run {options.resume}")
                if run.state != "running":
                    raise ResumeError(f"run {options.resume} is already {run.state}")
            if run is not None:
                selection_key = dict(run.selection)
            selection = Selection(
                subject_normalized=selection_key["subject"],
                since=selection_key["since"],
                status=selection_key["status"],
            )
            partition = Partition.parse(selection_key["partition"]) if selection_key["partition"] else None
            subjects: list[str] | None = None
            if partition is not None:
                counts = [(s, n) for s, n in subject_counts(session, selection=selection) if partition.holds(s)]
                subjects = [s for s, _ in counts]
                total = sum(n for _, n in counts)
            else:
                total = count_reviews(session, selection=selection)
            report = ReverifyReport(
                run_id=run.run_id if run is not None else uuid.uuid4().hex,
                dry_run=options.dry_run,
                resumed=run is not None,
                selection=selection_key,
                total=total,
            )
            report.limit_details(options.report_limit)
            after: ReviewKey | None = None
            if run is not None:
                after = run_checkpoint(run)
                report.earlier_reviews = int(run.reviews_checked)
                report.transitions.update(transitions_from(run.tallies))
                report.earlier_changes.add(history_of_run(session, run_id=run.run_id), history_json)
        if run is None and not options.dry_run:
            with session_scope(self.engine) as session:
                create_run(session, run_id=report.run_id, selection=selection_key, now=self.now)
        return report, selection, after, subjects

    def start_pool(self) -> None:
        workers = (os.cpu_count() or 1) if self.options.workers is None else self.options.workers
        if workers <= 0:
            return
        # Pooled DB connections must not be shared with forked children: drop them (they reconnect lazily).
        self.engine.dispose()
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self.pool = context.Pool(processes=workers, initializer=_ignore_sigint)

    def close(self, *, abort: bool) -> None:
        if self.pool is not None:
            if abort:
                self.pool.terminate()
            else:
                self.pool.close()
            self.pool.join()
            self.pool = None
        self.lookups.close()

    # -- reading
    def pages(self, selection: Selection, after: ReviewKey | None, subjects: list[str] | None) -> Iterator[_Chunk]:
        limit = self.options.chunk_size
        index = 0
        if subjects is not None and after is not None:
            index = bisect.bisect_left(subjects, after.subject_normalized)
        while True:
            batch: list[str] | None = None
            if subjects is not None:
                if index >= len(subjects):
                    return
                batch = subjects[index : index + SUBJECTS_PER_QUERY]
            with Session(self.engine) as session:
                reviews = review_page(session, selection=selection, after=after, limit=limit, subjects=batch)
                proofs = proofs_of_reviews(session, review_ids=[r.id for r in reviews])
                wanted = {p.evidence_hash for ps in proofs.values() for p in ps if p.evidence_hash}
                wanted -= self.snapshots.keys() | self.missing_snapshots
                found = snapshots_by_hash(session, hashes=wanted)
            self.snapshots.update(found)
            self.missing_snapshots |= wanted - found.keys()
            if reviews:
                after = reviews[-1].key
                yield _Chunk(reviews, proofs, [])
            if len(reviews) < limit:
                if subjects is None:
                    return
                index += SUBJECTS_PER_QUERY

    # -- judging
    def _wanted(self, review: BatchReview, proofs: Sequence[BatchProof]) -> tuple[set[str], set[str]]:
        if not proofs:
            return set(), set()
        dids = set(self.extra_dids.get(review.subject_normalized, ()))
        if review.subject not in self.guesses:
            self.guesses[review.subject] = _service_did(review.subject)
        guess = self.guesses[review.subject]
        if guess:
            dids.add(guess)
        for p in proofs:
            if p.format == "jws" and p.signer and p.signer.startswith("did:web:"):
                dids.add(p.signer.partition("#")[0])
        return dids, set(self.extra_hosts.get(review.subject_normalized, ()))

    def _task(self, items: list[tuple[BatchReview, list[BatchProof]]], *, allow_need: bool = True) -> Task:
        dids: set[str] = set()
        hosts: set[str] = set()
        hashes: set[str] = set()
        for review, proofs in items:
            d, h = self._wanted(review, proofs)
            dids |= d
            hosts |= h
            hashes.update(p.evidence_hash for p in proofs if p.evidence_hash)
        self.lookups.ensure(dids=dids, hosts=hosts)
        evidence = Evidence(
            docs={d: self.lookups.docs[d] for d in dids},
            dns={h: self.lookups.dns[h] for h in hosts},
            snapshots={h: self.snapshots[h] for h in hashes if h in self.snapshots},
        )
        return Task(self.token, items, evidence, self.now, self.policy, allow_need)

    def submit(self, chunk: _Chunk) -> None:
        items = [(r, chunk.proofs.get(r.id, [])) for r in chunk.reviews]
        size = max(1, self.options.task_size)
        for start in range(0, len(items), size):
            task = self._task(items[start : start + size])
            if self.pool is None:
                chunk.pending.append(judge_task(task))
            else:
                chunk.pending.append(self.pool.apply_async(judge_task, (task,)))

    def collect(self, chunk: _Chunk) -> list[TaskResult]:
        results = [p if isinstance(p, tuple) else p.get() for p in chunk.pending]
        needs = [n for r in results for n in r.needs]
        by_id = {r.id: r for r in chunk.reviews}
        rounds = 0
        while needs:
            rounds += 1
            for need in needs:
                subject = by_id[need.review_id].subject_normalized
                self.extra_dids.setdefault(subject, set()).update(need.dids)
                self.extra_hosts.setdefault(subject, set()).update(need.hosts)
            # Rare (first reviews of a subject whose evidence was not guessed): judged here, not in the pool.
            items = [(by_id[n.review_id], chunk.proofs.get(n.review_id, [])) for n in needs]
            again = judge_task(self._task(items, allow_need=rounds < MAX_NEED_ROUNDS))
            results.append(again)
            needs = list(again.needs)
        return results

    # -- writing
    def write(self, report: ReverifyReport, chunk: _Chunk, results: list[TaskResult]) -> None:
        review_ids = [r.id for r in chunk.reviews]
        transitions: Counter[tuple[str, str]] = Counter()
        for r in results:
            transitions.update(r.transitions)
            report.proofs += r.proofs
            report.worker_cpu_seconds += r.cpu_seconds
        proof_changes = [c for r in results for c in r.proof_changes]
        attempts = [a for r in results for a in r.attempts]
        review_changes = [c for r in results for c in r.review_changes]
        report.transitions.update(transitions)
        report.reviews += len(chunk.reviews)
        now = int(self.clock())
        if not self.options.dry_run:
            with session_scope(self.engine) as session:
                save_run_progress(
                    session,
                    run_id=report.run_id,
                    last=chunk.reviews[-1].key,
                    reviews_checked=report.earlier_reviews + report.reviews,
                    tallies=tallies(report),
                    now=now,
                )
                attesters = {r.id: r.attester for r in chunk.reviews}
                self._write_rows(session, report, proof_changes, attempts, review_changes, attesters, now)
                if self.on_chunk is not None:
                    self.on_chunk(review_ids)
        elif self.on_chunk is not None:
            self.on_chunk(review_ids)
        # Only once committed do these count as done (listed up to the report's limit, counted in all).
        report.proof_changes.add(proof_changes, change_json)
        report.attempts.add(attempts, attempt_json)
        report.review_changes.add(review_changes, review_change_json)

    def _write_rows(
        self,
        session: Session,
        report: ReverifyReport,
        proof_changes: list[Any],
        attempts: list[Any],
        review_changes: list[Any],
        attesters: dict[str, str],
        now: int,
    ) -> None:
        fresh = []
        for c in proof_changes:
            digest = c.values["evidence_hash"]
            if isinstance(digest, str) and digest in self.lookups.fresh and digest not in self.stored_snapshots:
                fresh.append((digest, *self.lookups.fresh[digest]))
                self.stored_snapshots.add(digest)
        report.inconsistent_aggregates += write_chunk_rows(
            session, run_id=report.run_id, proof_changes=proof_changes, attempts=attempts,
            review_changes=review_changes, attesters=attesters, snapshots=fresh, now=now,
        )  # fmt: skip

    def report_progress(self, report: ReverifyReport) -> None:
        if self.progress is None:
            return
        elapsed = time.monotonic() - self.started
        self.progress(
            Progress(
                done=report.earlier_reviews + report.reviews,
                total=report.total,
                elapsed=elapsed,
                rate=report.reviews / elapsed if elapsed > 0 else 0.0,
                changed=report.changed,
                indeterminate=report.indeterminate,
            )
        )


def reverify(
    *,
    engine: Engine,
    resolver: DidResolver | None,
    controllers: ControllerResolver | None,
    policy: ReviewPolicy,
    options: ReverifyOptions,
    clock: Callable[[], float] = time.time,
    progress: Callable[[Progress], None] | None = None,
    on_chunk: Callable[[list[str]], None] | None = None,
    payments: PaymentReader | None = None,
) -> ReverifyReport:
    """Re-verify the stored proofs selected by ``options`` (see the module docstring).

    ``progress`` is called after each chunk; ``on_chunk`` with the chunk's review ids just before its transaction
    commits (an exception there aborts the run as a crash would: that chunk is not recorded).

    Raises:
        ResumeError: ``options.resume`` names no unfinished run.
        ValueError: a stored partition selection does not parse.
        sqlalchemy.exc.SQLAlchemyError: the database failed (the run stays resumable from its last checkpoint).
        KeyboardInterrupt: passed through after the worker processes are stopped (resumable too).
    """
    run = _Run(
        engine=engine, resolver=resolver, controllers=controllers, policy=policy, clock=clock, options=options,
        progress=progress, on_chunk=on_chunk,
    )  # fmt: skip
    report, selection, after, subjects = run.prepare()

    def recheck(chunk: _Chunk) -> None:
        # Payment verdicts of the chunk's reviews are re-read from their networks (service.workflows.payment_recheck)
        if payments is None:
            return
        checked = recheck_payments(
            engine=engine, payments=payments, resolver=resolver, controllers=controllers, run_id=report.run_id,
            review_ids=[r.id for r in chunk.reviews], dry_run=options.dry_run, clock=clock,
        )  # fmt: skip
        report.payment_checks += checked.checked
        report.payment_changes.add(checked.changes, lambda c: c.to_json())
        report.payment_kept.add(checked.kept, lambda k: {"reviewId": k[0], "proofId": k[1], "reason": k[2]})
        report.review_changes.extend(checked.review_changes)

    run.start_pool()
    aborted = True
    try:
        inflight: deque[_Chunk] = deque()
        for chunk in run.pages(selection, after, subjects):
            run.submit(chunk)
            inflight.append(chunk)
            while len(inflight) > max(0, options.inflight_chunks - 1):
                done = inflight.popleft()
                run.write(report, done, run.collect(done))
                recheck(done)
                run.report_progress(report)
        while inflight:
            done = inflight.popleft()
            run.write(report, done, run.collect(done))
            recheck(done)
            run.report_progress(report)
        report.finished = True
        if not options.dry_run:
            with session_scope(engine) as session:
                save_run_progress(
                    session,
                    run_id=report.run_id,
                    last=None,
                    reviews_checked=report.earlier_reviews + report.reviews,
                    tallies=tallies(report),
                    now=int(clock()),
                    finished=True,
                )
        aborted = False
    finally:
        run.close(abort=aborted)
        report.seconds = time.monotonic() - run.started
        report.documents_fetched = len(run.lookups.docs)
        report.dns_queries = len(run.lookups.dns)
    return report


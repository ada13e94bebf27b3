"""What a re-verification run reports: progress while it runs, and the report (``to_json``) at the end — including
how its tallies are kept with the run row so a resumed run reports the whole run.

The report's lists (changed outcomes, attempts, review changes, payment changes) keep their first
``ReverifyOptions.report_limit`` entries each and count the rest, so the memory of a run does not grow with the
number of reviews it changes; every change is recorded in ``outcome_history`` (and every attempt in
``reverify_attempts``) under the run id whatever the limit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from service.workflows.reverify_memo import INDETERMINATE

DETAIL_LIMIT = 10_000  # entries kept per list of a report (the rest are counted)

T = TypeVar("T")


class Details(list[dict[str, Any]]):
    """A report list: its first ``limit`` entries, and how many there were in all (``total``)."""

    def __init__(self, limit: int = DETAIL_LIMIT) -> None:
        super().__init__()
        self.limit = limit
        self.total = 0

    def add(self, records: Sequence[T], convert: Callable[[T], dict[str, Any]]) -> None:
        """Count ``records``; keep ``convert(record)`` of those that still fit."""
        room = max(0, self.limit - len(self))
        super().extend(convert(r) for r in records[:room])
        self.total += len(records)

    def extend(self, entries: Iterable[dict[str, Any]]) -> None:
        self.add(list(entries), _same)

    def append(self, entry: dict[str, Any]) -> None:
        self.add([entry], _same)

    @property
    def omitted(self) -> int:
        return self.total - len(self)


def _same(entry: dict[str, Any]) -> dict[str, Any]:
    return entry


@dataclass(frozen=True, slots=True)
class Progress:
    done: int  # reviews judged in this run (including earlier invocations of a resumed run)
    total: int  # reviews selected by the run
    elapsed: float  # seconds in this invocation
    rate: float  # reviews per second in this invocation
    changed: int
    indeterminate: int

    @property
    def eta(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 and self.total >= self.done else None


@dataclass
class ReverifyReport:
    run_id: str
    dry_run: bool
    resumed: bool
    selection: dict[str, Any]
    total: int = 0
    reviews: int = 0  # judged in this invocation
    proofs: int = 0
    earlier_reviews: int = 0  # judged by earlier invocations of a resumed run
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)  # whole run
    proof_changes: Details = field(default_factory=Details)  # this invocation
    earlier_changes: Details = field(default_factory=Details)  # recorded by earlier invocations
    review_changes: Details = field(default_factory=Details)
    attempts: Details = field(default_factory=Details)
    inconsistent_aggregates: list[str] = field(default_factory=list)
    documents_fetched: int = 0  # did:web documents looked up (each once per run)
    dns_queries: int = 0  # hosts whose DNS controllers were looked up (each once per run)
    seconds: float = 0.0
    worker_cpu_seconds: float = 0.0
    finished: bool = False
    # Payment verdicts re-read from their networks (this invocation): how many, what changed, what could not run.
    payment_checks: int = 0
    payment_changes: Details = field(default_factory=Details)
    payment_kept: Details = field(default_factory=Details)

    def limit_details(self, limit: int) -> None:
        """Keep at most ``limit`` entries per list from now on (set before anything is added)."""
        for details in self._details().values():
            details.limit = limit

    def _details(self) -> dict[str, Details]:
        return {"changes": self.proof_changes, "earlierChanges": self.earlier_changes,
                "reviewChanges": self.review_changes, "attempts": self.attempts,
                "paymentChanges": self.payment_changes, "paymentIndeterminate": self.payment_kept}  # fmt: skip

    @property
    def indeterminate(self) -> int:
        return sum(n for (_, after), n in self.transitions.items() if after == INDETERMINATE)

    @property
    def changed(self) -> int:
        """Proof outcomes changed by the whole run (counted, also beyond the report's list limit)."""
        return self.proof_changes.total + self.earlier_changes.total

    @property
    def rate(self) -> float:
        return self.reviews / self.seconds if self.seconds > 0 else 0.0

    def exit_code(self) -> int:
        """0: everything checked; 3: some proofs could not be checked (their stored verdicts were kept)."""
        return 3 if self.indeterminate or self.payment_kept.total else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "resumed": self.resumed,
            "finished": self.finished,
            "selection": self.selection,
            "selected": self.total,
            "reviewsChecked": self.earlier_reviews + self.reviews,
            "reviewsCheckedNow": self.reviews,
            "proofsCheckedNow": self.proofs,
            "seconds": round(self.seconds, 3),
            "reviewsPerSecond": round(self.rate, 1),
            "transitions": [
                {"before": before, "after": after, "proofs": n}
                for (before, after), n in sorted(self.transitions.items())
            ],
            "indeterminate": self.indeterminate,
            "changed": self.changed,
            "changes": [*self.earlier_changes, *self.proof_changes],
            "reviewChanges": list(self.review_changes),
            "attempts": list(self.attempts),
            # Entries counted but not listed (report_limit); all are in outcome_history / reverify_attempts.
            "omitted": {name: d.omitted for name, d in self._details().items() if d.omitted},
            "inconsistentAggregates": self.inconsistent_aggregates,
            "documentsFetched": self.documents_fetched,
            "dnsQueries": self.dns_queries,
            "payments": {"checked": self.payment_checks, "changes": list(self.payment_changes),
                         "indeterminate": list(self.payment_kept)},
        }


def tallies(report: ReverifyReport) -> dict[str, Any]:
    return {"transitions": {f"{b}->{a}": n for (b, a), n in sorted(report.transitions.items())}}


def transitions_from(tallies: dict[str, Any]) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for key, n in dict(tallies.get("transitions", {})).items():
        before, _, after = str(key).partition("->")
        out[(before, after)] += int(n)
    return out


def change_json(c: Any) -> dict[str, Any]:
    v = c.values
    return {
        "reviewId": c.review_id,
        "proofId": c.proof_id,
        "position": c.position,
        "before": {"status": c.before_status, "reason": c.before_reason},
        "after": {"status": v["status"], "reason": v["reason"], "tier": v["tier"], "signer": v["signer"],
                  "bound": v["bound"], "evidenceHash": v["evidence_hash"]},
        "detail": c.detail,
    }  # fmt: skip


def attempt_json(a: Any) -> dict[str, Any]:
    return {"reviewId": a.review_id, "proofId": a.proof_id, "keptStatus": a.kept_status, "reason": a.reason,
            "detail": a.detail}  # fmt: skip


def review_change_json(c: Any) -> dict[str, Any]:
    return {"reviewId": c.review_id, "before": {"verifiedPurchase": c.before[0], "evidence": c.before[1]},
            "after": {"verifiedPurchase": c.after[0], "evidence": c.after[1]}}  # fmt: skip


def history_json(h: Any) -> dict[str, Any]:
    """An ``outcome_history`` row of an earlier invocation of the run."""
    return {"reviewId": h.review_id, "proofId": h.proof_id, "before": {"status": h.before_status,
            "reason": h.before_reason}, "after": {"status": h.after_status, "reason": h.after_reason}}  # fmt: skip

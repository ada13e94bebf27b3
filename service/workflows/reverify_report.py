"""What a re-verification run reports: progress while it runs, and the report (``to_json``) at the end — including
how its tallies are kept with the run row so a resumed run reports the whole run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from service.workflows.reverify_memo import INDETERMINATE


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
    proof_changes: list[dict[str, Any]] = field(default_factory=list)  # this invocation
    earlier_changes: list[dict[str, Any]] = field(default_factory=list)  # recorded by earlier invocations
    review_changes: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    inconsistent_aggregates: list[str] = field(default_factory=list)
    documents_fetched: int = 0  # did:web documents looked up (each once per run)
    dns_queries: int = 0  # hosts whose DNS controllers were looked up (each once per run)
    seconds: float = 0.0
    worker_cpu_seconds: float = 0.0
    finished: bool = False
    # Payment verdicts re-read from their networks (this invocation): how many, what changed, what could not run.
    payment_checks: int = 0
    payment_changes: list[dict[str, Any]] = field(default_factory=list)
    payment_kept: list[dict[str, Any]] = field(default_factory=list)

    @property
    def indeterminate(self) -> int:
        return sum(n for (_, after), n in self.transitions.items() if after == INDETERMINATE)

    @property
    def changed(self) -> int:
        return len(self.proof_changes) + len(self.earlier_changes)

    @property
    def rate(self) -> float:
        return self.reviews / self.seconds if self.seconds > 0 else 0.0

    def exit_code(self) -> int:
        """0: everything checked; 3: some proofs could not be checked (their stored verdicts were kept)."""
        return 3 if self.indeterminate or self.payment_kept else 0

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
            "changes": self.earlier_changes + self.proof_changes,
            "reviewChanges": self.review_changes,
            "attempts": self.attempts,
            "inconsistentAggregates": self.inconsistent_aggregates,
            "documentsFetched": self.documents_fetched,
            "dnsQueries": self.dns_queries,
            "payments": {"checked": self.payment_checks, "changes": self.payment_changes,
                         "indeterminate": self.payment_kept},
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

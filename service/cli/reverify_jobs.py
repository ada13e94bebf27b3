"""``omatrust reverify --distribute N``: re-verification as N partition jobs run by ``omatrust worker`` processes.

The N jobs (partitions ``0/N`` … ``N-1/N`` of the subjects) are enqueued in one transaction; this command then
waits until every one has finished and prints the combined report: the verdict transitions and the outcome-history
rows of the N runs (the same figures a single-process run over the same selection records). A job whose worker dies
is handed to another worker and continues its run from the last committed chunk (nothing is lost or done twice);
running this command again after an interruption continues the unfinished partitions the same way.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from service.store.jobqueue import REVERIFY_QUEUE, REVERIFY_TASK, defer_batch, job_states
from service.workflows.partition import Partition
from service.workflows.reverify import ReverifyOptions
from service.workflows.reverify_report import transitions_from

EXIT_OK, EXIT_FAILED, EXIT_INDETERMINATE = 0, 1, 3


def distribute(*, engine: Engine, options: ReverifyOptions, count: int, json_path: str | None,
               poll: float = 0.5, timeout: float | None = None) -> int:  # fmt: skip
    """Enqueue ``count`` partition jobs for ``options``' selection, wait for them, print the combined report.
    Returns the exit code (0 all checked, 3 some indeterminate, 1 a job failed for good or the wait timed out)."""
    selection = options.selection_key()
    started = time.time()
    with engine.begin() as conn:
        ids = defer_batch(conn, task=REVERIFY_TASK, queue=REVERIFY_QUEUE, args=[
            {"partition": str(Partition(index=k, count=count)), "selection": selection,
             "chunk_size": options.chunk_size}
            for k in range(count)
        ])  # fmt: skip
    print(f"omatrust reverify: {count} partition jobs enqueued ({ids[0]}…{ids[-1]}); waiting for the workers",
          file=sys.stderr)  # fmt: skip
    while True:
        with engine.connect() as conn:
            states = job_states(conn, ids=ids)
        failed = [i for i, s in states.items() if s in ("failed", "cancelled", "aborted")]
        if failed:
            print(f"omatrust reverify: partition jobs {failed} failed (see the worker logs); run again to continue",
                  file=sys.stderr)  # fmt: skip
            return EXIT_FAILED
        if all(states.get(i, "succeeded") == "succeeded" for i in ids):  # finished jobs may have been deleted
            break
        if timeout is not None and time.time() - started > timeout:
            print("omatrust reverify: timed out waiting for the workers", file=sys.stderr)
            return EXIT_FAILED
        time.sleep(poll)
    report = combined_report(engine=engine, selection=selection, count=count)
    print(f"reverify --distribute {count}: {report['reviewsChecked']:,} reviews in {len(report['runs'])} runs, "
          f"{report['historyRows']} outcome changes, {time.time() - started:.1f} s")  # fmt: skip
    for t in report["transitions"]:
        print(f"  {t['before']:>13} → {t['after']:<13} {t['proofs']:>8,}")
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
            fh.write("\n")
    indeterminate = sum(t["proofs"] for t in report["transitions"] if t["after"] == "indeterminate")
    return EXIT_INDETERMINATE if indeterminate else EXIT_OK


def combined_report(*, engine: Engine, selection: dict[str, Any], count: int) -> dict[str, Any]:
    """The latest finished run of each partition of ``selection``: summed transitions, reviews, history rows."""
    runs: list[dict[str, Any]] = []
    transitions: Counter[tuple[str, str]] = Counter()
    with engine.connect() as conn:
        for k in range(count):
            wanted = {**selection, "partition": str(Partition(index=k, count=count))}
            rows = conn.execute(text(
                "SELECT run_id, selection, reviews_checked, tallies FROM reverify_runs WHERE state = 'done' "
                "ORDER BY started_at DESC"
            )).all()  # fmt: skip
            row = next((r for r in rows if dict(r[1]) == wanted), None)
            if row is None:
                continue
            runs.append({"runId": row[0], "partition": wanted["partition"], "reviewsChecked": int(row[2])})
            transitions.update(transitions_from(dict(row[3])))
        ids = [r["runId"] for r in runs]
        history = conn.execute(text("SELECT count(*) FROM outcome_history WHERE run_id = ANY(:ids)"),
                               {"ids": ids}).scalar_one()  # fmt: skip
    return {
        "selection": selection,
        "runs": runs,
        "reviewsChecked": sum(r["reviewsChecked"] for r in runs),
        "historyRows": int(history),
        "transitions": [{"before": b, "after": a, "proofs": n} for (b, a), n in sorted(transitions.items())],
    }

"""``omatrust reverify``: re-verify stored proofs in batch (see docs/batch.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from service.cli.args import database_problem, service_did
from service.domain import ProofStatus
from service.errors import ResumeError
from service.wiring import (
    build_identity,
    build_payments,
    database,
    load_settings,
    migrate_database,
    review_policy,
)
from service.workflows.partition import Partition
from service.workflows.reverify import LATEST, ReverifyOptions, reverify
from service.workflows.reverify_report import Progress, ReverifyReport

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INDETERMINATE = 3
EXIT_INTERRUPTED = 130

HELP = """\
Re-run the verification of stored proofs: signatures, authorization of the signer for the service, and receipt
binding. Authorization is judged as of the receipt's issuedAt: fresh look-ups (did:web documents, DNS
_controllers) plus the evidence snapshots stored when the proof was first verified — a key removed from did.json
after a receipt was issued keeps that receipt verified (docs/batch.md states the exact rule). A look-up that fails
gives "indeterminate" and never changes a stored verdict (the attempt is recorded).

Every change of a proof's outcome is recorded (outcome_history, with this run's id); reviews whose evidence class
changed are updated with their subjects' score aggregates. Work is committed per chunk with a checkpoint: after
Ctrl-C or a crash, --resume continues the last unfinished run with the same selection.

Exit status: 0 every selected proof was checked; 3 some could not be checked (indeterminate, stored verdicts kept);
1 failure (e.g. database error; the run stays resumable); 2 usage error; 130 interrupted (resumable).

Environment: OMATRUST_DATABASE_URL, OMATRUST_DID_WEB_INSECURE_HOSTS, OMATRUST_DID_WEB_CA_FILE,
OMATRUST_DNS_NAMESERVERS, OMATRUST_FETCH_TIMEOUT_SECONDS, OMATRUST_DNS_TIMEOUT_SECONDS,
OMATRUST_RECEIPT_MAX_AGE_SECONDS, OMATRUST_CLOCK_SKEW_SECONDS.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--subject", metavar="DID", type=service_did, help="only reviews of this service DID (read as the API reads it)"
    )
    parser.add_argument("--since", metavar="T", help="only reviews made at or after T (unix seconds or ISO 8601)")
    parser.add_argument(
        "--status", choices=[s.value for s in ProofStatus], help="only reviews with a proof stored with this status"
    )
    parser.add_argument("--partition", metavar="K/N", help="only subjects in partition K of N (sha256 of the subject)")
    parser.add_argument("--dry-run", action="store_true", help="judge and report, write nothing")
    parser.add_argument("--json", metavar="REPORT", help="write a JSON report listing every change to this file")
    parser.add_argument(
        "--resume",
        nargs="?",
        const=LATEST,
        metavar="RUN_ID",
        help="continue an interrupted run: RUN_ID, or (default) the latest unfinished run with the same selection; "
        "'if-any' starts a new run when there is none (for retried batch jobs)",
    )
    parser.add_argument("--workers", type=int, default=None, help="verification processes (default: one per core)")
    parser.add_argument(
        "--distribute", type=int, metavar="N",
        help="run as N partition jobs on the `omatrust worker` processes (PostgreSQL); waits and prints the combined "
        "report. Run again to continue after an interruption",
    )  # fmt: skip
    parser.add_argument("--chunk-size", type=int, default=2000, help="reviews per read/commit chunk (default 2000)")
    parser.add_argument("--lookup-threads", type=int, default=16, help="concurrent DID/DNS look-ups (default 16)")


def parse_time(text: str) -> int:
    """Unix seconds or an ISO 8601 date/time (UTC when no zone is given).

    Raises:
        ValueError: neither.
    """
    text = text.strip()
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _options(args: argparse.Namespace) -> ReverifyOptions:
    """Raises ValueError for a bad --since / --partition / size."""
    if args.chunk_size < 1 or args.lookup_threads < 1 or (args.workers is not None and args.workers < 0):
        raise ValueError("--chunk-size and --lookup-threads must be >= 1, --workers >= 0")
    return ReverifyOptions(
        subject=args.subject,
        since=parse_time(args.since) if args.since else None,
        status=args.status,
        partition=Partition.parse(args.partition) if args.partition else None,
        dry_run=args.dry_run,
        resume=args.resume,
        chunk_size=args.chunk_size,
        task_size=max(1, min(250, args.chunk_size // 4 or 1)),
        workers=args.workers,
        lookup_threads=args.lookup_threads,
    )


def run(args: argparse.Namespace) -> int:
    try:
        options = _options(args)
    except ValueError as exc:
        print(f"omatrust reverify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings()
    if (problem := database_problem(settings.database_url, command="reverify")) is not None:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    engine = database(settings, migrate=False)
    if args.distribute is not None:
        return _distributed(args, options, settings.database_url, engine)
    printer = ProgressPrinter(stream=sys.stderr)
    try:
        if not options.dry_run:
            migrate_database(engine)
        resolver, controllers = build_identity(settings)
        policy = review_policy(settings)
        report = reverify(
            engine=engine,
            resolver=resolver,
            controllers=controllers,
            policy=policy,
            options=options,
            progress=printer,
            payments=build_payments(settings),
        )
    except ResumeError as exc:
        printer.close()
        print(f"omatrust reverify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        printer.close()
        print("omatrust reverify: interrupted; continue with `omatrust reverify --resume` (same selection)",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    except SQLAlchemyError as exc:
        printer.close()
        print(f"omatrust reverify: database error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        engine.dispose()
    printer.close()
    print(summary(report))
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(report.to_json(), fh, indent=2)
                fh.write("\n")
        except OSError as exc:
            print(f"omatrust reverify: cannot write {args.json}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    return report.exit_code()


def _distributed(args: argparse.Namespace, options: ReverifyOptions, database_url: str, engine: Engine) -> int:
    """``--distribute N``: the partitions run as worker jobs (service.cli.reverify_jobs)."""
    from service.cli.reverify_jobs import distribute

    try:
        if args.distribute < 1 or options.partition is not None or options.dry_run or options.resume:
            print("omatrust reverify: --distribute N needs N >= 1, without --partition, --dry-run or --resume",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        if not database_url.startswith("postgresql"):
            print("omatrust reverify: --distribute needs PostgreSQL (the task queue)", file=sys.stderr)
            return EXIT_USAGE
        migrate_database(engine)
        return distribute(engine=engine, options=options, count=args.distribute, json_path=args.json)
    except SQLAlchemyError as exc:
        print(f"omatrust reverify: database error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        engine.dispose()


def summary(report: ReverifyReport) -> str:
    """The end-of-run table: proofs by (stored status → judged status), then what changed."""
    head = "dry run" if report.dry_run else "run"
    resumed = f", resumed after {report.earlier_reviews:,} reviews" if report.resumed else ""
    lines = [
        f"{head} {report.run_id}{resumed}: {report.reviews:,} reviews ({report.proofs:,} proofs) in "
        f"{report.seconds:.1f} s — {report.rate:,.0f} reviews/s",
        "",
        f"{'stored':<14} {'judged':<14} {'proofs':>10}",
    ]
    for (before, after), n in sorted(report.transitions.items()):
        note = f"  (kept {before}: could not check)" if after == "indeterminate" and before != after else ""
        lines.append(f"{before:<14} {after:<14} {n:>10,}{note}")
    if not report.transitions:
        lines.append("(no proofs selected)")
    lines.append("")
    verb = "would change" if report.dry_run else "changed"
    lines.append(
        f"{verb}: {report.changed:,} proof outcomes, {report.review_changes.total:,} reviews' evidence; "
        f"{report.indeterminate:,} proofs could not be checked (stored verdicts kept)"
    )
    if report.inconsistent_aggregates:
        subjects = ", ".join(report.inconsistent_aggregates)
        lines.append(f"aggregates not updated (inconsistent with their reviews, recompute them): {subjects}")
    return "\n".join(lines)


class ProgressPrinter:
    """A progress bar with rate and ETA on a terminal; a plain line every ``interval`` seconds otherwise."""

    def __init__(self, *, stream: TextIO, interval: float = 5.0, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.interval = interval if not self.tty else 0.1
        self._last = 0.0
        self._drawn = False

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self._last < self.interval and p.done < p.total:
            return
        self._last = now
        if self.tty:
            self.stream.write("\r" + bar(p) + "\x1b[K")
            self._drawn = True
        else:
            self.stream.write(line(p) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def bar(p: Progress, width: int = 30) -> str:
    fraction = min(1.0, p.done / p.total) if p.total else 1.0
    filled = int(fraction * width)
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% {p.done:,}/{p.total:,} "
        f"{p.rate:,.0f}/s ETA {_duration(p.eta)} changed {p.changed:,} indeterminate {p.indeterminate:,}"
    )


def line(p: Progress) -> str:
    fraction = p.done / p.total * 100 if p.total else 100.0
    return (
        f"reverify: {p.done:,}/{p.total:,} reviews ({fraction:.1f}%), {p.rate:,.0f} reviews/s, "
        f"ETA {_duration(p.eta)}, {p.changed:,} changed, {p.indeterminate:,} indeterminate"
    )


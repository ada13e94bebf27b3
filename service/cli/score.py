"""``omatrust score``: the trust score of a service DID as JSON, read from the database only (no chain, no
network): the same numbers as ``GET /v1/services/{did}/reputation``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqlalchemy.exc import OperationalError, ProgrammingError

from service.cli.args import database_problem, service_did
from service.errors import OmaTrustError
from service.wiring import load_settings, score_context
from service.workflows.reputation import Reputation, reputation
from service.workflows.score_audit import RecomputeReport, recompute

EXIT_OK = 0
EXIT_USAGE = 2

HELP = """\
Prints one JSON object: the TrustScore fields in camelCase (score 0-100, lower90, confidence, effectiveEvidence,
counts, histogram, verifiedShare, topReviewerShare, reviewerDominates, topMovers, paramsVersion, ...) plus "did".

--explain computes the score by the exact recompute over every review of the DID (O(n)) and adds "contributions":
each review's part in score points (live ones by |contribution|; superseded ones with weight 0).

--recompute rebuilds the stored aggregates from the reviews table — for DID, or for every subject when DID is
omitted — and the global row behind the prior mean, after checking the stored aggregate against the exact
recompute. Output: {"recompute": {subjects, disagreements, checks, globalDifferences, priorMeanBefore,
priorMeanAfter}, "reputation": {...}}. Review writes wait while it runs (one transaction).

Reads OMATRUST_DATABASE_URL (default ./omatrust.db, as `omatrust serve`). Exit status 0, or 2 on bad usage, a
missing database or one without the schema.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "did",
        nargs="?",
        type=service_did,
        help="service DID, e.g. did:web:api.example.com or did:web:localhost:4021 (optional with --recompute)",
    )
    parser.add_argument("--explain", action="store_true", help="exact recompute with per-review contributions")
    parser.add_argument("--recompute", action="store_true", help="rebuild and check stored aggregates first")


def reputation_json(rep: Reputation) -> dict[str, Any]:
    out: dict[str, Any] = {"did": rep.did, **rep.score.to_wire()}
    if rep.contributions is not None:
        out["contributions"] = [c.to_wire() for c in rep.contributions]
    return out


def report_json(report: RecomputeReport) -> dict[str, Any]:
    return {
        "subjects": report.subjects,
        "disagreements": report.disagreements,
        "globalDifferences": list(report.global_differences),
        "priorMeanBefore": report.prior_mean_before,
        "priorMeanAfter": report.prior_mean_after,
        "checks": [
            {
                "did": c.did,
                "reviews": c.reviews,
                "agrees": c.agrees,
                "differences": list(c.differences),
                "storedScore": c.stored.score if c.stored else None,
                "recomputedScore": c.recomputed.score,
            }
            for c in report.checks
        ],
    }


def run(args: argparse.Namespace) -> int:
    if args.did is None and not args.recompute:
        print("omatrust score: a DID is required (or --recompute to rebuild every subject)", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings()
    if (problem := database_problem(settings.database_url, command="score")) is not None:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    ctx = score_context(settings)
    engine = ctx.engine
    try:
        out: dict[str, Any] = {}
        if args.recompute:
            out["recompute"] = report_json(recompute(rt=ctx, did=args.did))
        if args.did is not None:
            rep = reputation_json(reputation(rt=ctx, did=args.did, explain=args.explain))
            if args.recompute:
                out["reputation"] = rep
            else:
                out = rep
    except (OperationalError, ProgrammingError) as exc:
        print(f"omatrust score: cannot read the database ({exc.orig}); run `omatrust db upgrade` first?",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    except OmaTrustError as exc:
        print(f"omatrust score: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        engine.dispose()
    print(json.dumps(out, indent=2))
    return EXIT_OK

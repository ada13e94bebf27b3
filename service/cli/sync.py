"""``omatrust sync``: index OMATrust User Reviews from the chain into the database (see docs/batch.md)."""

from __future__ import annotations

import argparse
import sys
import time

from sqlalchemy.exc import SQLAlchemyError

from service.chain.indexer import ReviewIndexer
from service.cli.erc8004 import sync_step as erc8004_sync_step
from service.errors import ChainRejected, CouldNotCheck
from service.wiring import load_settings, wire
from service.workflows.sync import SyncReport, sync_chain

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INDETERMINATE = 3

HELP = """\
Read every OMATrust User Review attestation (EAS Attested events of the User Review schema, whoever made them) from
the stored checkpoint to the chain head minus OMATRUST_CONFIRMATIONS, verify their proofs (review time = attestation
time, attester = the on-chain attester) and store them with source "chain". Already stored attestations are
skipped, so running it again (or while the API runs) is safe; the checkpoint moves only after a block range is
committed. Undecodable or schema-breaking attestations are recorded in chain_rejects; a recipient that is not the
subject's DID Address is stored with problem "recipient-mismatch" and never counts as verified.

--from re-reads from a block (the checkpoint never moves back); --to stops early.

Exit status: 0 synced; 3 synced, but some proofs could not be checked (indeterminate: run
`omatrust reverify --status indeterminate` later); 1 failure (RPC or database; rerun to resume); 2 usage error.

Environment: OMATRUST_RPC_URL (empty: the embedded, ephemeral chain), OMATRUST_EAS_ADDRESS, OMATRUST_DATABASE_URL,
OMATRUST_CONFIRMATIONS, and the did:web / DNS settings used to verify proofs.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--from", dest="from_block", type=int, default=None, metavar="BLOCK", help="first block")
    parser.add_argument("--to", dest="to_block", type=int, default=None, metavar="BLOCK", help="last block")
    parser.add_argument("--chunk-blocks", type=int, default=2000, help="blocks per committed range (default 2000)")


def run(args: argparse.Namespace) -> int:
    if (args.from_block is not None and args.from_block < 0) or args.chunk_blocks < 1 or (
        args.from_block is not None and args.to_block is not None and args.to_block < args.from_block
    ):
        print("omatrust sync: need 0 <= --from <= --to and --chunk-blocks >= 1", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings()
    try:
        wired = wire(settings, publisher=False)
    except (SQLAlchemyError, CouldNotCheck, ChainRejected) as exc:
        print(f"omatrust sync: cannot start: {exc}", file=sys.stderr)
        return EXIT_FAILED
    rt = wired.runtime
    if rt.ephemeral_chain:
        print("omatrust sync: no OMATRUST_RPC_URL: syncing the embedded in-process chain (empty, ephemeral)",
              file=sys.stderr)  # fmt: skip
    indexer = ReviewIndexer(client=rt.eas, chunk_blocks=args.chunk_blocks, confirmations=rt.confirmations - 1)
    try:
        report = sync_chain(
            rt=rt, indexer=indexer, from_block=args.from_block, to_block=args.to_block, progress=_Progress()
        )
        erc8004_sync_step(settings=settings, rt=rt, args=args)  # ERC-8004 feedback (when registries are known)
    except (CouldNotCheck, ChainRejected, ValueError) as exc:
        print(f"omatrust sync: {exc} (committed ranges are kept; run again to resume)", file=sys.stderr)
        return EXIT_FAILED
    except SQLAlchemyError as exc:
        print(f"omatrust sync: database error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        wired.close()
    print(summary(report))
    return report.exit_code()


class _Progress:
    """One line per committed block range that held attestations, else at most one every ``interval`` seconds."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.last = 0.0
        self.found = 0

    def __call__(self, report: SyncReport) -> None:
        now = time.monotonic()
        if report.found == self.found and now - self.last < self.interval:
            return
        self.last, self.found = now, report.found
        print(f"sync: blocks {report.from_block}..{report.to_block}: {report.found} attestations, "
              f"{report.stored} new", file=sys.stderr)  # fmt: skip


def summary(report: SyncReport) -> str:
    if report.to_block is None:
        return f"nothing to read (from block {report.from_block}; head minus confirmations is behind it)"
    return (
        f"synced blocks {report.from_block}..{report.to_block}: {report.found} attestations — {report.stored} new "
        f"({report.verified} verified purchases, {report.superseded_on_arrival} already superseded, "
        f"{report.recipient_mismatch} recipient mismatches, {report.replayed} replayed receipts, "
        f"{report.indeterminate} with proofs not checkable now), {report.known} already stored, "
        f"{report.linked} linked to our own reviews, {report.rejected} rejected"
    )

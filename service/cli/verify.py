"""``omatrust verify``: verify x402 offers/receipts from a file or stdin, one JSON verdict per artifact."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

from service.domain import ProofOutcome, ProofStatus, Reason
from service.errors import MalformedInput
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.proofs.jsonstrict import MAX_DEPTH, loads_strict, too_deep
from service.wiring import build_identity, load_settings
from service.workflows.outcome_json import outcome_to_json
from service.workflows.verify import ArtifactData, verify_batch

_NOT_JSON = object()  # placeholder for a JSON Lines line that does not parse

EXIT_OK = 0
EXIT_BAD_INPUT = 2

HELP = """\
Input: a JSON document holding one artifact or an array of them (default), or JSON Lines with one artifact per
line (--jsonl). An artifact is a bare x402 envelope {format, payload?, signature, acceptIndex?} or an OMATrust proof
wrapper {proofType: "x402-receipt"|"x402-offer", proofObject, ...}. Offers in the same input may authorize EIP-712
receipts whose signer is their payTo (tier offer-payto).

Output: one JSON object per artifact, in input order: index, kind, format, signatureValid, signer, status, reason,
tier, replayKey, evidenceHash, checkedAt, detail. status is verified | unauthorized | invalid | indeterminate
(a look-up failed: nothing is known) | unsupported. For EIP-712 the signer is *recovered*: a tampered payload
recovers some other address, which is why authorization matters.

--offline makes no network look-up at all: authorization is skipped (a valid signature is reported as verified
with tier null: compare the signer yourself), and a JWS whose kid is a did:web is indeterminate with reason
lookup-skipped, since its key is in a fetched document. did:key / did:jwk kids and EIP-712 need no look-up.

Exit status: 0 when every input was processed, whatever the verdicts; 2 when the input cannot be used (unreadable
file; not JSON without --jsonl). With --jsonl a bad line gives status invalid, reason malformed-json.

did:web documents are fetched over https only, never from private/loopback addresses, without redirects, at most
64 KiB. Development escape hatch: hosts listed in OMATRUST_DID_WEB_INSECURE_HOSTS (host or host:port) are fetched
over plain http and may be on loopback, as the x402 SDK does for localhost. --ca-file adds a trusted CA (private
PKI, tests).

Environment: OMATRUST_DID_WEB_INSECURE_HOSTS, OMATRUST_DNS_NAMESERVERS (ip[:port], comma list; default: system
resolver), OMATRUST_FETCH_TIMEOUT_SECONDS, OMATRUST_DNS_TIMEOUT_SECONDS, OMATRUST_DID_CACHE_TTL_SECONDS.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("file", nargs="?", default="-", help="input file, or - for stdin (default)")
    parser.add_argument("--jsonl", action="store_true", help="input is JSON Lines, one artifact per line")
    parser.add_argument("--now", type=int, default=None, metavar="UNIX", help="verification time (default: now)")
    parser.add_argument("--offline", action="store_true", help="no network look-ups (see above)")
    parser.add_argument(
        "--ca-file", default=None, metavar="PEM", help="extra CA bundle for did:web HTTPS (tests, private CAs)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        text = _read(args.file)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"omatrust verify: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    now = args.now if args.now is not None else int(time.time())
    # Bad lines keep their place in the output and get a malformed-json verdict.
    items: list[Any]
    if args.jsonl:
        items = [_json_line(line) for line in text.splitlines() if line.strip()]
    else:
        try:
            if too_deep(text):
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
            document = json.loads(text)
        except ValueError as exc:
            print(f"omatrust verify: {args.file} is not JSON: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        # One artifact: hand over the text itself, so the strict parser judges it (duplicate keys, NaN, …).
        items = list(document) if isinstance(document, list) else [text]

    resolver, controllers = (None, None) if args.offline else _resolvers(args)
    usable: list[ArtifactData] = [item for item in items if item is not _NOT_JSON]
    outcomes = verify_batch(items=usable, resolver=resolver, controllers=controllers, now=now, offline=args.offline)
    verdicts = iter(outcomes)
    for index, item in enumerate(items):
        outcome = _malformed(now) if item is _NOT_JSON else next(verdicts)
        _print(index, outcome, sys.stdout)
    return EXIT_OK


def _resolvers(args: argparse.Namespace) -> tuple[DidResolver, ControllerResolver]:
    overrides = {"did_web_ca_file": args.ca_file} if args.ca_file else {}
    return build_identity(load_settings(**overrides))


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.buffer.read().decode("utf-8")
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _json_line(line: str) -> Any:
    try:
        return loads_strict(line, what="line")
    except MalformedInput:
        return _NOT_JSON


def _malformed(now: int) -> ProofOutcome:
    return ProofOutcome(
        status=ProofStatus.INVALID,
        reason=Reason.MALFORMED_JSON,
        kind=None,
        format=None,
        signature_valid=False,
        signer=None,
        tier=None,
        replay_key=None,
        checked_at=now,
        detail="line is not JSON",
    )


def _print(index: int, outcome: ProofOutcome, out: TextIO) -> None:
    out.write(json.dumps({"index": index, **outcome_to_json(outcome)}) + "\n")
    out.flush()

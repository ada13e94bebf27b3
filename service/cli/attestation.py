"""``omatrust attestation UID``: print an attestation as the configured chain has it (JSON, the same body as
``GET /v1/attestations/{uid}``): schema, attester, recipient, time, revocation, the decoded User Review, and the id of
the review this service stores for it.

Exit status: 0 found; 4 the chain has no such attestation; 1 chain or database failure; 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

EXIT_NOT_FOUND = 4
_UID = re.compile(r"^0x[0-9a-fA-F]{64}$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("uid", help="attestation UID (0x + 64 hex)")


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from service.errors import ChainRejected, CouldNotCheck
    from service.wiring import load_settings, wire
    from service.workflows.attestations import attestation_json, read_attestation

    if not _UID.match(args.uid):
        print("omatrust attestation: UID must be 0x followed by 64 hex digits", file=sys.stderr)
        return 2
    try:
        wired = wire(load_settings(), publisher=False)
    except (SQLAlchemyError, CouldNotCheck, ChainRejected) as exc:
        print(f"omatrust attestation: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        view = read_attestation(rt=wired.runtime, uid=args.uid)
    except CouldNotCheck as exc:
        print(f"omatrust attestation: chain unavailable: {exc}", file=sys.stderr)
        return 1
    finally:
        wired.close()
    if view is None:
        print(f"omatrust attestation: no attestation {args.uid.lower()} on this chain", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(json.dumps(attestation_json(view), indent=2))
    return 0

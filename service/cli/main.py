"""``omatrust`` command: a thin dispatcher; each sub-command lives in its own module with
``add_arguments(parser)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name → (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("service.cli.serve", "run the HTTP API (embedded chain + SQLite by default)"),
    "worker": ("service.cli.worker", "run background jobs from the PostgreSQL task queue (publish, sync)"),
    "verify": ("service.cli.verify", "verify x402 offers/receipts from a file or stdin"),
    "chain": ("service.cli.chain", "chain operator commands (bootstrap, adopt)"),
    "attestation": ("service.cli.attestation", "print an attestation read from the chain"),
    "db": ("service.cli.db", "database commands (upgrade)"),
    "demo": ("service.cli.demo", "populate a running service with demo reviews"),
    "score": ("service.cli.score", "print the trust score of a service DID"),
    "sync": ("service.cli.sync", "index OMATrust reviews from the chain"),
    "reverify": ("service.cli.reverify", "re-verify stored reviews in batch"),
    "pay": ("service.cli.pay", "buy an x402 resource (EIP-3009) and keep its signed receipt"),
    "review": ("service.cli.review", "post a review backed by an x402 receipt"),
    "merchant": ("service.cli.merchant", "run the example x402 merchant (offer-receipt + reviews extensions)"),
    "facilitator": ("service.cli.facilitator", "run a local x402 facilitator (PyPI x402 SDK, exact EVM)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser. Only ``command``'s module is imported (to add its arguments): ``omatrust --help`` and every
    other command's start-up stay free of web3, FastAPI and SQLAlchemy imports."""
    parser = argparse.ArgumentParser(prog="omatrust", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name != command:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (the first argument that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command_in(argv)).parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        print(f"omatrust {args.command}: not available in this build", file=sys.stderr)
        return 2
    return int(run(args))


if __name__ == "__main__":
    raise SystemExit(main())

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
    "verify": ("service.cli.verify", "verify x402 offers/receipts from a file or stdin"),
    "chain": ("service.cli.chain", "chain operator commands (bootstrap)"),
    "db": ("service.cli.db", "database commands (upgrade)"),
    "demo": ("service.cli.demo", "populate a running service with demo reviews"),
    "score": ("service.cli.score", "print the trust score of a service DID"),
    "sync": ("service.cli.sync", "index OMATrust reviews from the chain"),
    "reverify": ("service.cli.reverify", "re-verify stored reviews in batch"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omatrust", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        print(f"omatrust {args.command}: not available in this build", file=sys.stderr)
        return 2
    return int(run(args))


if __name__ == "__main__":
    raise SystemExit(main())

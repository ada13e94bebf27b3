"""``omatrust db upgrade``: apply the Alembic migrations to OMATRUST_DATABASE_URL."""

from __future__ import annotations

import argparse

from service.wiring import database, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", required=True)
    up = sub.add_parser("upgrade", help="migrate the database to the latest schema (idempotent)")
    up.add_argument("--revision", default="head")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    engine = database(settings, revision=args.revision)
    print(f"database at {engine.url.render_as_string(hide_password=True)} is at {args.revision}")
    return 0

"""``omatrust serve``: the HTTP API.

Default (SQLite, embedded chain): one process that also runs the background jobs (publish, sync) in process — the
same job code as ``omatrust worker`` (service.workflows.jobs). Scaled out (PostgreSQL,
an RPC node, ``OMATRUST_PUBLISHER_ENABLED=false``): ``--workers N`` API processes, stateless, that only enqueue;
``omatrust worker`` processes publish (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import logging
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8402, help="port (default 8402)")
    parser.add_argument("--workers", type=int, default=1,
                        help="API processes (uvicorn workers); more than 1 needs PostgreSQL, an RPC node and "
                             "OMATRUST_PUBLISHER_ENABLED=false with `omatrust worker` publishing")  # fmt: skip
    parser.add_argument("--log-level", default="info")


def check_processes(*, workers: int, database_url: str, rpc_url: str, publisher_enabled: bool) -> str | None:
    """Why ``workers`` API processes cannot run with these settings (None: they can). Several processes must share
    a database and a chain (so not SQLite's file or the in-process chain), and none may publish: one publisher per
    relayer key, which the workers guarantee."""
    if workers < 1:
        return "--workers must be >= 1"
    if workers == 1:
        return None
    if not database_url.startswith("postgresql"):
        return "several API processes need PostgreSQL (OMATRUST_DATABASE_URL)"
    if not rpc_url:
        return "several API processes need an RPC node (OMATRUST_RPC_URL): the embedded chain lives in one process"
    if publisher_enabled:
        return "set OMATRUST_PUBLISHER_ENABLED=false and run `omatrust worker`: one publisher per relayer key"
    return None


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from service.wiring import database, load_settings

    settings = load_settings()
    problem = check_processes(workers=args.workers, database_url=settings.database_url, rpc_url=settings.rpc_url,
                              publisher_enabled=settings.publisher_enabled)  # fmt: skip
    if problem:
        print(f"omatrust serve: {problem}", file=sys.stderr)
        return 2
    if args.workers > 1:
        # Migrate once here, not concurrently in every process's app factory.
        database(settings).dispose()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Loaded by import string so nothing imports the api package (import-linter: api and cli are leaves).
    uvicorn.run(
        "service.api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        proxy_headers=False,
    )
    return 0

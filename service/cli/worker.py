"""``omatrust worker``: run background jobs (publishing, chain sync, periodic ticks) from the PostgreSQL task queue.

Several workers may run at once, on any machines: each relayer key is published by exactly one job at a time
(Procrastinate job lock), so workers never race for a relayer nonce. SIGTERM/SIGINT stop it after the running jobs;
a SIGKILLed worker's job is handed back by the stalled-job sweep of the others (``OMATRUST_WORKER_STALLED_SECONDS``).
"""

from __future__ import annotations

import argparse
import logging
import sys

QUEUES = ("publish", "sync", "reverify", "periodic")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queues", default=",".join(QUEUES),
                        help="comma list of queues to run (default: %(default)s)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=2,
                        help="jobs run at once in this process (default: %(default)s)")  # fmt: skip
    parser.add_argument("--name", default=None, help="worker name in logs")
    parser.add_argument("--log-level", default="info")


def run(args: argparse.Namespace) -> int:
    from service.jobs.app import build_app, conninfo
    from service.jobs.tasks import JobContext, bind
    from service.wiring import build_relayer_clients, load_settings, wire
    from service.workflows.jobs import PgJobQueue
    from service.workflows.publish import build_publisher

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    try:
        conninfo(settings.database_url)
    except ValueError as exc:
        print(f"omatrust worker: {exc}; with SQLite, `omatrust serve` runs the jobs in process", file=sys.stderr)
        return 2
    if not settings.rpc_url:
        print("omatrust worker: needs OMATRUST_RPC_URL (the embedded chain lives inside `omatrust serve`)",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.concurrency < 1:
        print("omatrust worker: --concurrency must be >= 1", file=sys.stderr)
        return 2
    from service.store.jobqueue import slot_digits

    wired = wire(settings, publisher=False)
    try:
        rt = wired.runtime
        clients = build_relayer_clients(settings, eas=rt.eas)
        publishers = {}
        for slot, (address, client) in enumerate(clients.items()):  # a key's slot is its position in the list
            digits = slot_digits(slot=slot, relayers=len(clients))
            publishers[address] = build_publisher(rt=rt, client=client, digits=digits,
                                                  batch_size=settings.publish_batch_size)  # fmt: skip
        if not publishers:
            logging.getLogger("omatrust").warning("no relayer key configured: this worker publishes nothing")
        bind(JobContext(runtime=rt, publishers=publishers, linger=settings.publish_linger_seconds,
                        stalled_seconds=settings.worker_stalled_seconds,
                        queue=PgJobQueue(engine=rt.engine)))  # fmt: skip
        app = build_app(settings)
        app.run_worker(
            queues=[q.strip() for q in args.queues.split(",") if q.strip()],
            concurrency=args.concurrency,
            name=args.name,
            update_heartbeat_interval=settings.worker_heartbeat_seconds,
            stalled_worker_timeout=settings.worker_stalled_seconds,
            fetch_job_polling_interval=1.0,
            delete_jobs="successful",
        )
    finally:
        wired.close()
    return 0

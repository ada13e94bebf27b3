"""The Procrastinate app of a worker process: the blueprint's tasks plus periodic tasks whose intervals come from
settings (so they are registered here, not at import time)."""

from __future__ import annotations

from procrastinate import App, PsycopgConnector

from service.config import Settings
from service.jobs import tasks
from service.store.jobqueue import NAMESPACE


def conninfo(database_url: str) -> str:
    """libpq connection string for a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://…`` → ``postgresql://…``).

    Raises:
        ValueError: not a PostgreSQL URL (the task queue needs PostgreSQL).
    """
    scheme, sep, rest = database_url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        raise ValueError("the task queue needs PostgreSQL (OMATRUST_DATABASE_URL=postgresql+psycopg://…)")
    return "postgresql://" + rest


def _every(seconds: int) -> str:
    """A 6-field cron (seconds last, Procrastinate's form) firing every ``seconds`` (1-59) seconds."""
    seconds = max(1, min(59, seconds))
    return f"* * * * * */{seconds}"


def build_app(settings: Settings) -> App:
    """The worker's app: publish/sync tasks and the periodic ticks and stalled-job sweep.

    Raises:
        ValueError: the database is not PostgreSQL.
    """
    app = App(connector=PsycopgConnector(conninfo=conninfo(settings.database_url)))
    app.add_tasks_from(tasks.blueprint, namespace=NAMESPACE)
    app.periodic(cron=_every(settings.publish_tick_seconds), periodic_id="publish")(
        app.task(name="publish_tick", queue="periodic")(_publish_tick)
    )
    app.periodic(cron=_every(max(1, int(settings.worker_stalled_seconds // 2))), periodic_id="sweep")(
        app.task(name="sweep_stalled", queue="periodic", pass_context=True)(tasks.sweep_stalled)
    )
    if settings.sync_interval_seconds > 0:
        app.periodic(cron=_every(settings.sync_interval_seconds), periodic_id="sync")(
            app.task(name="sync_tick", queue="periodic")(_sync_tick)
        )
    return app


def _publish_tick(timestamp: int) -> None:
    tasks.publish_tick()


def _sync_tick(timestamp: int) -> None:
    tasks.sync_tick()

"""Alembic migrations, driven programmatically (``omatrust db upgrade`` and the app factory)."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic ``include_name``: the task queue's objects (``procrastinate_*``, migration 0004) are installed from
    Procrastinate's own schema and not modelled in ``service.store.tables``; comparisons leave them out."""
    return not (name or "").startswith("procrastinate_")


def alembic_config(*, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("service.store") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(*, engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Idempotent."""
    cfg = alembic_config(url=engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

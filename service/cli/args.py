"""Arguments shared by the commands: a service DID read exactly as the API reads it, and the database the way
``serve`` finds it (``OMATRUST_DATABASE_URL``, default ``./omatrust.db``) — never silently created empty."""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy.engine import make_url

from service.dids import normalize_did, parse_subject
from service.errors import MalformedInput


def service_did(value: str) -> str:
    """argparse ``type=`` for a service DID: ``did:web:host:8443`` is read as ``did:web:host%3A8443`` and the result
    normalized (host lower-cased, ``www.`` dropped) like ``/v1/services/{did}``. A non-DID is a usage error (2).

    Raises:
        argparse.ArgumentTypeError: not a DID.
    """
    try:
        return normalize_did(parse_subject(value.strip()))
    except MalformedInput as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a service DID ({exc.detail})") from exc


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL when it does not exist (a read command must not create an empty database);
    None for an existing file, an in-memory database or another engine."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database)
    return None if path.exists() else path.resolve()


def database_problem(url: str, *, command: str) -> str | None:
    """A usage message when ``url`` names a SQLite file that is not there, else None."""
    missing = missing_sqlite_file(url)
    if missing is None:
        return None
    return (
        f"omatrust {command}: no database at {missing} — run it where `omatrust serve` runs (the default is "
        "./omatrust.db in the current directory) or set OMATRUST_DATABASE_URL"
    )

"""The embedded chain's file: py-evm's key-value database (``eth.abc.DatabaseAPI``) in one SQLite file.

Why SQLite and not LMDB: the standard library has it (no new dependency, no map size to choose up front), it is the
same file format as the default store, and one SQLite transaction per **mined block** gives exactly the atomicity a
chain needs — a block, its receipts, its state trie nodes and the new canonical head become durable together or not
at all (a ``kill -9`` mid-block loses that block, like a node losing its mempool). py-evm reads trie nodes by hash
one at a time; a primary-key look-up in a ``WITHOUT ROWID`` table costs a few microseconds, far below the EVM's own
cost per transaction, so LMDB's faster reads would not show.

Writes are buffered in memory (reads see them) and written by :meth:`SqliteKeyValue.flush`, which the embedded
backend calls after every mined block. ``meta`` holds a few named values (e.g. ``ready`` once the chain is fully
set up). Not thread-safe: the embedded chain serializes every use under its lock.

One process writes a chain file: the first to open it holds an exclusive ``flock`` on ``<file>.lock`` until it
exits. Another process opens it **read-only** (``writable`` False): it sees the chain as it was when opened and
refuses to mine (``ChainFileBusy`` on flush), so two writers can never fork one file.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import IO

from eth.db.backends.base import BaseDB

_DELETED = None
CACHE_ENTRIES = 200_000  # ≈ 30–60 MB of trie nodes

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class ChainFileBusy(RuntimeError):
    """The chain file is written by another process: this one may only read it."""


class LookupKeyValue(BaseDB):
    """A py-evm key-value store whose membership test is a look-up (``__getitem__`` raising ``KeyError``)."""

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True


class SqliteKeyValue(LookupKeyValue):
    """py-evm ``DatabaseAPI`` over a SQLite file; writes buffered until :meth:`flush`."""

    def __init__(self, *, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file: IO[str] | None = open(f"{self.path}.lock", "a+")  # noqa: SIM115 - held for the lifetime
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.writable = True
            self._lock_file.seek(0)
            self._lock_file.truncate()
            self._lock_file.write(str(os.getpid()))
            self._lock_file.flush()
        except BlockingIOError:
            self.writable = False
        # isolation_level=None: we open transactions ourselves (one per flush).
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a block the service was told about (receipt read → review "confirmed") survives a power cut too.
        self._conn.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._conn.execute(statement)
        self._pending: dict[bytes, bytes | None] = {}
        # Read cache: py-evm re-reads the same trie nodes many times per transaction. Safe because this process is
        # the only writer (writes go through ``_pending`` and land here on flush). Cleared when it grows too big.
        self._cache: dict[bytes, bytes] = {}

    # -- DatabaseAPI
    def __getitem__(self, key: bytes) -> bytes:
        if key in self._pending:
            value = self._pending[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        if len(self._cache) >= CACHE_ENTRIES:
            self._cache.clear()
        value = self._cache[bytes(key)] = bytes(row[0])
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[bytes(key)] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[bytes(key)] = _DELETED


    # -- durability
    def flush(self) -> None:
        """Write every buffered change in one transaction (durable on return). Raises sqlite3.Error."""
        if not self._pending:
            return
        if not self.writable:
            raise ChainFileBusy(f"{self.path} is written by another process (pid {self.writer_pid()}): read-only here")
        puts = [(k, v) for k, v in self._pending.items() if v is not _DELETED]
        deletes = [(k,) for k, v in self._pending.items() if v is _DELETED]
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", puts)
            self._conn.executemany("DELETE FROM kv WHERE k = ?", deletes)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        for k, v in self._pending.items():
            if v is _DELETED:
                self._cache.pop(k, None)
            elif len(self._cache) < CACHE_ENTRIES:
                self._cache[k] = v
            else:
                self._cache.pop(k, None)
        self._pending.clear()

    def discard(self) -> None:
        """Drop buffered writes (used when a fresh chain's setup failed before it was ever flushed)."""
        self._pending.clear()

    def get_meta(self, name: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, name: str, value: str) -> None:
        """Durable on return (flushes buffered chain data first, so ``meta`` never runs ahead of the chain)."""
        self.flush()
        self._conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def is_empty(self) -> bool:
        return self._conn.execute("SELECT 1 FROM kv LIMIT 1").fetchone() is None and not self._pending

    def wipe(self) -> None:
        """Delete everything (a file left half-created by an interrupted first start)."""
        self._pending.clear()
        self._cache.clear()
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.execute("DELETE FROM kv")
        self._conn.execute("DELETE FROM meta")
        self._conn.execute("COMMIT")

    def writer_pid(self) -> str:
        try:
            return Path(f"{self.path}.lock").read_text().strip() or "?"
        except OSError:
            return "?"

    def close(self) -> None:
        if self.writable:
            self.flush()
        self._pending.clear()
        self._conn.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

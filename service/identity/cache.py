"""A small thread-safe TTL cache with single-flight loading.

Only values a loader *returned* are cached; a loader that raises caches nothing (a failed DNS/HTTP look-up must be
retried next time, never remembered). Concurrent callers for the same key share one load — batch re-verification of
many reviews of one service must not fetch its did.json once per review.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass(slots=True)
class _Flight(Generic[V]):
    done: threading.Event = field(default_factory=threading.Event)
    value: V | None = None
    error: BaseException | None = None


class TtlCache(Generic[K, V]):
    """``get_or_load`` returns a fresh cached value or runs ``load`` once for all concurrent callers of a key."""

    def __init__(self, *, ttl: float, clock: Callable[[], float], max_entries: int = 4096) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: dict[K, tuple[float, V]] = {}
        self._flights: dict[K, _Flight[V]] = {}

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """Cached value of ``key`` if not expired, else ``load()`` (shared with concurrent callers).

        Raises:
            Whatever ``load`` raises (also to callers that were waiting on the same load); nothing is cached then.
        """
        with self._lock:
            hit = self._fresh(key)
            if hit is not None:
                return hit[1]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value  # type: ignore[return-value]
        try:
            value = load()
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            flight.value = value
            self.put(key, value)
            return value
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def put(self, key: K, value: V) -> None:
        """Store ``value`` for ``ttl`` seconds from now (evicting expired, then oldest, entries when full)."""
        with self._lock:
            now = self._clock()
            self._entries.pop(key, None)
            self._entries[key] = (now + self._ttl, value)
            if len(self._entries) > self._max_entries:
                for k in [k for k, (exp, _) in self._entries.items() if exp <= now]:
                    del self._entries[k]
                while len(self._entries) > self._max_entries:
                    del self._entries[next(iter(self._entries))]

    def get(self, key: K) -> tuple[bool, V | None]:
        """(True, value) when a fresh entry exists, else (False, None). Never loads."""
        with self._lock:
            hit = self._fresh(key)
        return (True, hit[1]) if hit is not None else (False, None)

    def discard(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _fresh(self, key: K) -> tuple[float, V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry

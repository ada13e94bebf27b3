"""A bounded, thread-safe key → value cache whose entries expire (the per-process caches of the submit path)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlLru(Generic[K, V]):
    """key → value for ``ttl`` seconds after it was put; at most ``size`` entries (least recently used dropped).
    Thread-safe."""

    def __init__(self, *, ttl: float, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.size, self.clock = ttl, size, clock
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self.clock() - entry[1] > self.ttl:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._put(key, value, self.clock())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _put(self, key: K, value: V, at: float) -> None:  # with the lock held
        self._entries[key] = (value, at)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

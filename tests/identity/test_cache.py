"""TtlCache: expiry, single flight, failures shared with waiters but never stored, bounded size."""

from __future__ import annotations

import threading
import time

import pytest

from service.identity.cache import TtlCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_expiry() -> None:
    clock = FakeClock()
    cache: TtlCache[str, int] = TtlCache(ttl=10, clock=clock)
    calls: list[int] = []

    def load() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get_or_load("k", load) == 1
    clock.now = 9.99
    assert cache.get_or_load("k", load) == 1
    clock.now = 10
    assert cache.get_or_load("k", load) == 2
    assert cache.get("k") == (True, 2)
    cache.discard("k")
    assert cache.get("k") == (False, None)


def test_none_is_a_cacheable_value() -> None:
    cache: TtlCache[str, None] = TtlCache(ttl=10, clock=FakeClock())
    calls: list[int] = []
    assert cache.get_or_load("k", lambda: calls.append(1)) is None
    assert cache.get_or_load("k", lambda: calls.append(1)) is None
    assert calls == [1]


def test_single_flight_and_failures() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=10, clock=time.monotonic)
    started = threading.Event()
    calls: list[int] = []

    def slow_failure() -> int:
        calls.append(1)
        started.set()
        time.sleep(0.2)
        raise RuntimeError("down")

    errors: list[str] = []

    def call() -> None:
        try:
            cache.get_or_load("k", slow_failure)
        except RuntimeError as exc:
            errors.append(str(exc))

    first = threading.Thread(target=call)
    first.start()
    started.wait(5)
    others = [threading.Thread(target=call) for _ in range(5)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(5)
    assert calls == [1]
    assert errors == ["down"] * 6
    assert cache.get("k") == (False, None)
    assert cache.get_or_load("k", lambda: 7) == 7  # a later call loads afresh


def test_size_bound_evicts_oldest() -> None:
    cache: TtlCache[int, int] = TtlCache(ttl=10, clock=FakeClock(), max_entries=3)
    for i in range(5):
        cache.put(i, i)
    assert [cache.get(i)[0] for i in range(5)] == [False, False, True, True, True]


def test_loader_exception_propagates_to_the_leader() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=10, clock=FakeClock())
    with pytest.raises(ZeroDivisionError):
        cache.get_or_load("k", lambda: 1 // 0)

"""Caps on look-ups in flight (per host and overall), the JSON value budget and the NUL guard, at unit level and
against a real stalling host on loopback."""

from __future__ import annotations

import threading
import time

import pytest

from service.api.limits import json_values_over
from service.domain import Reason
from service.errors import FetchFailed, LookupSaturated
from service.identity.fetcher import SafeFetcher
from service.lookup_limits import LookupLimiter
from tests.hostile.conftest import MisbehavingHost


def test_per_host_cap_refuses_at_once_and_frees_on_exit() -> None:
    limiter = LookupLimiter(total=10, per_host=2, wait=0.0)
    with limiter.slot(host="a.example"), limiter.slot(host="A.example"):
        with pytest.raises(LookupSaturated) as info, limiter.slot(host="a.example"):
            pass
        assert info.value.reason is Reason.LOOKUP_SATURATED
        with limiter.slot(host="b.example"):  # another host is not affected
            assert limiter.in_flight() == 3
    assert limiter.in_flight() == 0
    with limiter.slot(host="a.example"):
        assert limiter.in_flight("a.example") == 1


def test_global_cap_and_bounded_wait() -> None:
    limiter = LookupLimiter(total=2, per_host=2, wait=0.3)
    release = threading.Event()
    holding = threading.Barrier(3)

    def hold(host: str) -> None:
        with limiter.slot(host=host):
            holding.wait(5)
            release.wait(5)

    threads = [threading.Thread(target=hold, args=(h,)) for h in ("a", "b")]
    for t in threads:
        t.start()
    holding.wait(5)
    started = time.monotonic()
    with pytest.raises(LookupSaturated, match="overall"), limiter.slot(host="c"):
        pass
    assert 0.25 < time.monotonic() - started < 2.0  # waited its bounded time, then gave up
    release.set()
    for t in threads:
        t.join(5)
    with limiter.slot(host="c"):  # freed
        pass


def test_fetches_to_a_stalling_host_are_capped() -> None:
    limiter = LookupLimiter(total=8, per_host=1, wait=0.0)
    with MisbehavingHost(mode="stall") as host:
        fetcher = SafeFetcher(timeout=2.0, insecure_hosts=frozenset({host.host}), limiter=limiter)
        outcomes: list[Reason] = []

        def fetch() -> None:
            try:
                fetcher.fetch(url=f"http://{host.host}/.well-known/did.json")
            except FetchFailed as exc:
                outcomes.append(exc.reason)
            except LookupSaturated as exc:
                outcomes.append(exc.reason)

        first = threading.Thread(target=fetch)
        first.start()
        assert host.connected.wait(5)
        started = time.monotonic()
        fetch()  # the host already has its one fetch in flight
        assert time.monotonic() - started < 0.5
        first.join(5)
    assert sorted(outcomes) == sorted([Reason.LOOKUP_SATURATED, Reason.FETCH_TIMEOUT])
    assert host.max_concurrent == 1


def test_json_value_budget_counts_values_not_bytes() -> None:
    assert not json_values_over(b'{"a": "' + b"," * 50_000 + b'"}', 100)  # commas inside a string do not count
    assert json_values_over(b"[" + b"0," * 200 + b"0]", 100)
    assert not json_values_over(b"[" + b"0," * 98 + b"0]", 100)

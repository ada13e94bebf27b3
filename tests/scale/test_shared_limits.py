"""Rate limits shared across API processes through Redis (``OMATRUST_REDIS_URL``, the ``limits`` library)."""

from __future__ import annotations

import uuid

from service.api.shared_limits import SharedRateLimiter
from service.config import Settings
from service.wiring import build_rate_limit_strategy

REDIS_URL = "redis://127.0.0.1:6379/0"


def _limiter(url: str, namespace: str, per_minute: int = 3) -> SharedRateLimiter:
    strategy = build_rate_limit_strategy(Settings(redis_url=url))
    return SharedRateLimiter(strategy=strategy, per_minute=per_minute, namespace=namespace)


def test_two_processes_share_one_budget_per_attester() -> None:
    namespace = f"test:{uuid.uuid4().hex}"
    first, second = _limiter(REDIS_URL, namespace), _limiter(REDIS_URL, namespace)  # two API processes' limiters
    attester = "0x" + "ab" * 20
    assert [first.acquire(attester), second.acquire(attester), first.acquire(attester)] == [0.0, 0.0, 0.0]
    wait = second.acquire(attester)
    assert 1.0 <= wait <= 60.0  # the fourth hit in the minute is refused whichever process takes it
    assert first.acquire("0x" + "cd" * 20) == 0.0  # other attesters have their own budget


def test_no_redis_url_means_per_process_limits() -> None:
    assert build_rate_limit_strategy(Settings(redis_url="")) is None


def test_unreachable_redis_allows_the_request() -> None:
    limiter = _limiter("redis://127.0.0.1:1/0", f"test:{uuid.uuid4().hex}", per_minute=1)
    assert [limiter.acquire("0x" + "ab" * 20) for _ in range(3)] == [0.0, 0.0, 0.0]

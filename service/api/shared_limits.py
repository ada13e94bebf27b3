"""Per-attester rate limits shared by every API process, on Redis through the ``limits`` library.

Same interface as ``service.api.limits.RateLimiter`` (``acquire(key) -> seconds to wait``, 0 = allowed) and the
same budget (``RATE_LIMIT_PER_MINUTE`` per attester), counted in one place for all processes with a sliding
window counter. When Redis cannot be reached the request is allowed (logged): the limit protects capacity, it is
not a correctness rule, and refusing every submission because a cache is down would be worse.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from limits import RateLimitItemPerMinute

log = logging.getLogger(__name__)


class SharedRateLimiter:
    def __init__(self, *, strategy: Any, per_minute: int, namespace: str = "omatrust:attester") -> None:
        self.strategy = strategy  # a limits.strategies.RateLimiter over a shared storage (built in service.wiring)
        self.item = RateLimitItemPerMinute(max(per_minute, 1))
        self.namespace = namespace

    def acquire(self, key: str) -> float:
        """Take one hit for ``key``. Returns 0 when allowed, else the seconds until the window frees one."""
        try:
            if self.strategy.hit(self.item, self.namespace, key):
                return 0.0
            stats = self.strategy.get_window_stats(self.item, self.namespace, key)
        except Exception as exc:  # the storage is down: allow, and say so
            log.warning("shared rate limit unavailable, request allowed: %s", exc)
            return 0.0
        return max(1.0, float(stats.reset_time) - time.time())

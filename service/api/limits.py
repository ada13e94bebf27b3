"""Request bounds: a body-size cap (checked before the body is read) and a per-key token bucket."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.proofs.jsonstrict import MAX_DEPTH, too_deep


def json_too_deep(body: bytes) -> bool:
    """True when a JSON body nests deeper than ``MAX_DEPTH``.

    Why: eth-account (via py_ecc) raises the interpreter's recursion limit to 100000, after which ``json.loads`` of
    ``[[[[…`` overflows the C stack and kills the process instead of raising. Bodies are checked before parsing.
    """
    return too_deep(body.decode("latin-1"))


class BodySizeLimit:
    """ASGI middleware: 413 problem+json when the body exceeds ``max_bytes`` (by header or while streaming), and
    422 when a JSON body nests deeper than ``MAX_DEPTH`` (checked on the buffered body before any parsing)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _too_large(send, self.max_bytes)
                return
        # Buffer the (size-capped) body, check it, then replay it to the app as one message.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await _too_large(send, self.max_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_too_deep(body):
            await _send_problem(send, 422, "json-too-deep", f"JSON nested deeper than {MAX_DEPTH} levels")
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _too_large(send: Send, max_bytes: int) -> None:
    await _send_problem(send, 413, "body-too-large", f"at most {max_bytes} bytes")


async def _send_problem(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps(
        {"type": f"urn:omatrust:problem:{code}", "title": "Request body refused", "status": status, "code": code,
         "detail": detail}
    ).encode()  # fmt: skip
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """Token bucket per key (e.g. attester), in process memory, bounded in size.

    Per-process by design: behind several API processes the effective limit is N× — put a shared limiter (Redis)
    in front when that matters.
    """

    def __init__(
        self, *, per_minute: int, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(max(per_minute, 1))
        self.rate = self.capacity / 60.0
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one token. Returns 0 when allowed, else the seconds to wait before retrying."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

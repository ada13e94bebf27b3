"""Request bounds: a body-size cap (checked before the body is read), JSON depth and value budgets, refusal of
values no database can store in paths and queries, the verification bulkhead, and a per-key token bucket."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.proofs.jsonstrict import MAX_DEPTH, too_deep

_JSON_TOKEN_RE = re.compile(rb'"(?:[^"\\]|\\.)*"|[,\[{]')


def json_values_over(body: bytes, limit: int) -> bool:
    """True when a JSON body holds more than ``limit`` values. Every value but the first follows a ``,`` or an
    opening bracket, so counting those (outside strings) bounds the count; skipped when the body is too small."""
    if body.count(b",") + body.count(b"[") + body.count(b"{") < limit:
        return False
    count = 1
    for match in _JSON_TOKEN_RE.finditer(body):
        if match.group()[0] != 0x22:  # not a string
            count += 1
            if count > limit:
                return True
    return False


def json_too_deep(body: bytes) -> bool:
    """True when a JSON body nests deeper than ``MAX_DEPTH``.

    Why: eth-account (via py_ecc) raises the interpreter's recursion limit to 100000, after which ``json.loads`` of
    ``[[[[…`` overflows the C stack and kills the process instead of raising. Bodies are checked before parsing.
    """
    return too_deep(body.decode("latin-1"))


class BodySizeLimit:
    """ASGI middleware: 413 problem+json when the body exceeds ``max_bytes`` (by header or while streaming), and
    422 when a JSON body nests deeper than ``MAX_DEPTH`` or holds more than ``max_values`` values (checked on the
    buffered body before any parsing)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_values: int = 20_000) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_values = max_values

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
        if json_values_over(body, self.max_values):
            await _send_problem(send, 422, "json-too-many-values", f"JSON holds more than {self.max_values} values")
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


async def _send_problem(
    send: Send, status: int, code: str, detail: str, *, title: str = "Request body refused",
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:  # fmt: skip
    correlation_id = uuid.uuid4().hex
    body = json.dumps(
        {"type": f"urn:omatrust:problem:{code}", "title": title, "status": status, "code": code,
         "detail": detail, "instance": f"urn:omatrust:request:{correlation_id}"}
    ).encode()  # fmt: skip
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
                        (b"x-correlation-id", correlation_id.encode()), *headers],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class EdgeGuard:
    """ASGI middleware: 400 ``value-not-storable`` for a NUL (``%00``) anywhere in the path or query string.

    Path DIDs, review ids and cursors end up in SQL parameters; PostgreSQL cannot hold NUL in text, so such a
    request would otherwise fail inside the database (a 500). Nothing legitimate carries NUL in a URL.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = (scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogatepass")) + b"?"
            raw += scope.get("query_string", b"")
            lowered = raw.lower()
            if b"%00" in lowered or b"\x00" in raw:
                await _send_problem(send, 400, "value-not-storable", "the URL holds a NUL character",
                                    title="Request refused")  # fmt: skip
                return
        await self.app(scope, receive, send)


class VerificationBulkhead:
    """ASGI middleware: at most ``max_concurrent`` verification requests run at once and ``max_queue`` more wait
    (without holding a thread); past that, 503 ``overloaded`` with ``Retry-After`` at once.

    Verification (``routes``: method + path) fetches did:web documents, queries DNS and the chain: a flood of
    requests naming stalling hosts must not occupy the worker threads that liveness, readiness and reads use.
    Those run on the default pool (``api_threads``), of which verification can hold at most ``max_concurrent``.
    """

    def __init__(
        self, app: ASGIApp, *, routes: Collection[tuple[str, str]], max_concurrent: int, max_queue: int
    ) -> None:
        self.app = app
        self.routes = frozenset(routes)
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.admitted = 0  # running + waiting; only touched on the event loop
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"].rstrip("/")) not in self.routes:
            await self.app(scope, receive, send)
            return
        if self.admitted >= self.max_concurrent + self.max_queue:
            await _send_problem(send, 503, "overloaded", "too many verifications in progress; retry",
                                title="A check could not run; try again later",
                                headers=((b"retry-after", b"1"),))  # fmt: skip
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrent)
        self.admitted += 1
        try:
            async with self._slots:
                await self.app(scope, receive, send)
        finally:
            self.admitted -= 1


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

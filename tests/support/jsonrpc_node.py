"""A loopback JSON-RPC endpoint for unit tests of client code: each request (single, not batched) is answered by
``answer(method, params)``, which returns a JSON-RPC response body minus ``jsonrpc``/``id``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str, list[Any]], dict[str, Any]]


NO_BATCHES = (200, {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "no batches"}})


@contextmanager
def jsonrpc_node(
    answer: Answer, posts: list[Any] | None = None, *, batch_refusal: tuple[int, Any] | None = None
) -> Iterator[str]:
    """Serve ``answer`` on 127.0.0.1 for the duration of the block; yields the URL. A JSON-RPC batch is answered
    call by call (in reverse order: a batch answer's order is not its calls' order). ``posts``: each request body
    received, appended. ``batch_refusal``: (HTTP status, JSON body) every batch is answered with instead, as nodes
    and providers that refuse batches do (``NO_BATCHES``: one error object)."""

    posts = [] if posts is None else posts

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))

            def one(r: dict[str, Any]) -> dict[str, Any]:
                return {"jsonrpc": "2.0", "id": r["id"], **answer(r["method"], r["params"])}

            posts.append(request)
            status = 200
            if isinstance(request, list) and batch_refusal is not None:
                status, reply = batch_refusal
            elif isinstance(request, list):
                reply = [one(r) for r in reversed(request)]  # a batch answer's order is not its calls' order
            else:
                reply = one(request)
            body = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

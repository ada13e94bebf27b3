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


@contextmanager
def jsonrpc_node(answer: Answer) -> Iterator[str]:
    """Serve ``answer`` on 127.0.0.1 for the duration of the block; yields the URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            reply = {"jsonrpc": "2.0", "id": request["id"], **answer(request["method"], request["params"])}
            body = json.dumps(reply).encode()
            self.send_response(200)
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

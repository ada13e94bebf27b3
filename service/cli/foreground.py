"""An ASGI app served in the foreground of a command (``omatrust merchant``, ``omatrust facilitator``): uvicorn in
a thread, one JSON line printed once it listens, until the server stops or Ctrl-C."""

from __future__ import annotations

import json
import threading
from typing import Any


def serve_foreground(app: Any, *, host: str, port: int, ready: dict[str, Any]) -> int:
    """Serve ``app`` on ``host``:``port``; print ``ready`` as one JSON line when it listens. Returns 0 when the server
    stopped (or Ctrl-C), 1 when it could not start (e.g. the port is in use). Raises nothing of its own."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.05)
    if not server.started:
        return 1
    print(json.dumps(ready), flush=True)
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(10)
    return 0

"""schemathesis against the service's own OpenAPI, over loopback HTTP to a real uvicorn server: no 5xx and every
response conforms to the documented schema (status codes, content types, bodies)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from service.api.app import create_app
from service.config import Settings
from service.wiring import Wired


@pytest.fixture
def live_server(wired: Wired) -> Iterator[str]:
    app = create_app(Settings(rate_limit_per_minute=100_000), wired=wired)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors_or_schema_violations(live_server: str, tmp_path: Path) -> None:
    assert httpx.get(f"{live_server}/healthz").status_code == 200
    exe = shutil.which("schemathesis") or shutil.which("st")
    cmd = [exe] if exe else [sys.executable, "-m", "schemathesis.cli"]
    result = subprocess.run(
        [
            *cmd, "run", f"{live_server}/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance,response_headers_conformance",
            "--max-examples", "40", "--seed", "402", "--request-timeout", "20",
            "--exclude-path", "/metrics",  # text exposition, not JSON
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]

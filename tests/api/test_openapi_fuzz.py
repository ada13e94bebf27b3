"""schemathesis against the service's own OpenAPI, over loopback HTTP to a real uvicorn server: every check
(no 5xx, status codes / content types / bodies / headers as documented, schema-valid requests accepted and
schema-invalid ones refused), every phase including stateful sequences, at least ``EXAMPLES`` cases per operation.

Runs on PostgreSQL in the README's test command (``OMATRUST_TEST_DB=postgres``). No generated name ever leaves the
machine: did:web names resolve only to the loopback test host, DNS goes to the loopback server.
"""

from __future__ import annotations

import dataclasses
import os
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
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.wiring import Wired
from tests.support.didweb_host import DidWebHost

EXAMPLES = int(os.environ.get("OMATRUST_FUZZ_EXAMPLES", "300"))


def _loopback_names(host: str, _port: int) -> list[str]:
    if host in ("localhost", "127.0.0.1"):
        return ["127.0.0.1"]
    raise OSError(f"{host}: only loopback names resolve in this test")


@pytest.fixture
def live_server(wired: Wired, didweb: DidWebHost) -> Iterator[str]:
    fetcher = SafeFetcher(timeout=2.0, insecure_hosts=frozenset({didweb.host}), ca_file=didweb.ca_pem_path,
                          resolve=_loopback_names)  # fmt: skip
    runtime = dataclasses.replace(wired.runtime, resolver=DidResolver(fetcher=fetcher, ttl=0))
    app = create_app(Settings(rate_limit_per_minute=10**9), wired=Wired(runtime=runtime, publisher=wired.publisher))
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
def test_schemathesis_all_checks_all_phases(live_server: str, tmp_path: Path) -> None:
    assert httpx.get(f"{live_server}/healthz").status_code == 200
    exe = shutil.which("schemathesis") or shutil.which("st")
    cmd = [exe] if exe else [sys.executable, "-m", "schemathesis.cli"]
    here = Path(__file__).resolve().parent
    cmd += ["--config-file", str(here / "schemathesis.toml")]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.st_hooks", "PYTHONPATH": str(here.parents[1])}
    started = time.monotonic()
    result = subprocess.run(
        [
            *cmd, "run", f"{live_server}/openapi.json",
            "--checks", "all",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", str(EXAMPLES), "--seed", "402", "--request-timeout", "20",
            "--exclude-path", "/metrics",  # Prometheus text exposition, not JSON
            "--suppress-health-check", "too_slow",
        ],
        capture_output=True,
        text=True,
        timeout=3000,
        cwd=tmp_path,
        env=env,
    )  # fmt: skip
    print(f"schemathesis: {EXAMPLES} examples per operation, {time.monotonic() - started:.0f}s")
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-2000:]

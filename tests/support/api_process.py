"""``omatrust serve`` as a real process on 127.0.0.1 (uvicorn), ready when ``/readyz`` answers 200, terminated on exit.

    with serving(env, cwd) as base:   # base = "http://127.0.0.1:<port>"
        httpx.get(f"{base}/v1/...")
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.anvil import free_port

OMATRUST = [sys.executable, "-m", "service.cli.main"]


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any OMATRUST_ setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMATRUST_")}
    env.update(settings)
    return env


@contextmanager
def serving(env: dict[str, str], cwd: Path, *, name: str = "serve", ready_timeout: float = 60.0) -> Iterator[str]:
    """Start ``omatrust serve`` on a free port with ``env``; its log goes to ``cwd/<name>.log``."""
    port = free_port()
    log_path = cwd / f"{name}.log"
    log = log_path.open("w")
    proc = subprocess.Popen([*OMATRUST, "serve", "--port", str(port)], env=env, cwd=cwd, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{name} did not become ready: " + log_path.read_text()[-3000:]
            time.sleep(0.1)  # polling a readiness probe, bounded by the deadline
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()

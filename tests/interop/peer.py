"""Run the Node test peer (peer.mjs, the published x402 TS SDK) from Python."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support.fixtures import SDK_HOST_NAME

HERE = Path(__file__).resolve().parent
PEER = HERE / "peer.mjs"
SDK = HERE / "node_modules" / "@x402" / "extensions" / "package.json"
# SDK_HOST_NAME (see tests/support/fixtures.py) resolves only inside the peer, through its hosts map.
SDK_HOSTS = {SDK_HOST_NAME: "127.0.0.1"}


def node_ready() -> str | None:
    """None when node and the SDK are installed, else why not (for pytest.skip)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not SDK.exists():
        return "tests/interop/node_modules is missing (run npm ci in tests/interop)"
    return None


def run_peer(
    command: str,
    payload: dict[str, Any],
    *,
    ca_file: str | None = None,
    hosts: dict[str, str] | None = None,
    timeout: float = 120,
) -> dict[str, Any]:
    """``node peer.mjs <command>`` with ``payload`` on stdin → its JSON output.

    ``hosts`` maps host names to loopback addresses inside the peer only; ``ca_file`` is the test CA.
    """
    env = dict(os.environ)
    if ca_file:
        env["NODE_EXTRA_CA_CERTS"] = ca_file
    body = dict(payload)
    if hosts:
        body["hosts"] = hosts
    proc = subprocess.run(
        ["node", str(PEER), command],
        input=json.dumps(body).encode(),
        capture_output=True,
        cwd=HERE,
        env=env,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"peer {command} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def sdk_did(port: int, segment: str) -> str:
    """did:web on ``didweb.test:<port>`` with one path segment (document at ``/<segment>/did.json``)."""
    return f"did:web:{SDK_HOST_NAME}%3A{port}:{segment}"

"""A real anvil node for tests: fresh state, free loopback port, private HOME/cache, killed on exit.

Use one node per test module (anvil slows down as its state grows)::

    anvil_node = anvil_fixture()          # module-scoped pytest fixture

    def test_x(anvil_node): ...            # anvil_node.url, anvil_node.w3()

or directly ``with AnvilNode.start() as node: ...``. Tests are skipped with a clear message when the npm binary is
absent (``cd tests/interop && npm ci`` installs it).

History is pruned (anvil otherwise writes ~1 GB of state under HOME) but the last ``keep_states`` block states are
kept: with none kept, an ``eth_call`` at "latest" that races the next block finds its state gone and anvil answers
``BlockOutOfRangeError`` (foundry-rs/foundry#10709) — a flaky refusal in whatever test made the call. A module that
needs old states to be gone (reads at a past block must fail, as on most non-archive nodes) passes
``keep_states=None``: the bare ``--prune-history`` (anvil's own default count, which does not serve past blocks).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ANVIL_BIN = (
    Path(__file__).resolve().parents[1]
    / "interop"
    / "node_modules"
    / "@foundry-rs"
    / "anvil-linux-amd64"
    / "bin"
    / "anvil"
)

# anvil's default mnemonic ("test test ... junk"), account 0: funded with 10,000 ETH on every fresh node.
ANVIL_DEV_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(url: str, method: str, params: list[Any] | None = None, *, timeout: float = 2.0) -> Any:
    """One raw JSON-RPC call (no web3), raising RuntimeError on a JSON-RPC error."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # loopback only
        answer = json.loads(resp.read())
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


@dataclass
class AnvilNode:
    """A running anvil process. ``url`` is ``http://127.0.0.1:<port>``."""

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls, *, extra_args: tuple[str, ...] = (), ready_timeout: float = 10.0, keep_states: int | None = 256
    ) -> AnvilNode:
        """Start a fresh node and wait until it answers ``eth_chainId``. Skips the test when the binary is absent."""
        if not ANVIL_BIN.exists():
            pytest.skip(f"anvil binary not installed at {ANVIL_BIN} (run `npm ci` in tests/interop)")
        workdir = Path(tempfile.mkdtemp(prefix="anvil-"))
        port = free_port()
        env = {**os.environ, "HOME": str(workdir)}
        args = [
            str(ANVIL_BIN),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--prune-history",
            *([str(keep_states)] if keep_states is not None else []),
            "--cache-path",
            str(workdir / "cache"),
            "--silent",
            *extra_args,
        ]
        proc = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir
        )
        node = cls(process=proc, port=port, workdir=workdir)
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                node.stop()
                raise RuntimeError(f"anvil exited early with code {proc.returncode}")
            try:
                rpc(node.url, "eth_chainId", timeout=0.5)
                return node
            except OSError:
                if time.monotonic() > deadline:
                    node.stop()
                    raise RuntimeError("anvil did not become ready") from None
                time.sleep(0.05)

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): the port accepts connections but nothing answers (RPC timeouts)."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        return rpc(self.url, method, params)

    def stop(self) -> None:
        """Kill the node (this process only) and delete its temp dir. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process must be resumed to die cleanly
            self.process.kill()
        self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def anvil_fixture(
    *, scope: str = "module", extra_args: tuple[str, ...] = (), keep_states: int | None = 256
) -> Any:
    """A pytest fixture factory: ``anvil_node = anvil_fixture()`` at module level gives one node per module."""

    @pytest.fixture(scope=scope)  # type: ignore[call-overload]
    def _fixture() -> Iterator[AnvilNode]:
        with AnvilNode.start(extra_args=extra_args, keep_states=keep_states) as node:
            yield node

    return _fixture

"""Process-level hostile-input tests: real ``omatrust serve`` processes over loopback, with the misbehaving peers
(drip, stall) and bodies built in the tests themselves."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.anvil import free_port
from tests.support.dns_server import LoopbackDns

SERVE_START_TIMEOUT = 90.0


@dataclass
class ServeProcess:
    """A running ``omatrust serve`` (one process: API + publisher)."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def status_kib(self, key: str) -> int:
        """A ``/proc/<pid>/status`` figure in KiB (``VmRSS`` now, ``VmHWM`` peak)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{key} not in /proc status")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_serve(tmp_path: Path, *, database_url: str, env: dict[str, str] | None = None) -> ServeProcess:
    """Start ``omatrust serve`` on a free loopback port and wait (bounded) until ``/healthz`` answers."""
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    full_env = {
        **os.environ,
        "OMATRUST_DATABASE_URL": database_url,
        "OMATRUST_EMBEDDED_CHAIN_PATH": ":memory:",
        "OMATRUST_RPC_URL": "",
        "OMATRUST_RATE_LIMIT_PER_MINUTE": "1000000",
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, env=full_env,
        )  # fmt: skip
    serve = ServeProcess(process=process, url=f"http://127.0.0.1:{port}", log_path=log_path)
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n{serve.log()[-4000:]}")
        try:
            if httpx.get(f"{serve.url}/healthz", timeout=1.0).status_code == 200:
                return serve
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            serve.stop()
            raise AssertionError(f"serve did not answer within {SERVE_START_TIMEOUT}s:\n{serve.log()[-4000:]}")
        time.sleep(0.1)  # polling a readiness probe, bounded by the deadline above


@pytest.fixture(scope="module")
def loopback_dns() -> Iterator[LoopbackDns]:
    """Every DNS query of a serve process goes here (never to the machine's resolver)."""
    with LoopbackDns() as server:
        yield server


@dataclass
class MisbehavingHost:
    """A plain-TCP loopback server that accepts connections and then misbehaves per ``mode``:

    * ``stall``: reads the request and never answers (holds the connection until stopped);
    * ``drip``: sends ``payload`` (default: an HTTP response whose headers never end) one byte every ``interval``
      seconds.

    ``accepted`` counts connections, ``max_concurrent`` the most open at once; ``connected`` is set at the first.
    """

    mode: str
    interval: float = 0.3
    payload: bytes = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Pad: " + b"a" * 100_000
    port: int = 0
    accepted: int = 0
    open_now: int = 0
    max_concurrent: int = 0
    connected: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _sock: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> MisbehavingHost:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=512)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        if self._sock is not None:
            self._sock.close()

    @property
    def host(self) -> str:
        return f"localhost:{self.port}"

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            self.connected.set()
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            worker.start()
            self._threads.append(worker)

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self.open_now += 1
            self.max_concurrent = max(self.max_concurrent, self.open_now)
        try:
            self._misbehave(conn)
        finally:
            with self._lock:
                self.open_now -= 1

    def _misbehave(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(self.interval)
            if self.mode == "stall":
                while not self._stop.is_set():
                    try:
                        if conn.recv(4096) == b"":
                            return
                    except TimeoutError:
                        continue
                    except OSError:
                        return
                return
            for byte in self.payload:
                if self._stop.wait(self.interval):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

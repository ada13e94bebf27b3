"""A multi-process deployment on loopback for the scale tests: API processes and workers started with the same
commands docs/deploy.md gives (``omatrust db upgrade``, ``omatrust serve``, ``omatrust worker``), on one
PostgreSQL database and one anvil node. Every process is ours (killed by pid at the end)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from web3 import Web3
from web3.types import LogReceipt

from service.chain.calls import ATTESTED_TOPIC
from service.chain.embedded import EAS_ADDRESS
from service.cli.demo_kit import DidWebServer, Merchant
from tests.support.anvil import AnvilNode, free_port

PYTHON = [sys.executable, "-m", "service.cli.main"]


def wait_for(predicate: Any, *, timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` s pass (TimeoutError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Cluster:
    env: dict[str, str]
    workdir: Path
    apis: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def _spawn(self, name: str, args: list[str]) -> Proc:
        log = self.workdir / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen([*PYTHON, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return Proc(name=name, popen=popen, log=log)

    def upgrade(self) -> None:
        subprocess.run([*PYTHON, "db", "upgrade"], env=self.env, check=True, capture_output=True, timeout=120)

    def start_api(self) -> str:
        port = free_port()
        proc = self._spawn(f"api{len(self.apis)}", ["serve", "--port", str(port), "--log-level", "warning"])
        self.apis.append(proc)
        url = f"http://127.0.0.1:{port}"
        self.urls.append(url)
        return url

    def start_worker(self, *args: str) -> Proc:
        proc = self._spawn(f"worker{len(self.workers)}", ["worker", "--concurrency", "2", *args])
        self.workers.append(proc)
        return proc

    def wait_ready(self, timeout: float = 120.0) -> None:
        for url, proc in zip(self.urls, self.apis, strict=True):
            wait_for(lambda u=url, p=proc: _healthy(u, p), timeout=timeout, what=f"{url}/healthz", every=0.2)

    def running(self, task: str) -> Proc | None:
        """A live worker that is inside a ``task`` job (publish, reverify) right now: its log shows more starts of
        that task than ends (a worker runs several jobs at once, so the last mark alone says nothing)."""
        for proc in self.workers:
            if proc.popen.poll() is not None:
                continue
            marks = re.findall(task + r"\[[^\]]*\] (start|done)", proc.text())
            if marks.count("start") > marks.count("done"):
                return proc
        return None

    def publishing_worker(self) -> Proc | None:
        return self.running("publish")

    def print_logs(self, *, tail: int = 4000) -> None:
        """Print the end of every process's log (called when a test fails, for the report)."""
        for proc in [*self.apis, *self.workers]:
            print(f"==== {proc.name}\n{proc.text()[-tail:]}")

    def stop(self) -> None:
        procs = [p.popen for p in [*self.apis, *self.workers]]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def _healthy(url: str, proc: Proc) -> bool:
    if proc.popen.poll() is not None:
        raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.text()[-3000:]}")
    try:
        return httpx.get(url + "/healthz", timeout=2).is_success
    except httpx.HTTPError:
        return False


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMATRUST_")}
    env.update(extra)
    return env


def served_merchant(server: DidWebServer) -> Merchant:
    """A new merchant whose did:web document ``server`` serves (plain HTTP on loopback)."""
    merchant = Merchant(host=f"localhost:{server.port}", scheme="http")
    server.publish(merchant)
    return merchant


def node_time(node: AnvilNode) -> int:
    """The timestamp of the node's latest block."""
    return int(node.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


def attested_logs(w3: Web3, *, schema: str | None = None) -> list[LogReceipt]:
    """Every EAS ``Attested`` event on the chain (of ``schema`` only, when given)."""
    topics: list[Any] = ["0x" + ATTESTED_TOPIC.hex()]
    if schema is not None:
        topics += [None, None, schema]
    return list(w3.eth.get_logs({"address": EAS_ADDRESS, "fromBlock": 0, "toBlock": "latest", "topics": topics}))

"""Secrets stay on the server: the RPC URL (API keys in its path, credentials in its authority) never reaches a
client when the node is down, and a malformed relayer key stops ``omatrust serve`` at start with a clear message
that does not echo the key."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from service.chain.deploy import bootstrap
from service.chain.embedded import EAS_ADDRESS, SCHEMA_REGISTRY_ADDRESS
from service.chain.rpc import connect
from service.config import Settings
from tests.hostile.conftest import start_serve
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode
from tests.support.dns_server import LoopbackDns

KEY_63 = "ab" * 31 + "c"  # one hex digit short: must never be read as some other account


class PathProxy:
    """Loopback HTTP proxy: POSTs to any path go to the node's root (anvil answers only ``/``)."""

    def __init__(self, upstream: str) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                answer = httpx.post(outer.upstream, content=body, headers={"content-type": "application/json"})
                self.send_response(answer.status_code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.upstream = upstream
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> PathProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.mark.parametrize(
    "key",
    [KEY_63, "0x" + KEY_63, "ab" * 33, "0x" + "zz" * 32, "0x" + "00" * 32, "", "0x"],
    ids=["63-hex", "0x-63-hex", "66-hex", "not-hex", "zero", "empty", "bare-0x"],
)
def test_malformed_relayer_keys_are_refused(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("OMATRUST_RELAYER_KEY", key)
    with pytest.raises(ValueError, match="OMATRUST_RELAYER_KEY must") as info:
        Settings()
    if key.removeprefix("0x"):
        assert key.removeprefix("0x") not in str(info.value)


@pytest.mark.parametrize("key", ["AB" * 32, "0x" + "ab" * 32, " 0X" + "ab" * 32 + "\n"])
def test_well_formed_relayer_keys_are_accepted_and_normalized(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("OMATRUST_RELAYER_KEY", key)
    settings = Settings()
    assert settings.relayer_key is not None
    assert settings.relayer_key.get_secret_value() == "0x" + "ab" * 32


def test_serve_refuses_to_start_with_a_63_digit_key(tmp_path: Path) -> None:
    env = {**os.environ, "OMATRUST_RELAYER_KEY": "0x" + KEY_63, "OMATRUST_DATABASE_URL": f"sqlite:///{tmp_path}/k.db",
           "OMATRUST_EMBEDDED_CHAIN_PATH": ":memory:"}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "service.cli.main", "serve", "--port", "0"], env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "OMATRUST_RELAYER_KEY must be exactly 32 bytes" in output
    assert KEY_63 not in output


@pytest.mark.anvil
def test_rpc_url_never_reaches_a_client_when_the_node_is_down(tmp_path: Path) -> None:
    secret_path, password = "v3/SECRETKEY0123456789", "hunter2pass"
    with AnvilNode.start() as node, LoopbackDns() as dns:
        bootstrap(w3=connect(rpc_url=node.url), eas_address=EAS_ADDRESS, registry_address=SCHEMA_REGISTRY_ADDRESS,
                  payer=Account.from_key(ANVIL_DEV_KEY_0))  # fmt: skip
        proxy = PathProxy(node.url).start()  # a node URL with a key in its path, as hosted providers give out
        rpc_url = f"http://user:{password}@127.0.0.1:{proxy.port}/{secret_path}"
        serve = start_serve(tmp_path, database_url=f"sqlite:///{tmp_path / 'rpc.db'}", env={
            "OMATRUST_RPC_URL": rpc_url, "OMATRUST_RELAYER_KEY": ANVIL_DEV_KEY_0,
            "OMATRUST_DNS_NAMESERVERS": dns.nameserver, "OMATRUST_EAS_ADDRESS": EAS_ADDRESS,
        })  # fmt: skip
        try:
            with httpx.Client(base_url=serve.url, timeout=60) as client:
                assert client.get("/readyz").status_code == 200
                proxy.stop()  # the node is now unreachable
                answers = [
                    client.get("/readyz"),
                    client.get("/v1/attestation-config"),
                    client.post("/v1/reviews/prepare", json={"attester": "0x" + "ab" * 20,
                                                             "review": {"subject": "did:web:a.example",
                                                                        "ratingValue": 4}}),
                ]  # fmt: skip
            log = serve.log()
        finally:
            serve.stop()
    readyz, config, prepare = answers
    assert readyz.status_code == 503
    assert (prepare.status_code, prepare.json()["code"]) == (503, "rpc-failed"), prepare.text
    assert config.status_code in (200, 503)
    for answer in answers:
        text = answer.text + str(dict(answer.headers))
        for secret in (secret_path, "SECRETKEY", password, f":{proxy.port}"):
            assert secret not in text, (answer.status_code, text)
    assert prepare.headers["x-correlation-id"] in log  # the server kept its side of the story, under that id

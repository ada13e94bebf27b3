"""``omatrust verify`` as a subprocess on SDK-made artifacts, against the real loopback did:web host and DNS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.domain import ArtifactKind
from service.proofs import proof_wrapper
from tests.interop.peer import node_ready, run_peer
from tests.interop.scenario import Keys, now, offer_spec, receipt_spec
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns

pytestmark = [pytest.mark.node, pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))]


def _omatrust(*args: str, env: dict[str, str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli.main", "verify", *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def _lines(proc: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def test_cli_verifies_sdk_artifacts(tmp_path: Path, host: DidWebHost, dns: LoopbackDns) -> None:
    keys, dns_keys, merchant = Keys.new(), Keys.new(), Keys.new()
    host.set_document(keys.document(host.did))
    dns.set_txt("_controllers.localhost", f"v=1;controller={dns_keys.kid('jwk', 'ES256K', '').split('#')[0]}")
    url = f"{host.base_url}/weather"
    specs = [
        receipt_spec(keys=keys, fmt="eip712", resource_url=url),
        receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="ES256", kid=keys.kid("web", "ES256", host.did)),
        receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="EdDSA", kid=keys.kid("key", "EdDSA", "")),
        offer_spec(
            keys=dns_keys,
            fmt="jws",
            resource_url=url,
            pay_to=merchant.evm_address,
            alg="ES256K",
            kid=dns_keys.kid("jwk", "ES256K", ""),
        ),
        receipt_spec(keys=merchant, fmt="eip712", resource_url=url),  # authorized by the offer's payTo
    ]
    made = run_peer("create", {"specs": specs})["artifacts"]
    lines = [json.dumps(m["artifact"]) for m in made]
    lines.insert(2, "{not json")
    lines.append(json.dumps(proof_wrapper(artifact=made[0]["artifact"], kind=ArtifactKind.RECEIPT)))
    path = tmp_path / "proofs.jsonl"
    path.write_text("\n".join(lines) + "\n")

    env = {"OMATRUST_DID_WEB_INSECURE_HOSTS": host.host, "OMATRUST_DNS_NAMESERVERS": dns.nameserver}
    proc = _omatrust("--jsonl", str(path), "--now", str(now() + 60), "--ca-file", host.ca_pem_path, env=env)
    assert proc.returncode == 0, proc.stderr
    out = _lines(proc)
    assert [o["index"] for o in out] == list(range(len(lines)))
    assert (out[2]["status"], out[2]["reason"]) == ("invalid", "malformed-json")

    verdicts = [o for o in out if o["index"] != 2]
    expected = [(m.get("signer") or m["kid"]) for m in made] + [made[0]["signer"]]
    assert [v["signer"] for v in verdicts] == expected
    assert [v["status"] for v in verdicts] == ["verified"] * 6
    assert [v["tier"] for v in verdicts] == [
        "did-document",
        "did-document",
        "did-document",
        "dns-txt",
        "offer-payto",
        "did-document",
    ]
    assert [v["kind"] for v in verdicts] == ["receipt", "receipt", "receipt", "offer", "receipt", "receipt"]
    assert all(v["signatureValid"] and v["replayKey"] for v in verdicts)
    assert verdicts[0]["replayKey"] == verdicts[-1]["replayKey"]  # the wrapper carries the same receipt
    # The development escape hatch fetches the listed host over plain http (as the SDK does for localhost).
    assert [r.tls for r in host.requests_for()] == [False]


def test_cli_without_escape_hatch_refuses_loopback_and_offline_needs_no_network(
    tmp_path: Path, host: DidWebHost
) -> None:
    keys = Keys.new()
    host.set_document(keys.document(host.did))
    url = f"{host.base_url}/weather"
    web, eip712 = run_peer(
        "create",
        {
            "specs": [
                receipt_spec(
                    keys=keys, fmt="jws", resource_url=url, alg="ES256", kid=keys.kid("web", "ES256", host.did)
                ),
                receipt_spec(keys=keys, fmt="eip712", resource_url=url),
            ]
        },
    )["artifacts"]
    document = json.dumps([web["artifact"], eip712["artifact"]]).encode()
    env = {
        "OMATRUST_DID_WEB_INSECURE_HOSTS": "",
        "OMATRUST_DNS_NAMESERVERS": "127.0.0.1:9",
        "OMATRUST_DNS_TIMEOUT_SECONDS": "0.5",
    }

    proc = _omatrust("-", env=env, stdin=document)
    assert proc.returncode == 0, proc.stderr
    first, _second = _lines(proc)
    assert (first["status"], first["reason"]) == ("indeterminate", "fetch-address-refused")

    proc = _omatrust("--offline", env=env, stdin=document)
    assert proc.returncode == 0, proc.stderr
    first, second = _lines(proc)
    assert (first["status"], first["reason"]) == ("indeterminate", "lookup-skipped")
    assert (second["status"], second["tier"], second["signer"]) == ("verified", None, eip712["signer"])
    assert host.requests == []  # neither run reached the host

"""``omatrust verify`` in-process (through the real dispatcher): input handling, output shape and exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from service.cli.main import main
from service.domain import ReceiptPayload
from service.proofs import sign_receipt_eip712, sign_receipt_jws
from tests.interop.keys import did_jwk, new_jwk

FIELDS = {"index", "kind", "format", "signatureValid", "signer", "status", "reason", "tier", "replayKey"}


@pytest.fixture(autouse=True)
def _no_network_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # A closed loopback port and short timeouts: any look-up these tests did not expect fails fast.
    monkeypatch.setenv("OMATRUST_DNS_NAMESERVERS", "127.0.0.1:9")
    monkeypatch.setenv("OMATRUST_DNS_TIMEOUT_SECONDS", "0.3")
    monkeypatch.setenv("OMATRUST_FETCH_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("OMATRUST_DID_WEB_INSECURE_HOSTS", "")


def _receipt() -> tuple[dict[str, Any], str]:
    account = Account.create()
    payload = ReceiptPayload(
        version=1,
        network="eip155:8453",
        resource_url="https://localhost:1/weather",
        payer="0x857b06519E91e3A54538791bDbb0E22373e36b66",
        issued_at=1_700_000_000,
        transaction="",
    )
    return sign_receipt_eip712(payload=payload, private_key=bytes(account.key)), account.address


def _jws_receipt() -> tuple[dict[str, Any], str]:
    jwk = new_jwk("EdDSA")
    kid = did_jwk(jwk)
    payload = ReceiptPayload(
        version=1,
        network="eip155:8453",
        resource_url="https://localhost:1/weather",
        payer="0x857b06519E91e3A54538791bDbb0E22373e36b66",
        issued_at=1_700_000_000,
        transaction="0xabc",
    )
    return sign_receipt_jws(payload=payload, private_jwk=jwk, kid=kid), kid


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    code = main(["verify", *argv])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_offline_array_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (eip712, address), (jws, kid) = _receipt(), _jws_receipt()
    path = tmp_path / "proofs.json"
    path.write_text(json.dumps([eip712, jws]))
    code, out, _ = _run(capsys, str(path), "--offline", "--now", "1700000100")
    assert code == 0
    assert [set(o) >= FIELDS for o in out] == [True, True]
    assert [(o["signer"], o["status"], o["tier"], o["format"]) for o in out] == [
        (address, "verified", None, "eip712"),
        (kid, "verified", None, "jws"),
    ]
    assert {o["checkedAt"] for o in out} == {1700000100}


def test_single_object_from_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    eip712, address = _receipt()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(eip712).encode())))
    code, out, _ = _run(capsys, "-", "--offline")
    assert code == 0
    assert [(o["kind"], o["signer"], o["signatureValid"]) for o in out] == [("receipt", address, True)]


def test_jsonl_bad_lines_are_verdicts_not_aborts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    eip712, _ = _receipt()
    tampered = {**eip712, "signature": eip712["signature"][:-2] + "1d"}  # v = 29
    path = tmp_path / "proofs.jsonl"
    path.write_text("\n".join([json.dumps(eip712), "{oops", "", "null", json.dumps(tampered), "[1,"]) + "\n")
    code, out, _ = _run(capsys, "--jsonl", str(path), "--offline")
    assert code == 0
    assert [(o["index"], o["status"], o["reason"]) for o in out] == [
        (0, "verified", None),
        (1, "invalid", "malformed-json"),
        (2, "invalid", "malformed-artifact"),  # `null` is JSON, just not an artifact
        (3, "invalid", "signature-bad-v"),
        (4, "invalid", "malformed-json"),
    ]


def test_online_verdict_without_reachable_service_is_indeterminate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # localhost is refused by the fetch policy (no escape hatch) and DNS is a closed port: authorization cannot be
    # checked. Exit status is still 0 — verdicts are output, not errors.
    eip712, address = _receipt()
    path = tmp_path / "one.json"
    path.write_text(json.dumps(eip712))
    code, out, _ = _run(capsys, str(path))
    assert code == 0
    assert (out[0]["status"], out[0]["reason"]) == ("indeterminate", "fetch-address-refused")
    assert out[0]["signer"] == address


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage"])
def test_unusable_input_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    code, out, err = _run(capsys, str(path))
    assert code == 2
    assert out == []
    assert str(path) in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, str(tmp_path / "absent.json"), "--jsonl")
    assert (code, out) == (2, [])
    assert "cannot read" in err


def test_help_documents_offline(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    text = capsys.readouterr().out
    assert "--offline" in text
    assert "lookup-skipped" in text

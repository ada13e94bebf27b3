"""contracts_abi/: extracted faithfully from the npm package, loadable as package data, provenance hashes true."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

from service.chain import abi

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "tests" / "interop" / "node_modules"
PACKAGE = NODE_MODULES / "@ethereum-attestation-service" / "eas-contracts"


@pytest.mark.skipif(not PACKAGE.exists(), reason="npm deps not installed (cd tests/interop && npm ci)")
def test_extract_abi_check_passes_against_node_modules() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "extract_abi.py"), "--check", str(NODE_MODULES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not PACKAGE.exists(), reason="npm deps not installed (cd tests/interop && npm ci)")
def test_extract_abi_check_detects_a_difference(tmp_path: Path) -> None:
    script = str(ROOT / "scripts" / "extract_abi.py")
    out = tmp_path / "abi"
    subprocess.run([sys.executable, script, "--write", str(NODE_MODULES), "--out", str(out)], check=True,
                   capture_output=True)
    (out / "EAS.abi.json").write_text("[]\n")
    result = subprocess.run([sys.executable, script, "--check", str(NODE_MODULES), "--out", str(out)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "EAS.abi.json" in result.stderr


def test_provenance_hashes_match_the_stored_files() -> None:
    text = files("contracts_abi").joinpath("PROVENANCE.md").read_text()
    assert "@ethereum-attestation-service/eas-contracts@1.9.0" in text
    rows = re.findall(r"`contracts_abi/([\w.]+)` \| `([0-9a-f]{64})`", text)
    assert {name for name, _ in rows} == {
        "EAS.abi.json", "EAS.bytecode.json", "SchemaRegistry.abi.json", "SchemaRegistry.bytecode.json",
        *(f"{c}.{kind}.json" for c in ("SignatureChecker", "FiatTokenV2_2", "FiatTokenProxy")
          for kind in ("abi", "bytecode")),
    }
    for name, digest in rows:
        assert hashlib.sha256(files("contracts_abi").joinpath(name).read_bytes()).hexdigest() == digest


def test_abi_has_the_functions_events_and_errors_we_use() -> None:
    eas = {(e["type"], e.get("name")) for e in abi.abi("EAS")}
    for name in ("attestByDelegation", "multiAttestByDelegation", "attest", "getNonce", "getDomainSeparator",
                 "getAttestation", "version", "getName", "getAttestTypeHash"):
        assert ("function", name) in eas
    assert ("event", "Attested") in eas
    attested = next(e for e in abi.abi("EAS") if e.get("name") == "Attested")
    assert [(i["name"], i["indexed"]) for i in attested["inputs"]] == [
        ("recipient", True), ("attester", True), ("uid", False), ("schemaUID", True)
    ]
    names = set(abi.error_selectors("EAS").values())
    assert {"DeadlineExpired", "InvalidSignature", "InvalidNonce", "InvalidSchema"} <= names
    # selector of InvalidSignature() computed by hand: keccak("InvalidSignature()")[:4]
    assert abi.error_selectors("EAS")[bytes.fromhex("8baa579f")] == "InvalidSignature"


def test_artifact_runtime_code_has_zeroed_immutables() -> None:
    """Why we never place deployedBytecode: the runtime code produced by the constructor differs from it."""
    from service.chain.deploy import predeploys

    registry, eas = predeploys(eas_address="0x4200000000000000000000000000000000000021",
                               registry_address="0x4200000000000000000000000000000000000020")
    assert len(eas.code) == len(abi.deployed_code("EAS"))
    assert eas.code != abi.deployed_code("EAS")
    assert registry.code != abi.deployed_code("SchemaRegistry")
    # the registry address is baked into EAS's runtime code as an immutable
    assert bytes.fromhex("4200000000000000000000000000000000000020") in eas.code
    # EIP1271Verifier._name = "EAS" is constructor-written storage (short string: bytes + 2*len)
    assert dict(eas.storage)[2] == int.from_bytes(b"EAS".ljust(31, b"\0") + bytes([6]), "big")

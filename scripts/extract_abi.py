#!/usr/bin/env python3
"""Extract the EAS + SchemaRegistry ABIs and bytecode from the npm package into contracts_abi/.

    python scripts/extract_abi.py --check [NODE_MODULES]   # exit 1 if contracts_abi/ differs from the package
    python scripts/extract_abi.py --write [NODE_MODULES]   # (re)write contracts_abi/

NODE_MODULES defaults to tests/interop/node_modules. For each contract <C> it writes ``<C>.abi.json`` (the ABI) and
``<C>.bytecode.json`` (creation ``bytecode`` + ``deployedBytecode``), plus ``PROVENANCE.md`` with the package version,
the source artifact path and sha256 of the source and of every stored file. Output is deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "@ethereum-attestation-service/eas-contracts"
EXPECTED_VERSION = "1.9.0"
CONTRACTS = ("SchemaRegistry", "EAS")
OUT_DIR = ROOT / "contracts_abi"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dump(obj: object) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=False, ensure_ascii=True) + "\n").encode()


def render(node_modules: Path) -> dict[str, bytes]:
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
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (args.node_modules / PACKAGE / "package.json").exists():
        print(f"{PACKAGE} not found under {args.node_modules}", file=sys.stderr)
        return 2
    expected = render(args.node_modules)
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

#!/usr/bin/env python3
"""Extract the ERC-8004 registry ABI entries the service uses into contracts_abi/erc8004/.

    python scripts/extract_erc8004_abi.py --write ABIS_DIR   # ABIS_DIR = abis/ of erc-8004/erc-8004-contracts
    python scripts/extract_erc8004_abi.py --check [ABIS_DIR]  # exit 1 on any difference

The source is the standard's published interface: ``abis/IdentityRegistry.json`` and ``abis/ReputationRegistry.json``
of github.com/erc-8004/erc-8004-contracts (no npm package ships them). Only the entries listed in ``USED`` are kept
(events the indexer decodes, functions the service and the CLI call), so an unrelated upstream change (UUPS admin
functions, errors) does not churn the files. ``--check`` without ABIS_DIR verifies the stored files against the sha256
recorded in PROVENANCE.md; tests/erc8004/test_contracts.py checks that our test contracts implement every entry.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "contracts_abi" / "erc8004"
UPSTREAM = "github.com/erc-8004/erc-8004-contracts"
UPSTREAM_COMMIT = "b9e466c250744a7e06b13dff9d3c2844ed64f825"
USED: dict[str, tuple[tuple[str, str], ...]] = {
    "IdentityRegistry": (
        ("event", "Registered"),
        ("event", "URIUpdated"),
        ("event", "Transfer"),
        ("function", "register"),
        ("function", "tokenURI"),
        ("function", "ownerOf"),
        ("function", "getApproved"),
        ("function", "isApprovedForAll"),
        ("function", "getAgentWallet"),
        ("function", "setAgentURI"),
    ),
    "ReputationRegistry": (
        ("event", "NewFeedback"),
        ("event", "FeedbackRevoked"),
        ("event", "ResponseAppended"),
        ("function", "giveFeedback"),
        ("function", "revokeFeedback"),
        ("function", "appendResponse"),
        ("function", "readFeedback"),
        ("function", "getSummary"),
        ("function", "getLastIndex"),
        ("function", "getClients"),
        ("function", "getIdentityRegistry"),
    ),
}


def _dump(obj: object) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _filtered(abi: list[dict[str, object]], used: tuple[tuple[str, str], ...]) -> list[dict[str, object]]:
    keep = [e for e in abi if (e.get("type"), e.get("name")) in used]
    # register() has three overloads upstream; the service only needs register(string).
    keep = [
        e for e in keep
        if e.get("name") != "register" or [i["type"] for i in e["inputs"]] == ["string"]  # type: ignore[index]
    ]
    return sorted(keep, key=lambda e: (str(e["type"]), str(e["name"]), json.dumps(e, sort_keys=True)))


def render(abis_dir: Path) -> dict[str, bytes]:
    """File name → content, from the upstream abis/ directory."""
    files: dict[str, bytes] = {}
    rows = []
    for contract, used in USED.items():
        raw = (abis_dir / f"{contract}.json").read_bytes()
        loaded = json.loads(raw)
        abi = loaded["abi"] if isinstance(loaded, dict) else loaded
        data = _dump(_filtered(abi, used))
        files[f"{contract}.abi.json"] = data
        rows.append(f"| {contract} | `abis/{contract}.json` | `{_sha(raw)}` |")
        rows.append(f"| | `contracts_abi/erc8004/{contract}.abi.json` | `{_sha(data)}` |")
    files["PROVENANCE.md"] = (
        "# Provenance of contracts_abi/erc8004/\n\n"
        f"The ERC-8004 registry interface, filtered from `abis/*.json` of {UPSTREAM} at commit `{UPSTREAM_COMMIT}`\n"
        "(the standard's reference ABIs) by `scripts/extract_erc8004_abi.py --write ABIS_DIR`; only the events and\n"
        "functions the service uses are kept. `--check` verifies the stored files against the hashes below.\n"
        "No bytecode is stored: tests deploy `tests/erc8004/contracts/Erc8004Registries.sol` (written for this\n"
        "project from the same interface, compiled with npm `solc`).\n\n"
        "| Contract | File | sha256 |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    ).encode()
    return files


def check_stored() -> list[str]:
    """Stored files whose sha256 differs from PROVENANCE.md."""
    text = (OUT_DIR / "PROVENANCE.md").read_text()
    bad = []
    for contract in USED:
        name = f"{contract}.abi.json"
        digest = _sha((OUT_DIR / name).read_bytes())
        if f"`contracts_abi/erc8004/{name}` | `{digest}`" not in text:
            bad.append(name)
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    parser.add_argument("abis_dir", nargs="?", type=Path)
    args = parser.parse_args()
    if args.write:
        if args.abis_dir is None:
            parser.error("--write needs ABIS_DIR")
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for name, data in render(args.abis_dir).items():
            (OUT_DIR / name).write_bytes(data)
        return 0
    bad = check_stored()
    if args.abis_dir is not None:
        bad += [n for n, d in render(args.abis_dir).items() if (OUT_DIR / n).read_bytes() != d]
    for name in bad:
        print(f"contracts_abi/erc8004/{name} differs from its source", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

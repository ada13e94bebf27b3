"""Compile tests/erc8004/contracts/*.sol with npm ``solc`` (solcjs, pinned in tests/interop/package.json).

One ``node`` run per source version: the standard-JSON output (ABI + creation bytecode) is cached under the pytest
temp root keyed by the sha256 of the sources and the compiler version, so a session compiles once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE.parent / "interop" / "node_modules"
SOLC_VERSION = "0.8.37"
SOURCE = HERE / "contracts" / "Erc8004Registries.sol"

_COMPILE_JS = r"""
const solc = require(process.argv[1]);
const input = require('fs').readFileSync(0, 'utf8');
process.stdout.write(JSON.stringify({version: solc.version(), output: JSON.parse(solc.compile(input))}));
"""


@dataclass(frozen=True)
class Compiled:
    abi: list[dict[str, Any]]
    bytecode: bytes


def compile_registries(cache_dir: Path) -> dict[str, Compiled]:
    """{"Erc8004IdentityRegistry": …, "Erc8004ReputationRegistry": …}. Skips when node/solc are absent.

    Raises:
        RuntimeError: the compiler reported an error, or is not the pinned version.
    """
    node = shutil.which("node")
    solc_dir = NODE_MODULES / "solc"
    if node is None or not (solc_dir / "package.json").exists():
        pytest.skip("node or npm solc missing (run `npm ci` in tests/interop)")
    source = SOURCE.read_text()
    key = hashlib.sha256(f"{SOLC_VERSION}\n{source}".encode()).hexdigest()[:16]
    cached = cache_dir / f"erc8004-{key}.json"
    if not cached.exists():
        standard = {
            "language": "Solidity",
            "sources": {SOURCE.name: {"content": source}},
            "settings": {
                "optimizer": {"enabled": True, "runs": 200},
                "viaIR": True,  # NewFeedback has 11 fields: too deep for the legacy pipeline
                "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
            },
        }
        run = subprocess.run(
            [node, "-e", _COMPILE_JS, str(solc_dir)],
            input=json.dumps(standard).encode(),
            capture_output=True,
            check=True,
            timeout=300,
        )
        answer = json.loads(run.stdout)
        if not str(answer["version"]).startswith(SOLC_VERSION + "+"):
            raise RuntimeError(f"npm solc is {answer['version']}, expected {SOLC_VERSION}")
        errors = [e for e in answer["output"].get("errors", []) if e["severity"] == "error"]
        if errors:
            raise RuntimeError("solc: " + "; ".join(e["formattedMessage"] for e in errors))
        cached.write_text(json.dumps(answer["output"]["contracts"][SOURCE.name]))
    contracts = json.loads(cached.read_text())
    return {
        name: Compiled(abi=c["abi"], bytecode=bytes.fromhex(c["evm"]["bytecode"]["object"]))
        for name, c in contracts.items()
    }

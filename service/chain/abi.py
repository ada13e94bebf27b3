"""ABIs and bytecode of EAS and SchemaRegistry (npm eas-contracts 1.9.0), read from the ``contracts_abi`` package data.

``deployed_code`` is the artifact's runtime code with **zeroed immutables**; it is only good for comparisons. To put
a working contract on a chain, run ``creation_code`` (+ constructor args) and use what it returns
(``service.chain.deploy``).
"""

from __future__ import annotations

import functools
import json
from importlib.resources import files
from typing import Any, Literal

from eth_utils.crypto import keccak

ContractName = Literal["EAS", "SchemaRegistry"]


@functools.cache
def _read(name: str) -> Any:
    return json.loads(files("contracts_abi").joinpath(name).read_text(encoding="utf-8"))


def abi(contract: ContractName) -> list[dict[str, Any]]:
    """The contract's ABI (a fresh list each call is not needed: treat it as read-only)."""
    result: list[dict[str, Any]] = _read(f"{contract}.abi.json")
    return result


def creation_code(contract: ContractName) -> bytes:
    """Creation (init) bytecode, without constructor arguments."""
    return bytes.fromhex(_read(f"{contract}.bytecode.json")["bytecode"].removeprefix("0x"))


def deployed_code(contract: ContractName) -> bytes:
    """The artifact's runtime bytecode with immutables left as zeros (do not deploy it as is)."""
    return bytes.fromhex(_read(f"{contract}.bytecode.json")["deployedBytecode"].removeprefix("0x"))


def error_selectors(contract: ContractName) -> dict[bytes, str]:
    """4-byte selector → custom error name, from the ABI's ``error`` entries."""
    out: dict[bytes, str] = {}
    for entry in abi(contract):
        if entry.get("type") == "error":
            sig = f"{entry['name']}({','.join(i['type'] for i in entry.get('inputs', []))})"
            out[keccak(text=sig)[:4]] = entry["name"]
    return out

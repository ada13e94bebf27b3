"""Strict JSON reading for signed artifacts.

Duplicate object keys are **rejected** (``MALFORMED_JSON``): JavaScript's ``JSON.parse`` keeps the last value and
other parsers keep the first, so a payload with a repeated key can mean different things to the signer, to the TS
SDK and to us — an artifact that is ambiguous is not evidence. ``NaN``/``Infinity`` are refused for the same
reason (not JSON). Numbers keep their JSON type: ``1`` is an ``int``, ``1.0`` a ``float``.

Nesting is capped (:data:`MAX_DEPTH`) *before* ``json.loads`` runs: py_ecc (imported by eth-account / py-evm) raises
the interpreter's recursion limit to 100000, and then the C JSON scanner overflows the C stack and crashes the
whole process on a few hundred KiB of ``[[[[…`` instead of raising ``RecursionError``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from service.domain import Reason
from service.errors import MalformedInput

MAX_DEPTH = 32  # x402 artifacts nest 3–4 levels deep; a wrapper inside a review adds one or two
_STRUCTURE_RE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def too_deep(text: str, *, limit: int = MAX_DEPTH) -> bool:
    """True when JSON ``text`` nests arrays/objects deeper than ``limit`` (brackets inside strings don't count).
    Cheap enough for every request body: one regex pass, skipped entirely when there are few brackets."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot nest deeper than the number of openers
    depth = 0
    for match in _STRUCTURE_RE.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _check_depth(text: str) -> None:
    if too_deep(text):
        raise MalformedInput(Reason.MALFORMED_JSON, f"JSON nests deeper than {MAX_DEPTH} levels")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedInput(Reason.MALFORMED_JSON, f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise MalformedInput(Reason.MALFORMED_JSON, f"{name} is not JSON")


# One decoder for every call: json.loads(**kwargs) would build a new JSONDecoder each time (hot path).
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def loads_strict(data: bytes | str, *, what: str) -> Any:
    """Parse JSON text (bytes must be UTF-8), refusing duplicate keys, non-finite numbers and deep nesting.

    Raises:
        MalformedInput: MALFORMED_JSON.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        _check_depth(text)
        return _DECODER.decode(text)
    except MalformedInput:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise MalformedInput(Reason.MALFORMED_JSON, f"{what} is not valid JSON") from None

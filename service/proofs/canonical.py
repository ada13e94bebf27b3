"""Canonical JSON for JWS payloads, byte-for-byte what the x402 TS SDK's ``canonicalize`` produces.

Sorted keys (by UTF-16 code units, as JavaScript's ``<`` compares strings), no whitespace, UTF-8, strings escaped
only for ``"``, ``\\`` and control characters below U+0020 (always as ``\\u00xx`` — the SDK never uses the short
forms ``\\n``/``\\t`` that RFC 8785 uses), integers in plain decimal. Only what x402 payloads need is supported:
objects, strings, integers, booleans, null, arrays. This is for *signing*; verification always uses the received
bytes and never re-canonicalizes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _string(value: str) -> str:
    out = ['"']
    for ch in value:
        code = ord(ch)
        if code < 0x20:
            out.append(f"\\u{code:04x}")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        keys = sorted(value, key=_utf16_key)
        return "{" + ",".join(_string(k) + ":" + _value(value[k]) for k in keys) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot canonicalize {type(value).__name__}")


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Canonical UTF-8 JSON bytes of ``value``.

    Raises:
        TypeError: a value that is not a JSON object/array/string/int/bool/null (floats included).
        UnicodeEncodeError: a string holding a lone surrogate (not representable in UTF-8).
    """
    return _value(value).encode("utf-8")

"""What both databases can hold: the one definition, checked at the edge (API) and before a chain write (sync).

PostgreSQL refuses NUL in ``text``/``jsonb`` and any string that is not encodable as UTF-8 (a lone surrogate that
``json.loads`` happily produces from ``"\\ud800"``); integer columns are ``BIGINT`` (SQLite's INTEGER has the same
range). A value outside these makes the driver raise at flush time — a 500 for a client, a stuck chunk for sync.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1


def text_refusal(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    if "\x00" in value:
        return "text holds a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "text is not valid Unicode (lone surrogate)"
    return None


def unstorable(values: Iterable[object]) -> str | None:
    """The first reason one of ``values`` (str, int, None) cannot be stored, or None when all can."""
    for value in values:
        if isinstance(value, str):
            refusal = text_refusal(value)
            if refusal:
                return refusal
        elif isinstance(value, int) and not isinstance(value, bool) and not BIGINT_MIN <= value <= BIGINT_MAX:
            return "integer outside the 64-bit range"
    return None


def verdict_values(verdict: Any, payments: Mapping[int, Any] | None = None) -> list[object]:
    """The values of a review verdict that end up in proof rows (``ReviewVerdict``: proofs with outcomes; the
    payment checks by proof position, written as JSON), to be checked with ``unstorable`` before they are written.
    Parsed from JSON, they may hold NUL (``"\\u0000"``): a receipt's network or transaction is copied into its
    payment check, and PostgreSQL's JSON record functions refuse NUL even inside a ``json`` value."""
    values: list[object] = []
    for p in verdict.proofs:
        o = p.outcome
        values += [p.proof_type, o.signer, o.replay_key, o.evidence_hash, o.detail, p.issued_at, o.checked_at]
    for check in (payments or {}).values():
        values += _scalars(check.to_json())
    return values


def _scalars(value: object) -> list[object]:
    """Every string and integer inside a JSON value."""
    if isinstance(value, dict):
        return [v for item in value.values() for v in _scalars(item)] + list(value)
    if isinstance(value, list):
        return [v for item in value for v in _scalars(item)]
    return [value] if isinstance(value, (str, int)) else []

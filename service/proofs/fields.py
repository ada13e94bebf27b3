"""Payload field extraction: wire (camelCase JSON) → domain payload types, with exact type rules.

Integers must be real JSON integers (``bool`` excluded, ``1.0`` refused), in ``0 ≤ n ≤ 2**53 − 1``: the TS SDK
reads JSON numbers as doubles, so a larger value would be hashed differently there than here. Strings must be
representable in UTF-8 (a lone surrogate from a ``\\ud800`` escape is refused — JavaScript would silently turn it
into U+FFFD before hashing). Unknown extra members are ignored (they are not part of the EIP-712 struct; inside a
JWS they are signed but carry no meaning here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.domain import ArtifactFormat, ArtifactKind, OfferPayload, Reason, ReceiptPayload
from service.errors import MalformedInput, Unsupported

MAX_SAFE_INTEGER = 2**53 - 1
SUPPORTED_VERSION = 1

# Members that only one kind carries; used to tell an offer from a receipt (a JWS has no type binding).
OFFER_ONLY = frozenset({"scheme", "asset", "payTo", "amount", "validUntil"})
RECEIPT_ONLY = frozenset({"payer", "issuedAt", "transaction"})


def detect_kind(payload: Mapping[str, Any]) -> ArtifactKind | None:
    """The kind a payload's members say it is, or None when it carries neither kind's own members.

    Raises:
        MalformedInput: MALFORMED_ARTIFACT when it carries members of both kinds.
    """
    offerish = not OFFER_ONLY.isdisjoint(payload)
    receiptish = not RECEIPT_ONLY.isdisjoint(payload)
    if offerish and receiptish:
        raise MalformedInput(Reason.MALFORMED_ARTIFACT, "payload mixes offer and receipt fields")
    if offerish:
        return ArtifactKind.OFFER
    if receiptish:
        return ArtifactKind.RECEIPT
    return None


def _get(payload: Mapping[str, Any], name: str) -> Any:
    if name not in payload:
        raise MalformedInput(Reason.MISSING_FIELD, f"payload.{name} is missing")
    return payload[name]


def _string(payload: Mapping[str, Any], name: str, default: str | None = None) -> str:
    if default is not None and name not in payload:
        return default
    value = _get(payload, name)
    if not isinstance(value, str):
        raise MalformedInput(Reason.BAD_FIELD_TYPE, f"payload.{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, f"payload.{name} holds a lone surrogate") from None
    return value


def _integer(payload: Mapping[str, Any], name: str, default: int | None = None) -> int:
    if default is not None and name not in payload:
        return default
    value = _get(payload, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedInput(Reason.BAD_FIELD_TYPE, f"payload.{name} must be a JSON integer")
    if not 0 <= value <= MAX_SAFE_INTEGER:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, f"payload.{name} out of range 0..2**53-1")
    return value


def _version(payload: Mapping[str, Any]) -> int:
    value = _get(payload, "version")
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedInput(Reason.BAD_FIELD_TYPE, "payload.version must be the JSON integer 1")
    if value != SUPPORTED_VERSION:
        raise Unsupported(Reason.UNSUPPORTED_VERSION, f"payload.version {value} is not supported")
    return value


def offer_from_wire(payload: Mapping[str, Any], *, fmt: ArtifactFormat) -> OfferPayload:
    """Build an :class:`OfferPayload` from wire members.

    ``validUntil`` is required for EIP-712 (a default would change the digest); a JWS may omit it (= 0, no expiry).

    Raises:
        MalformedInput: MISSING_FIELD, BAD_FIELD_TYPE, BAD_FIELD_VALUE.
        Unsupported: UNSUPPORTED_VERSION.
    """
    return OfferPayload(
        version=_version(payload),
        resource_url=_string(payload, "resourceUrl"),
        scheme=_string(payload, "scheme"),
        network=_string(payload, "network"),
        asset=_string(payload, "asset"),
        pay_to=_string(payload, "payTo"),
        amount=_string(payload, "amount"),
        valid_until=_integer(payload, "validUntil", 0 if fmt is ArtifactFormat.JWS else None),
    )


def receipt_from_wire(payload: Mapping[str, Any], *, fmt: ArtifactFormat) -> ReceiptPayload:
    """Build a :class:`ReceiptPayload` from wire members.

    ``transaction`` is required for EIP-712 (``""`` when absent — a default would change the digest); a JWS omits
    it when absent, which reads as ``""``.

    Raises:
        MalformedInput: MISSING_FIELD, BAD_FIELD_TYPE, BAD_FIELD_VALUE.
        Unsupported: UNSUPPORTED_VERSION.
    """
    return ReceiptPayload(
        version=_version(payload),
        network=_string(payload, "network"),
        resource_url=_string(payload, "resourceUrl"),
        payer=_string(payload, "payer"),
        issued_at=_integer(payload, "issuedAt"),
        transaction=_string(payload, "transaction", "" if fmt is ArtifactFormat.JWS else None),
    )


def offer_to_wire(payload: OfferPayload) -> dict[str, Any]:
    """The camelCase wire object of an offer payload (all eight members, as EIP-712 and the SDK send them)."""
    return {
        "version": payload.version,
        "resourceUrl": payload.resource_url,
        "scheme": payload.scheme,
        "network": payload.network,
        "asset": payload.asset,
        "payTo": payload.pay_to,
        "amount": payload.amount,
        "validUntil": payload.valid_until,
    }


def receipt_to_wire(payload: ReceiptPayload, *, omit_empty_transaction: bool = False) -> dict[str, Any]:
    """The camelCase wire object of a receipt payload.

    EIP-712 always carries ``transaction`` (``""`` when absent); the JWS form omits it when empty
    (``omit_empty_transaction=True``), as the SDK does.
    """
    wire: dict[str, Any] = {
        "version": payload.version,
        "network": payload.network,
        "resourceUrl": payload.resource_url,
        "payer": payload.payer,
        "issuedAt": payload.issued_at,
        "transaction": payload.transaction,
    }
    if omit_empty_transaction and not payload.transaction:
        del wire["transaction"]
    return wire

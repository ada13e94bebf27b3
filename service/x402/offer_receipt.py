"""The x402 ``offer-receipt`` extension for the PyPI ``x402`` resource server (``ResourceServerExtension``).

Behaves like the TypeScript ``createOfferReceiptExtension`` (``@x402/extensions`` 2.27):

* on every 402 (``enrich_payment_required_response``) it signs one offer per ``accepts[i]`` — ``acceptIndex = i``,
  ``resourceUrl`` = the 402's ``resource.url`` (else the request URL), ``validUntil = now + offerValiditySeconds``
  (declaration, else the requirement's ``maxTimeoutSeconds``, else 300 s) — and returns
  ``{info: {offers}, schema}``; a requirement whose offer cannot be signed is skipped (logged), none → no extension;
* after a **successful** settlement with a payer and a network (``enrich_settlement_response``) it signs a receipt
  for the request URL (``issuedAt = now``) → ``{info: {receipt}, schema}``; a failed settlement gets no receipt (the
  SDK does not even call the hook), a signing error is logged and the response goes out without a receipt.

``includeTxHash``: the TS server loses the route's ``includeTxHash`` between the 402 and the settlement (the
declaration it sees at settlement time is replaced). Here the option lives on the extension object
(``include_tx_hash``, default on: payment-backed reviews need the transaction); a declaration that explicitly sets a
boolean ``includeTxHash`` overrides it per route. ``offers`` is a ``dynamic_info_fields`` entry: every 402 re-signs
them, so a client echoing older offers is not rejected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from service.domain import OfferPayload, ReceiptPayload

from .signer import OfferReceiptSigner

log = logging.getLogger("omatrust.x402")

OFFER_RECEIPT = "offer-receipt"
DEFAULT_OFFER_VALIDITY_SECONDS = 300

OFFER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "offers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "format": {"type": "string"},
                    "acceptIndex": {"type": "integer"},
                    "payload": {
                        "type": "object",
                        "properties": {
                            "version": {"type": "integer"},
                            "resourceUrl": {"type": "string"},
                            "scheme": {"type": "string"},
                            "network": {"type": "string"},
                            "asset": {"type": "string"},
                            "payTo": {"type": "string"},
                            "amount": {"type": "string"},
                            "validUntil": {"type": "integer"},
                        },
                        "required": ["version", "resourceUrl", "scheme", "network", "asset", "payTo", "amount"],
                    },
                    "signature": {"type": "string"},
                },
                "required": ["format", "signature"],
            },
        }
    },
    "required": ["offers"],
}
RECEIPT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "receipt": {
            "type": "object",
            "properties": {
                "format": {"type": "string"},
                "payload": {
                    "type": "object",
                    "properties": {
                        "version": {"type": "integer"},
                        "network": {"type": "string"},
                        "resourceUrl": {"type": "string"},
                        "payer": {"type": "string"},
                        "issuedAt": {"type": "integer"},
                        "transaction": {"type": "string"},
                    },
                    "required": ["version", "network", "resourceUrl", "payer", "issuedAt"],
                },
                "signature": {"type": "string"},
            },
            "required": ["format", "signature"],
        }
    },
    "required": ["receipt"],
}


def declare_offer_receipt(
    *, include_tx_hash: bool | None = None, offer_validity_seconds: int | None = None
) -> dict[str, Any]:
    """The route declaration (``RouteConfig.extensions``) that turns the extension on for a route, like TS
    ``declareOfferReceiptExtension``; unset options fall back to the extension object's settings."""
    declaration: dict[str, Any] = {}
    if include_tx_hash is not None:
        declaration["includeTxHash"] = include_tx_hash
    if offer_validity_seconds is not None:
        declaration["offerValiditySeconds"] = offer_validity_seconds
    return {OFFER_RECEIPT: declaration}


def request_url(transport_context: Any) -> str | None:
    """The full request URL from the SDK's HTTP transport context (``HTTPTransportContext`` or
    ``HTTPRequestContext``), or None."""
    request = getattr(transport_context, "request", transport_context)
    adapter = getattr(request, "adapter", None)
    get_url = getattr(adapter, "get_url", None)
    return str(get_url()) if callable(get_url) else None


def _option(declaration: Any, name: str) -> Any:
    return declaration.get(name) if isinstance(declaration, Mapping) else None


class OfferReceiptExtension:
    """``server.register_extension(OfferReceiptExtension(signer=...))`` + a route declaring
    :func:`declare_offer_receipt`."""

    key = OFFER_RECEIPT
    hooks = None
    transport_hooks = None
    dynamic_info_fields = ["offers"]  # noqa: RUF012 - the SDK reads this attribute

    def __init__(
        self,
        *,
        signer: OfferReceiptSigner,
        include_tx_hash: bool = True,
        offer_validity_seconds: int | None = None,
        include_schema: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.include_schema = include_schema  # as the TS SDK does; off saves the SDK ~0.25 ms per paid request
        self.include_tx_hash = include_tx_hash
        self.offer_validity_seconds = offer_validity_seconds
        self.clock = clock

    def enrich_declaration(self, declaration: Any, transport_context: Any) -> Any:
        return declaration

    def _validity(self, declaration: Any, requirement: Any) -> int:
        for value in (_option(declaration, "offerValiditySeconds"), self.offer_validity_seconds,
                      getattr(requirement, "max_timeout_seconds", None)):  # fmt: skip
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return DEFAULT_OFFER_VALIDITY_SECONDS

    def enrich_payment_required_response(self, declaration: Any, context: Any) -> dict[str, Any] | None:
        """``{info: {offers}, schema}`` with one signed offer per ``accepts[i]``, or None when none could be signed."""
        resource = getattr(context.payment_required_response, "resource", None)
        resource_url = getattr(resource, "url", None) or request_url(context.transport_context)
        if not resource_url:
            log.warning("offer-receipt: no resource URL to sign offers for")
            return None
        now = int(self.clock())
        offers: list[dict[str, Any]] = []
        for index, requirement in enumerate(context.requirements):
            try:
                payload = OfferPayload(
                    version=1,
                    resource_url=resource_url,
                    scheme=requirement.scheme,
                    network=requirement.network,
                    asset=requirement.asset,
                    pay_to=requirement.pay_to,
                    amount=requirement.amount,
                    valid_until=now + self._validity(declaration, requirement),
                )
                offers.append(self.signer.sign_offer(payload, accept_index=index))
            except Exception:  # one bad requirement must not cost the others their offers (TS does the same)
                log.exception("offer-receipt: could not sign the offer for accepts[%d]", index)
        if not offers:
            return None
        return {"info": {"offers": offers}, **({"schema": OFFER_SCHEMA} if self.include_schema else {})}

    def enrich_settlement_response(self, declaration: Any, context: Any) -> dict[str, Any] | None:
        """``{info: {receipt}, schema}`` after a successful settlement, else None."""
        result = context.result
        if not getattr(result, "success", False):
            return None
        payer, network = getattr(result, "payer", None), getattr(result, "network", None)
        resource_url = request_url(context.transport_context)
        if not payer or not network or not resource_url:
            log.warning("offer-receipt: settlement without payer, network or request URL: no receipt")
            return None
        include = _option(declaration, "includeTxHash")
        if not isinstance(include, bool):
            include = self.include_tx_hash
        payload = ReceiptPayload(
            version=1,
            network=str(network),
            resource_url=resource_url,
            payer=str(payer),
            issued_at=int(self.clock()),
            transaction=str(result.transaction or "") if include else "",
        )
        try:
            receipt = self.signer.sign_receipt(payload)
        except Exception:  # the paid response still goes out, without a receipt (TS does the same)
            log.exception("offer-receipt: could not sign the receipt")
            return None
        return {"info": {"receipt": receipt}, **({"schema": RECEIPT_SCHEMA} if self.include_schema else {})}

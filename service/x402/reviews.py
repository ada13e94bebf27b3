"""The x402 ``reviews`` extension: where to read and to write reviews of a paid resource (links only).

* PAYMENT-REQUIRED: ``extensions.reviews.info.providers[] = {provider, read, description?}`` with
  ``read = <api>/v1/resources/reviews?url=<resourceUrl>``;
* PAYMENT-RESPONSE (successful settlement): ``extensions.reviews.info = {providers[] = {provider, write,
  description?}, userQuestion?}`` with ``write = <api>/r/<network>/<transaction>`` (the payment is identified by
  network + transaction).

``provider`` is the host of the provider's URL, as the draft requires.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from .offer_receipt import request_url

REVIEWS = "reviews"
REVIEWS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "providers": {
            "type": "array",
            "minItems": 1,
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    "provider": {"type": "string"},
                    "read": {"type": "string"},
                    "write": {"type": "string"},
                    "description": {"type": "string"},
                },
                "required": ["provider"],
            },
        },
        "userQuestion": {"type": "string"},
    },
    "required": ["providers"],
}


def declare_reviews() -> dict[str, Any]:
    """The route declaration that turns the ``reviews`` extension on for a route."""
    return {REVIEWS: {}}


class ReviewsExtension:
    """``server.register_extension(ReviewsExtension(provider_url="https://reviews.example"))``."""

    key = REVIEWS
    hooks = None
    transport_hooks = None
    dynamic_info_fields = None

    def __init__(self, *, provider_url: str, description: str | None = None, user_question: str | None = None) -> None:
        self.base = provider_url.rstrip("/")
        self.provider = urlsplit(self.base).netloc
        self.description = description
        self.user_question = user_question

    def enrich_declaration(self, declaration: Any, transport_context: Any) -> Any:
        return declaration

    def read_link(self, resource_url: str) -> str:
        return f"{self.base}/v1/resources/reviews?url={quote(resource_url, safe='')}"

    def write_link(self, *, network: str, transaction: str) -> str:
        return f"{self.base}/r/{quote(network, safe=':')}/{quote(transaction, safe='')}"

    def _provider(self, **link: str) -> dict[str, str]:
        out = {"provider": self.provider, **link}
        if self.description:
            out["description"] = self.description
        return out

    def enrich_payment_required_response(self, declaration: Any, context: Any) -> dict[str, Any] | None:
        resource = getattr(context.payment_required_response, "resource", None)
        resource_url = getattr(resource, "url", None) or request_url(context.transport_context)
        if not resource_url:
            return None
        return {"info": {"providers": [self._provider(read=self.read_link(resource_url))]}, "schema": REVIEWS_SCHEMA}

    def enrich_settlement_response(self, declaration: Any, context: Any) -> dict[str, Any] | None:
        result = context.result
        if not getattr(result, "success", False) or not result.transaction or not result.network:
            return None
        info: dict[str, Any] = {
            "providers": [self._provider(write=self.write_link(network=str(result.network),
                                                               transaction=str(result.transaction)))]
        }  # fmt: skip
        if self.user_question:
            info["userQuestion"] = self.user_question
        return {"info": info, "schema": REVIEWS_SCHEMA}

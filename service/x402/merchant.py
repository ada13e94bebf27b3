"""The example merchant: a FastAPI app selling ``GET /paid`` through the x402 SDK's middleware, with our
``offer-receipt`` and ``reviews`` extensions, serving its own did.json (the same app docs/merchant.md shows).

::

    app = create_merchant_app(config=MerchantConfig(...), facilitator=facilitator_client)

``facilitator`` is any x402 facilitator client: the SDK's ``HTTPFacilitatorClient`` for a remote one, or an
in-process ``x402Facilitator`` (:func:`service.x402.facilitator.build_facilitator`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from x402 import x402ResourceServer
from x402.http.middleware.fastapi import payment_middleware
from x402.http.types import PaymentOption, RouteConfig
from x402.mechanisms.evm.exact import register_exact_evm_server
from x402.schemas import AssetAmount

from .offer_receipt import OfferReceiptExtension, declare_offer_receipt
from .reviews import ReviewsExtension, declare_reviews
from .signer import OfferReceiptSigner

PAID_PATH = "/paid"


@dataclass(frozen=True)
class MerchantConfig:
    """What the merchant sells and how it signs. ``asset_name``/``asset_version`` are the token's EIP-712 domain
    (EIP-3009), carried to the client and facilitator in ``accepts[].extra``."""

    public_url: str  # e.g. http://localhost:4021 (the did:web host)
    network: str  # CAIP-2, e.g. eip155:31337
    pay_to: str
    asset: str
    asset_name: str
    asset_version: str
    amount: str  # atomic units
    signer: OfferReceiptSigner
    review_provider: str | None = None  # base URL of the review provider (this service), for the reviews extension
    include_tx_hash: bool = True
    include_schema: bool = True  # JSON schemas in the extension data, as the TS SDK sends them
    max_timeout_seconds: int = 300

    @property
    def resource_url(self) -> str:
        return self.public_url.rstrip("/") + PAID_PATH


def resource_server(*, config: MerchantConfig, facilitator: Any, with_extensions: bool = True) -> x402ResourceServer:
    """The SDK resource server with the exact EVM scheme for ``config.network`` and (unless ``with_extensions`` is
    False, for the benchmark's baseline) our two extensions registered."""
    server = x402ResourceServer(facilitator)
    register_exact_evm_server(server, networks=config.network)
    if with_extensions:
        server.register_extension(OfferReceiptExtension(signer=config.signer, include_tx_hash=config.include_tx_hash,
                                                        include_schema=config.include_schema))  # fmt: skip
        if config.review_provider:
            server.register_extension(ReviewsExtension(provider_url=config.review_provider))
    return server


def routes(*, config: MerchantConfig, with_extensions: bool = True, path: str = PAID_PATH) -> dict[str, RouteConfig]:
    """``GET <path>`` for ``amount`` of ``asset``, declaring the extensions."""
    extensions: dict[str, Any] = {}
    if with_extensions:
        extensions.update(declare_offer_receipt(include_tx_hash=config.include_tx_hash))
        if config.review_provider:
            extensions.update(declare_reviews())
    price = AssetAmount(
        amount=config.amount, asset=config.asset, extra={"name": config.asset_name, "version": config.asset_version}
    )
    option = PaymentOption(
        scheme="exact",
        pay_to=config.pay_to,
        network=config.network,
        price=price,
        max_timeout_seconds=config.max_timeout_seconds,
    )
    return {
        f"GET {path}": RouteConfig(
            accepts=option,
            resource=config.public_url.rstrip("/") + path,
            description="A paid weather report",
            mime_type="application/json",
            extensions=extensions or None,
        )
    }


def create_merchant_app(
    *,
    config: MerchantConfig,
    facilitator: Any,
    with_extensions: bool = True,
    alt_signer: OfferReceiptSigner | None = None,
) -> FastAPI:
    """The merchant app: ``GET /paid`` behind the x402 middleware, ``GET /.well-known/did.json`` (the signer under
    ``assertionMethod``). ``alt_signer`` (same DID, another key fragment) also sells ``GET /paid/<format>`` signed by
    it — the demo shows EIP-712 and JWS receipts from one merchant. The facilitator's ``/supported`` is read here: it
    must be reachable."""
    app = FastAPI(title="x402 merchant", docs_url=None, redoc_url=None, openapi_url=None)
    signers = [(config, PAID_PATH)]
    if alt_signer is not None:
        alt_path = f"{PAID_PATH}/{alt_signer.format}"
        signers.append((replace(config, signer=alt_signer, public_url=config.public_url), alt_path))
    for cfg, path in signers:
        server = resource_server(config=cfg, facilitator=facilitator, with_extensions=with_extensions)
        _install(app, payment_middleware(routes(config=cfg, with_extensions=with_extensions, path=path), server))

        def paid(resource: str = cfg.public_url.rstrip("/") + path) -> dict[str, Any]:
            return {"forecast": "sunny", "temperatureC": 21, "resource": resource}

        app.add_api_route(path, paid, methods=["GET"])

    @app.get("/.well-known/did.json")
    def did_json() -> dict[str, Any]:
        document = config.signer.did_document()
        if alt_signer is not None:
            document["verificationMethod"].append(alt_signer.verification_method())
            document["assertionMethod"].append(alt_signer.kid)
        # Shown by reputation pages as the service's name and link (service/identity/profile.py, docs/pages.md).
        document.setdefault("name", f"Weather API ({urlsplit(config.public_url).netloc})")
        site = {"id": f"{document['id']}#site", "type": "LinkedDomains", "serviceEndpoint": config.public_url}
        document.setdefault("service", [site])
        return document

    return app


def _install(app: FastAPI, middleware: Any) -> None:
    @app.middleware("http")
    async def x402(request: Any, call_next: Any) -> Any:
        return await middleware(request, call_next)

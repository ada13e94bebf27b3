"""x402 on the PyPI ``x402`` SDK: what the SDK lacks and the OMATrust loop needs.

* :mod:`.signer` — the merchant's offer/receipt signer (EIP-712 or JWS) and the did.json that authorizes it;
* :mod:`.offer_receipt` — the ``offer-receipt`` extension for ``x402ResourceServer`` (signed offers in
  PAYMENT-REQUIRED, a signed receipt in PAYMENT-RESPONSE), behaving like the TypeScript
  ``createOfferReceiptExtension``;
* :mod:`.reviews` — the ``reviews`` extension (links to a review provider);
* :mod:`.facilitator` — the SDK's ``x402Facilitator`` (exact EVM scheme) on a given chain, and its HTTP API;
* :mod:`.merchant` — the example FastAPI merchant app (``omatrust merchant``, docs/merchant.md);
* :mod:`.client` — paying (``pay``) and reviewing (``review``) from Python, with spend control.

Signing reuses ``service.proofs``; this package imports nothing else of the service.
"""

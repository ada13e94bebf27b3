"""Actors for the demo (and the end-to-end tests): an x402 merchant that publishes a did:web document and signs
receipts/offers, and reviewers who sign EAS delegated attests and post them to the API.

The HTTP client is anything with httpx.Client's ``post``/``get`` (an ``httpx.Client`` or FastAPI's ``TestClient``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount

from service.domain import ArtifactKind, OfferPayload, ReceiptPayload
from service.proofs import (
    evm_address,
    generate_evm_private_key,
    generate_private_jwk,
    jwk_to_public_jwk,
    proof_wrapper,
    sign_offer_eip712,
    sign_receipt_eip712,
    sign_receipt_jws,
)

USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"


class HttpClient(Protocol):
    def post(self, url: str, *, json: Any = ...) -> Any: ...
    def get(self, url: str) -> Any: ...


@dataclass
class Merchant:
    """An x402 resource server: ``did:web:<host>``, an EVM receipt key and a P-256 JWS key in its did.json."""

    host: str  # "host" or "host:port"
    scheme: str = "https"
    evm_key: bytes = field(default_factory=generate_evm_private_key)
    jws_key: dict[str, str] = field(default_factory=lambda: generate_private_jwk(crv="P-256"))
    network: str = "eip155:8453"

    @property
    def did(self) -> str:
        return "did:web:" + self.host.replace(":", "%3A")

    @property
    def address(self) -> str:
        return evm_address(private_key=self.evm_key)

    @property
    def kid(self) -> str:
        return f"{self.did}#key-1"

    def url(self, path: str = "/weather") -> str:
        return f"{self.scheme}://{self.host}{path}"

    def did_document(self) -> dict[str, Any]:
        return {
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"],
            "id": self.did,
            "name": f"Demo weather API ({self.host})",  # shown by the reputation page (service/identity/profile.py)
            "service": [{"id": f"{self.did}#site", "type": "LinkedDomains", "serviceEndpoint": self.url("/")}],
            "verificationMethod": [
                {
                    "id": self.kid,
                    "type": "JsonWebKey2020",
                    "controller": self.did,
                    "publicKeyJwk": jwk_to_public_jwk(self.jws_key),
                },
                {
                    "id": f"{self.did}#evm-1",
                    "type": "EcdsaSecp256k1RecoveryMethod2020",
                    "controller": self.did,
                    "blockchainAccountId": f"{self.network}:{self.address}",
                },
            ],
            "assertionMethod": [self.kid, f"{self.did}#evm-1"],
        }

    def receipt(
        self, *, payer: str, issued_at: int, fmt: str = "eip712", path: str = "/weather", transaction: str = ""
    ) -> dict[str, Any]:
        """A signed receipt wrapped as an OMATrust ``x402-receipt`` proof."""
        payload = ReceiptPayload(
            version=1, network=self.network, resource_url=self.url(path), payer=payer, issued_at=issued_at,
            transaction=transaction,
        )  # fmt: skip
        if fmt == "jws":
            envelope = sign_receipt_jws(payload=payload, private_jwk=self.jws_key, kid=self.kid)
        else:
            envelope = sign_receipt_eip712(payload=payload, private_key=self.evm_key)
        return proof_wrapper(artifact=envelope, kind=ArtifactKind.RECEIPT, issued_at=issued_at)

    def offer(self, *, amount: str = "10000", valid_until: int = 0, path: str = "/weather") -> dict[str, Any]:
        payload = OfferPayload(
            version=1, resource_url=self.url(path), scheme="exact", network=self.network, asset=USDC_BASE,
            pay_to=self.address, amount=amount, valid_until=valid_until,
        )  # fmt: skip
        return proof_wrapper(artifact=sign_offer_eip712(payload=payload, private_key=self.evm_key),
                             kind=ArtifactKind.OFFER)  # fmt: skip


@dataclass
class Reviewer:
    """A payer who reviews: signs the EAS typed data the API prepares, then submits it."""

    account: LocalAccount = field(default_factory=lambda: Account.create())

    @property
    def address(self) -> str:
        return str(self.account.address)

    def sign(self, typed_data: dict[str, Any]) -> str:
        signed = self.account.sign_typed_data(full_message=typed_data)
        return "0x" + bytes(signed.signature).hex()

    def prepare(self, client: HttpClient, *, base: str = "", deadline: int | None = None, **review: Any) -> Any:
        body: dict[str, Any] = {"attester": self.address, "review": review}
        if deadline is not None:
            body["deadline"] = deadline
        return client.post(f"{base}/v1/reviews/prepare", json=body)

    def submit(self, client: HttpClient, *, base: str = "", deadline: int | None = None, **review: Any) -> Any:
        """prepare → sign → submit. Returns the submit response (or the prepare response if that failed)."""
        prepared = self.prepare(client, base=base, deadline=deadline, **review)
        if prepared.status_code != 200:
            return prepared
        return client.post(f"{base}/v1/reviews", json=self.signed_body(prepared.json()))

    def signed_body(self, prepared: dict[str, Any]) -> dict[str, Any]:
        typed = prepared["typedData"]
        return {
            "attester": self.address,
            "data": prepared["data"],
            "deadline": typed["message"]["deadline"],
            "nonce": typed["message"]["nonce"],
            "signature": self.sign(typed),
        }


class DidWebServer:
    """Serves a merchant's did.json over plain HTTP on 127.0.0.1 (the demo's did:web host; the API must list it in
    OMATRUST_DID_WEB_INSECURE_HOSTS)."""

    def __init__(self, *, port: int, documents: dict[str, bytes] | None = None) -> None:
        self.documents = documents or {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = server.documents.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/did+json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def publish(self, merchant: Merchant) -> None:
        self.documents["/.well-known/did.json"] = json.dumps(merchant.did_document()).encode()

    def __enter__(self) -> DidWebServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

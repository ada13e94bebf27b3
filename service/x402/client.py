"""Paying for an x402 resource and reviewing the purchase, from Python (``omatrust pay`` / ``omatrust review`` are
thin faces over :func:`pay` and :func:`review`).

``pay`` runs the x402 v2 flow with the PyPI SDK's client (``x402ClientSync`` + exact EVM scheme): GET → 402 →
choose an acceptable requirement → sign the EIP-3009 authorization → retry with ``PAYMENT-SIGNATURE`` → 200 with
``PAYMENT-RESPONSE``. **Spend control happens before anything is signed**: a requirement is acceptable only when

* its scheme is ``exact`` and its network has an RPC URL (``rpc_urls``: CAIP-2 → URL, see :func:`rpc_urls_from_env`);
* its asset is an EIP-3009 token on that network (it has code, answers ``authorizationState`` and its EIP-712
  ``name()``/``version()`` equal the requirement's ``extra.name``/``extra.version``);
* its amount is at most ``max_amount`` atomic units;
* when the 402 carries the ``offer-receipt`` extension, every offer is well formed and signed (EIP-712 signatures
  must recover), and the offer for this requirement (same scheme, network, asset, payTo, amount) is unexpired.

Otherwise :class:`~service.errors.PaymentRefused` is raised and nothing is signed. After payment the receipt must be
present and name this payer, else ``PaymentRefused(paid=True)``. The artifacts are kept exactly as received.

``review`` wraps a receipt (and the offer) as OMATrust ``x402-receipt`` / ``x402-offer`` proofs, asks the review
service to prepare the EAS typed data, signs it with the reviewer's key and submits it.
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError
from x402 import x402ClientSync
from x402.http import x402HTTPClientSync
from x402.mechanisms.evm import EthAccountSigner
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.schemas import PaymentRequired

from service.domain import ArtifactKind, ReceiptPayload
from service.errors import CheckFailed, PaymentRefused, ReviewRefused
from service.proofs import parse_artifact, proof_wrapper, recover_eip712_signer

from .offer_receipt import OFFER_RECEIPT
from .reviews import REVIEWS
from .signer import did_web

DEFAULT_MAX_AMOUNT = 1_000_000
_EIP3009_PROBE_ABI = [
    {"type": "function", "name": "authorizationState", "stateMutability": "view",
     "inputs": [{"name": "authorizer", "type": "address"}, {"name": "nonce", "type": "bytes32"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "name", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "string"}]},
    {"type": "function", "name": "version", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "string"}]},
]  # fmt: skip


@dataclass
class PaymentResult:
    """What :func:`pay` got. ``receipt``/``offer`` are the signed envelopes exactly as the merchant sent them."""

    status: int
    network: str | None
    transaction: str | None
    payer: str
    receipt: dict[str, Any] | None
    offer: dict[str, Any] | None
    review_url: str | None
    body: bytes = b""
    settlement: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "network": self.network,
            "transaction": self.transaction,
            "payer": self.payer,
            "receipt": self.receipt,
            "offer": self.offer,
            "reviewUrl": self.review_url,
        }


def load_key(spec: str, *, environ: Mapping[str, str] | None = None) -> LocalAccount:
    """A private key given as ``0x…`` hex or ``env:NAME`` (read from the environment).

    Raises:
        ValueError: the variable is unset or the key is not a valid secp256k1 key.
    """
    env = os.environ if environ is None else environ
    if spec.startswith("env:"):
        name = spec[4:]
        if not env.get(name):
            raise ValueError(f"environment variable {name} is not set")
        spec = env[name]
    try:
        account: LocalAccount = Account.from_key(spec.strip())
    except (ValueError, TypeError) as exc:
        raise ValueError("not a valid private key (expected 0x + 64 hex or env:NAME)") from exc
    return account


def rpc_urls_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Payment networks the client may pay on: ``OMATRUST_PAYMENT_RPC_URLS`` (``eip155:8453=https://…,…``) plus
    ``OMATRUST_RPC_URL`` under the CAIP-2 id its node reports (looked up when first needed, key ``*``)."""
    env = os.environ if environ is None else environ
    urls: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in env.get("OMATRUST_PAYMENT_RPC_URLS", "").split(","))):
        network, _, url = item.partition("=")
        if network and url:
            urls[network.strip()] = url.strip()
    if env.get("OMATRUST_RPC_URL"):
        urls.setdefault("*", env["OMATRUST_RPC_URL"])
    return urls


def _rpc_for(network: str, rpc_urls: Mapping[str, str], cache: dict[str, Web3 | None]) -> Web3 | None:
    if network in cache:
        return cache[network]
    w3: Web3 | None = None
    if network in rpc_urls:
        w3 = Web3(Web3.HTTPProvider(rpc_urls[network], request_kwargs={"timeout": 15}))
    elif "*" in rpc_urls and network.startswith("eip155:"):
        candidate = Web3(Web3.HTTPProvider(rpc_urls["*"], request_kwargs={"timeout": 15}))
        try:
            if f"eip155:{int(candidate.eth.chain_id)}" == network:
                w3 = candidate
        except Exception:  # an unreachable default node only means "no RPC for this network"
            w3 = None
    cache[network] = w3
    return w3


def _decode_header(value: str) -> dict[str, Any]:
    decoded = json.loads(base64.b64decode(value, validate=False))
    if not isinstance(decoded, dict):
        raise ValueError("not a JSON object")
    return decoded


def _offers(payment_required: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The ``offer-receipt`` offers of a 402 (None when the extension is absent), each checked: well formed, signed,
    an EIP-712 signature that recovers. Raises PaymentRefused(offer-invalid)."""
    extension = (payment_required.get("extensions") or {}).get(OFFER_RECEIPT)
    if extension is None:
        return None
    offers = extension.get("info", {}).get("offers") if isinstance(extension, Mapping) else None
    if not isinstance(offers, list) or not offers:
        raise PaymentRefused("offer-invalid", "the 402 declares offer-receipt but carries no offers list")
    for index, offer in enumerate(offers):
        try:
            artifact = parse_artifact(data=offer, expect=ArtifactKind.OFFER)
            if artifact.format == "eip712":
                recover_eip712_signer(artifact=artifact)
        except CheckFailed as exc:
            raise PaymentRefused("offer-invalid", f"offer {index} is malformed or unsigned: {exc}") from exc
    return offers


def _offer_for(offers: list[dict[str, Any]], requirement: Mapping[str, Any], now: int) -> dict[str, Any]:
    for offer in offers:
        payload = parse_artifact(data=offer, expect=ArtifactKind.OFFER).payload
        terms = (payload.scheme, payload.network, payload.asset, payload.pay_to, payload.amount)  # type: ignore[union-attr]
        wanted = tuple(str(requirement.get(k)) for k in ("scheme", "network", "asset", "payTo", "amount"))
        if terms == wanted:
            valid_until = payload.valid_until  # type: ignore[union-attr]
            if valid_until and valid_until < now:
                raise PaymentRefused("offer-expired", f"the signed offer expired at {valid_until}")
            return offer
    raise PaymentRefused("offer-mismatch", "no signed offer matches the payment terms")


# Only an answer says "not an EIP-3009 token": a revert, or return data that does not decode. Anything else (a transport
# failure, an error answer such as anvil's "BlockOutOfRangeError" while it mines a block, a rate limit, a proxy's error
# page) says nothing about the asset: it is retried, then refused as ``rpc-unavailable``.
_PROBE_ATTEMPTS = 3
_PROBE_BACKOFF_SECONDS = 0.2
_NOT_A_TOKEN = (ContractLogicError, BadFunctionCallOutput, DecodingError)


def _probe_asset(w3: Web3, asset: str, sleep: Any = time.sleep) -> tuple[str, str]:
    contract = w3.eth.contract(address=Web3.to_checksum_address(asset), abi=_EIP3009_PROBE_ABI)
    for attempt in range(1, _PROBE_ATTEMPTS + 1):
        try:
            if not w3.eth.get_code(contract.address):
                raise PaymentRefused("not-eip3009", f"no contract at asset {asset}")
            contract.functions.authorizationState("0x" + "00" * 20, b"\x00" * 32).call()
            return contract.functions.name().call(), contract.functions.version().call()
        except PaymentRefused:
            raise
        except _NOT_A_TOKEN as exc:
            raise PaymentRefused("not-eip3009", f"asset {asset} does not answer as an EIP-3009 token: {exc}") from exc
        except Exception as exc:
            if attempt == _PROBE_ATTEMPTS:
                raise PaymentRefused("rpc-unavailable", f"the node for asset {asset} did not answer: {exc}") from exc
            sleep(_PROBE_BACKOFF_SECONDS * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _check_asset(w3: Web3, requirement: Mapping[str, Any]) -> None:
    asset, extra = str(requirement.get("asset")), requirement.get("extra") or {}
    try:
        name, version = _probe_asset(w3, asset)
    except PaymentRefused:
        raise
    except Exception as exc:  # a malformed asset address
        raise PaymentRefused("not-eip3009", f"asset {asset} does not answer as an EIP-3009 token: {exc}") from exc
    if (name, version) != (extra.get("name"), extra.get("version")):
        raise PaymentRefused("not-eip3009", f"asset {asset} is {name!r}/{version!r}, the 402 says "
                                            f"{extra.get('name')!r}/{extra.get('version')!r}")  # fmt: skip


def choose_requirement(
    *, payment_required: Mapping[str, Any], max_amount: int, rpc_urls: Mapping[str, str], now: int
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The first acceptable ``accepts[i]`` and its signed offer (None when the 402 has no offers).

    Raises:
        PaymentRefused: nothing acceptable (the message gives each requirement's reason).
    """
    offers = _offers(payment_required)
    accepts = payment_required.get("accepts")
    if not isinstance(accepts, list) or not accepts:
        raise PaymentRefused("malformed-402", "the 402 has no accepts")
    reasons: list[str] = []
    cache: dict[str, Web3 | None] = {}
    for index, requirement in enumerate(accepts):
        try:
            if not isinstance(requirement, Mapping) or requirement.get("scheme") != "exact":
                raise PaymentRefused("unsupported-scheme", "only the exact scheme is paid")
            amount = str(requirement.get("amount", ""))
            if not amount.isdigit():
                raise PaymentRefused("malformed-402", f"amount {amount!r} is not an integer")
            if int(amount) > max_amount:
                raise PaymentRefused("amount-too-high", f"{amount} atomic units is above --max-amount {max_amount}")
            network = str(requirement.get("network"))
            w3 = _rpc_for(network, rpc_urls, cache)
            if w3 is None:
                raise PaymentRefused("no-rpc", f"no RPC URL for network {network} (OMATRUST_PAYMENT_RPC_URLS)")
            _check_asset(w3, requirement)
            offer = _offer_for(offers, requirement, now) if offers is not None else None
            return dict(requirement), offer
        except PaymentRefused as exc:
            reasons.append(f"accepts[{index}] {exc.code}: {exc.detail}")
            if len(accepts) == 1:
                raise
    raise PaymentRefused("nothing-acceptable", "; ".join(reasons))


def _receipt_payload(receipt: Mapping[str, Any]) -> ReceiptPayload:
    try:
        payload = parse_artifact(data=receipt, expect=ArtifactKind.RECEIPT).payload
    except CheckFailed as exc:
        raise PaymentRefused("receipt-invalid", f"the receipt is malformed: {exc}", paid=True) from exc
    assert isinstance(payload, ReceiptPayload)
    return payload


def pay(
    *,
    url: str,
    account: LocalAccount,
    max_amount: int = DEFAULT_MAX_AMOUNT,
    rpc_urls: Mapping[str, str] | None = None,
    out_dir: Path | None = None,
    http: httpx.Client | None = None,
    clock: Any = time.time,
) -> PaymentResult:
    """Buy ``url`` with ``account`` (x402 v2, exact EVM, EIP-3009) within ``max_amount`` atomic units. Writes
    ``out_dir/receipt.json`` and ``out_dir/offer.json`` (when signed) exactly as received.

    Raises:
        PaymentRefused: refused before signing (spend control, malformed 402 or offers), the payment failed, or the
            PAYMENT-RESPONSE has no receipt / a receipt for another payer (``paid=True``).
        httpx.HTTPError: the resource could not be reached.
    """
    rpc_urls = rpc_urls_from_env() if rpc_urls is None else rpc_urls
    client = http or httpx.Client(timeout=60)
    try:
        first = client.get(url)
        if first.status_code != 402:
            return PaymentResult(status=first.status_code, network=None, transaction=None, payer=account.address,
                                 receipt=None, offer=None, review_url=None, body=first.content)  # fmt: skip
        header = first.headers.get("PAYMENT-REQUIRED")
        if not header:
            raise PaymentRefused("malformed-402", "402 without a PAYMENT-REQUIRED header")
        try:
            required = _decode_header(header)
        except ValueError as exc:
            raise PaymentRefused("malformed-402", f"PAYMENT-REQUIRED is not base64 JSON: {exc}") from exc
        requirement, offer = choose_requirement(
            payment_required=required, max_amount=max_amount, rpc_urls=rpc_urls, now=int(clock())
        )
        # Only now is anything signed: the SDK builds the EIP-3009 authorization for the one chosen requirement.
        sdk = x402ClientSync()
        register_exact_evm_client(sdk, EthAccountSigner(account), networks=[str(requirement["network"])])
        sdk.set_spend_controls({"allowed_assets": [{"network": str(requirement["network"]),
                                                    "asset": str(requirement["asset"]),
                                                    "max_amount_per_payment": str(max_amount)}]})  # fmt: skip
        narrowed = PaymentRequired.model_validate({**required, "accepts": [requirement]})
        payload = sdk.create_payment_payload(narrowed, resource=narrowed.resource, extensions=narrowed.extensions)
        headers = x402HTTPClientSync(sdk).encode_payment_signature_header(payload)
        paid = client.get(url, headers=headers)
        response_header = paid.headers.get("PAYMENT-RESPONSE") or paid.headers.get("X-PAYMENT-RESPONSE")
        if paid.status_code != 200:
            detail = _decode_header(response_header).get("errorReason") if response_header else paid.text[:200]
            raise PaymentRefused("payment-failed", f"HTTP {paid.status_code}: {detail}")
        if not response_header:
            raise PaymentRefused("no-receipt", "200 without a PAYMENT-RESPONSE header", paid=True)
        settlement = _decode_header(response_header)
        extensions = settlement.get("extensions") or {}
        receipt = ((extensions.get(OFFER_RECEIPT) or {}).get("info") or {}).get("receipt")
        if not isinstance(receipt, dict):
            raise PaymentRefused("no-receipt", "PAYMENT-RESPONSE carries no signed receipt", paid=True)
        receipt_payload = _receipt_payload(receipt)
        if receipt_payload.payer.lower() != account.address.lower():
            raise PaymentRefused("receipt-payer-mismatch",
                                 f"the receipt names payer {receipt_payload.payer}, not {account.address}",
                                 paid=True)  # fmt: skip
        providers = ((extensions.get(REVIEWS) or {}).get("info") or {}).get("providers") or []
        review_url = next((p.get("write") for p in providers if isinstance(p, dict) and p.get("write")), None)
        result = PaymentResult(
            status=paid.status_code,
            network=settlement.get("network"),
            transaction=settlement.get("transaction"),
            payer=account.address,
            receipt=receipt,
            offer=offer,
            review_url=review_url,
            body=paid.content,
            settlement=settlement,
        )
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "receipt.json").write_text(json.dumps(receipt, indent=2) + "\n")
            if offer is not None:
                (out_dir / "offer.json").write_text(json.dumps(offer, indent=2) + "\n")
        return result
    finally:
        if http is None:
            client.close()


def subject_for(resource_url: str) -> str:
    """The service DID a receipt is about: ``did:web`` of its ``resourceUrl`` host."""
    return did_web(urlsplit(resource_url).netloc)


def review(
    *,
    receipt: Mapping[str, Any],
    rating: int,
    account: LocalAccount,
    api: str,
    offer: Mapping[str, Any] | None = None,
    text: str | None = None,
    http: httpx.Client | None = None,
    clock: Any = time.time,
) -> dict[str, Any]:
    """Post a review of the purchase a receipt proves: proofs = the receipt (+ the offer), subject = did:web of the
    receipt's resource host; prepare → sign the EAS typed data → submit. Returns the review resource.

    Raises:
        PaymentRefused: receipt-invalid — the receipt does not parse.
        ReviewRefused: the service refused (``status`` and the problem+json ``problem``).
        httpx.HTTPError: the service could not be reached.
    """
    payload = _receipt_payload(receipt)
    now = int(clock())
    proofs = [proof_wrapper(artifact=receipt, kind=ArtifactKind.RECEIPT, issued_at=now)]
    if offer is not None:
        proofs.append(proof_wrapper(artifact=offer, kind=ArtifactKind.OFFER, issued_at=now))
    body: dict[str, Any] = {"subject": subject_for(payload.resource_url), "ratingValue": rating, "proofs": proofs}
    if text:
        body["reviewBody"] = text
    client = http or httpx.Client(timeout=60)
    base = api.rstrip("/")
    try:
        prepared = _post(client, f"{base}/v1/reviews/prepare", {"attester": account.address, "review": body})
        if prepared.status_code != 200:
            raise ReviewRefused(prepared.status_code, _problem(prepared))
        typed = prepared.json()["typedData"]
        signature = "0x" + bytes(account.sign_typed_data(full_message=typed).signature).hex()
        submitted = _post(client, f"{base}/v1/reviews", {
            "attester": account.address, "data": prepared.json()["data"], "deadline": typed["message"]["deadline"],
            "nonce": typed["message"]["nonce"], "signature": signature,
        })  # fmt: skip
        if submitted.status_code not in (200, 201):
            raise ReviewRefused(submitted.status_code, _problem(submitted))
        result: dict[str, Any] = submitted.json()
        return result
    finally:
        if http is None:
            client.close()


# A 503 means "could not check now" (a node or a did:web host did not answer); the same request is safe to send again
# (a submission already taken answers 200 with the stored review), so it is, a few times, as Retry-After asks.
_SUBMIT_ATTEMPTS = 3
_MAX_RETRY_AFTER_SECONDS = 10.0


def _post(client: httpx.Client, url: str, body: Mapping[str, Any], sleep: Any = time.sleep) -> httpx.Response:
    for attempt in range(1, _SUBMIT_ATTEMPTS + 1):
        response = client.post(url, json=body)
        if response.status_code != 503 or attempt == _SUBMIT_ATTEMPTS:
            return response
        try:
            wait = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            wait = 1.0
        sleep(min(max(wait, 0.0), _MAX_RETRY_AFTER_SECONDS) if math.isfinite(wait) else 1.0)
    raise AssertionError("unreachable")  # pragma: no cover


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"status": response.status_code, "title": response.text[:500]}
    return body if isinstance(body, dict) else {"status": response.status_code, "detail": body}

"""Examples for every request and response body of the OpenAPI document.

Hand-written where a value must make sense together (a prepare request, a signed submission, an x402 receipt);
everything else is generated from the JSON schema with realistic values per field name, so a model that gains a
field still gets a complete example without anyone remembering to update this file.
"""

from __future__ import annotations

from typing import Any

ADDRESS = "0x5b38da6a701c568545dcfcb03fcb875f56beddc4"
SERVICE = "did:web:api.example.com"
UID = "0x8f3b5e2c71a0d94e6b1f0c7a2d3e4f5061728394a5b6c7d8e9f00112233445566"
TX = "0x2c9a6f0e51b8d7c4a3e2f1908d7c6b5a4938271605f4e3d2c1b0a99887766554"

RECEIPT_ENVELOPE = {
    "format": "eip712",
    "payload": {
        "version": 1,
        "network": "eip155:8453",
        "resourceUrl": "https://api.example.com/weather",
        "payer": ADDRESS,
        "issuedAt": 1796040000,
        "transaction": TX,
    },
    "signature": "0x" + "4e" * 64 + "1b",
}
RECEIPT_WRAPPER = {
    "proofType": "x402-receipt",
    "proofPurpose": "commercial-tx",
    "proofObject": RECEIPT_ENVELOPE,
    "version": 1,
}

# By component schema name (request and response bodies that reference it).
BY_SCHEMA: dict[str, Any] = {
    "PrepareIn": {
        "attester": ADDRESS,
        "review": {
            "subject": SERVICE,
            "version": "1.0",
            "ratingValue": 5,
            "reviewBody": "Fast and accurate; paid 0.01 USDC per call.",
            "screenshotUrls": [],
            # A real review carries the x402 receipt here (bare envelope like RECEIPT_ENVELOPE, or its proof wrapper):
            # checking it needs the service's did.json, so the example that "Try it out" sends has none.
            "proofs": [],
        },
        "allowUnsupported": False,
    },
    "SubmitIn": {
        "attester": ADDRESS,
        "data": "0x" + "00" * 31 + "c0",
        "deadline": 1796043600,
        "nonce": 0,
        "signature": "0x" + "7a" * 64 + "1c",
    },
}
# Request bodies without a component schema, by operation path.
BY_PATH: dict[str, Any] = {"/v1/proofs/verify": RECEIPT_WRAPPER}

PROBLEM_EXAMPLES: dict[str, tuple[str, str, str]] = {
    "400": ("malformed-body", "The request body is not valid JSON", ""),
    "404": ("not-found", "No such review", ""),
    "409": ("receipt-replayed", "The review or one of its proofs was rejected",
            "this receipt already backs review 3f2a9c0e7d4b4e0f8a1b2c3d4e5f6a7b"),
    "413": ("body-too-large", "Request body too large", ""),
    "422": ("payer-mismatch", "The review or one of its proofs was rejected",
            f"proofs[0]: receipt payer {ADDRESS} is not the attester 0x1111111111111111111111111111111111111111"),
    "429": ("rate-limited", "Too many requests for this attester", ""),
    "500": ("internal-error", "Internal error", ""),
    "503": ("fetch-timeout", "A check could not run; try again later",
            "did.json of did:web:api.example.com did not answer in time"),
}  # fmt: skip

_BY_NAME: dict[str, Any] = {
    "attester": ADDRESS,
    "reviewer": ADDRESS,
    "signer": ADDRESS,
    "payer": ADDRESS,
    "recipient": "0x51fe5faa6ffe843dd6af5e8a684f6a1264bf97a7",
    "didAddress": "0x51fe5faa6ffe843dd6af5e8a684f6a1264bf97a7",
    "subject": SERVICE,
    "subjectNormalized": SERVICE,
    "did": SERVICE,
    "uid": UID,
    "attestationUid": UID,
    "txHash": TX,
    "transaction": TX,
    "id": "3f2a9c0e7d4b4e0f8a1b2c3d4e5f6a7b",
    "reviewId": "3f2a9c0e7d4b4e0f8a1b2c3d4e5f6a7b",
    "supersededBy": None,
    "reviewBody": "Fast and accurate; paid 0.01 USDC per call.",
    "ratingValue": 5,
    "rating": 5,
    "proofType": "x402-receipt",
    "evidence": "verified",
    "tier": "did-document",
    "kind": "receipt",
    "format": "eip712",
    "status": "verified",
    "reason": None,
    "detail": "",
    "chainId": 8453,
    "eas": "0x4200000000000000000000000000000000000021",
    "verifyingContract": "0x4200000000000000000000000000000000000021",
    "schemaUid": "0x7ab3911527e5e47eaab9f5a2c571060026532dde8cb4398185553053963b2a47",
    "schema": "string subject,string version,uint8 ratingValue,string reviewBody,string[] screenshotUrls,"
    "string[] proofs",
    "name": "EAS",
    "version": "1.3.0",
    "paramsVersion": "v1",
    "score": 83.1,
    "lower90": 65.9,
    "confidence": 0.53,
    "priorMean": 0.7,
    "nextCursor": None,
    "cursor": None,
    "evidenceHash": "9b2c6f0e51b8d7c4a3e2f1908d7c6b5a4938271605f4e3d2c1b0a998877665544",
    "replayKey": "0x1d7c6b5a4938271605f4e3d2c1b0a99887766554433221100ffeeddccbbaa9988",
    "data": "0x" + "00" * 31 + "c0",
    "sort": "lower90",
    "position": 0,
    "screenshotUrls": [],
    "network": "eip155:8453",
    "asset": "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913",
    "payTo": "0x209693bc6afc0c5328ba36faf03c514ef312287c",
    "amount": "10000",
    "resourceUrl": "https://api.example.com/weather",
}
_TIME_WORDS = ("time", "Time", "At", "deadline", "asOf")


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        found: dict[str, Any] = components.get(ref.rsplit("/", 1)[1], {})
        return found
    return schema


def example_for(schema: dict[str, Any], components: dict[str, Any], *, name: str = "", depth: int = 0) -> Any:
    """A plausible value for ``schema`` (``name`` is the property it belongs to)."""
    schema = _resolve(schema, components)
    if "example" in schema:
        return schema["example"]
    if name in _BY_NAME and depth > 0:
        return _BY_NAME[name]
    if depth > 8:
        return None
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key, []) if _resolve(o, components).get("type") != "null"]
        if options:
            return example_for(options[0], components, name=name, depth=depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "default" in schema and schema["default"] not in (None, [], {}):
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: example_for(v, components, name=k, depth=depth + 1) for k, v in props.items()}
    if kind == "array":
        item = example_for(schema.get("items", {}), components, name=name, depth=depth + 1)
        n = schema.get("minItems", 1)
        return [item] * n if item is not None else []
    if kind == "integer":
        if any(w in name for w in _TIME_WORDS):
            return 1796040000
        return max(int(schema.get("minimum", 0)), 1) if "maximum" not in schema else int(schema["maximum"])
    if kind == "number":
        return float(schema.get("maximum", 0.5)) if schema.get("maximum", 1) <= 1 else 12.5
    if kind == "boolean":
        return name in ("verifiedPurchase", "signatureValid", "bound", "explained", "paymentBacked")
    if kind == "string":
        return "string" if not name else f"<{name}>"
    return None


def problem_example(status: str) -> dict[str, Any]:
    code, title, detail = PROBLEM_EXAMPLES.get(status, (f"http-{status}", "Error", ""))
    out: dict[str, Any] = {"type": f"urn:omatrust:problem:{code}", "title": title, "status": int(status), "code": code}
    if detail:
        out["detail"] = detail
    return out


def add_examples(schema: dict[str, Any]) -> None:
    """Give every request body, success body and problem body of ``schema`` an ``example`` (kept if present)."""
    components = schema.get("components", {}).get("schemas", {})
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for media in operation.get("requestBody", {}).get("content", {}).values():
                if "example" not in media and "examples" not in media:
                    media["example"] = _body_example(media.get("schema", {}), components, path)
            for status, response in operation.get("responses", {}).items():
                for kind, media in response.get("content", {}).items():
                    if "example" in media or "examples" in media:
                        continue
                    if kind == "application/problem+json":
                        media["example"] = problem_example(status)
                    else:
                        media["example"] = _body_example(media.get("schema", {}), components, path)


def _body_example(schema: dict[str, Any], components: dict[str, Any], path: str) -> Any:
    ref = schema.get("$ref", "")
    name = ref.rsplit("/", 1)[-1] if ref else ""
    if name in BY_SCHEMA:
        return BY_SCHEMA[name]
    if not ref and path in BY_PATH:
        return BY_PATH[path]
    return example_for(schema, components, depth=1)

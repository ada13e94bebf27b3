"""The OpenAPI document has an example on every request and response body (hand-written ones validate against
their models), and /docs + /redoc are served from this origin only (Chromium renders them offline in
tests/browser)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from service.api.schemas import PrepareIn, SubmitIn


def test_every_body_has_an_example(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    bodies = 0
    for path, item in spec["paths"].items():
        for method, op in item.items():
            contents = list(op.get("requestBody", {}).get("content", {}).items())
            contents += [(f"{status} {kind}", media) for status, r in op["responses"].items()
                         for kind, media in r.get("content", {}).items()]  # fmt: skip
            for kind, media in contents:
                assert "example" in media or "examples" in media, (method, path, kind)
                bodies += 1
            for status, r in op["responses"].items():
                problem = r.get("content", {}).get("application/problem+json")
                if problem is not None:
                    assert problem["example"]["status"] == int(status), (path, status)
    assert bodies >= 60


def test_request_examples_are_valid_requests(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    prepare = spec["paths"]["/v1/reviews/prepare"]["post"]["requestBody"]["content"]["application/json"]["example"]
    submit = spec["paths"]["/v1/reviews"]["post"]["requestBody"]["content"]["application/json"]["example"]
    PrepareIn.model_validate(prepare)
    SubmitIn.model_validate(submit)
    # "Try it out" works offline: the prepare example needs no look-up and is accepted as it is.
    assert client.post("/v1/reviews/prepare", json=prepare).status_code == 200
    verify = spec["paths"]["/v1/proofs/verify"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert verify["proofType"] == "x402-receipt"


def test_docs_and_redoc_load_nothing_from_elsewhere(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        resp = client.get(path)
        assert resp.status_code == 200
        refs = re.findall(r'(?:src|href)=["\']([^"\']+)', resp.text) + re.findall(r"url: ['\"]([^'\"]+)", resp.text)
        assert refs, path
        for ref in refs:
            assert ref.startswith("/"), (path, ref)
            if ref.startswith("/docs-assets/"):
                assert client.get(ref).status_code == 200, ref
        assert "fonts.googleapis" not in resp.text
        assert "cdn.jsdelivr" not in resp.text

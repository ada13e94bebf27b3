"""Cross-check kid → key with the published x402 TS SDK (``extractPublicKeyFromKid`` of @x402/extensions 2.27)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from tests.identity.keyfactory import CURVES, make_key
from tests.support.didweb_host import DidWebHost

INTEROP = Path(__file__).resolve().parents[1] / "interop"
pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(
        shutil.which("node") is None or not (INTEROP / "node_modules" / "@x402" / "extensions").exists(),
        reason="node or tests/interop/node_modules missing",
    ),
]

# Evaluated with cwd=tests/interop so the SDK and jose resolve from its node_modules.
_SCRIPT = """
import { extractPublicKeyFromKid } from "@x402/extensions/offer-receipt";
import * as jose from "jose";
const kids = JSON.parse(process.argv[1]);
const out = [];
for (const kid of kids) {
  try { out.push(await jose.exportJWK(await extractPublicKeyFromKid(kid))); }
  catch (e) { out.push({ error: String(e.message || e) }); }
}
console.log(JSON.stringify(out));
"""


def _sdk_jwks(kids: list[str]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", _SCRIPT, json.dumps(kids)],
        cwd=INTEROP,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _public(jwk: dict[str, Any]) -> dict[str, str]:
    return {k: jwk[k] for k in ("kty", "crv", "x", "y") if k in jwk}


def test_did_key_and_did_jwk_match_the_sdk() -> None:
    keys = [make_key(crv) for crv in CURVES]
    kids = [k.did_key for k in keys] + [f"{k.did_key}#{k.multibase}" for k in keys] + [k.did_jwk + "#0" for k in keys]
    resolver = DidResolver(fetcher=SafeFetcher(timeout=1))
    ours = [resolver.resolve_key(kid=kid)[0].jwk for kid in kids]
    assert ours == [_public(j) for j in _sdk_jwks(kids)]


def test_did_web_matches_the_sdk() -> None:
    # The SDK fetches localhost over http; our resolver over https — the test host answers both on one port.
    with DidWebHost() as host:
        a, b = make_key("P-256"), make_key("secp256k1")
        host.set_document(
            {
                "id": host.did,
                "verificationMethod": [
                    {
                        "id": f"{host.did}#key-1",
                        "type": "JsonWebKey2020",
                        "controller": host.did,
                        "publicKeyJwk": a.jwk,
                    },
                    {
                        "id": f"{host.did}#key-2",
                        "type": "Multikey",
                        "controller": host.did,
                        "publicKeyMultibase": b.multibase,
                    },
                ],
                "assertionMethod": [f"{host.did}#key-2"],
            }
        )
        kids = [f"{host.did}#key-1", f"{host.did}#key-2", host.did]
        fetcher = SafeFetcher(timeout=2, ca_file=host.ca_pem_path, insecure_hosts=frozenset({host.host}))
        ours = [DidResolver(fetcher=fetcher).resolve_key(kid=kid)[0].jwk for kid in kids]
        sdk = [_public(j) for j in _sdk_jwks(kids)]
        assert ours == sdk == [a.jwk, b.jwk, b.jwk]
        assert {r.tls for r in host.requests} == {True, False}

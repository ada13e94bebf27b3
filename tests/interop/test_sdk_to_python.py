"""The x402 TS SDK creates offers and receipts; our verifier accepts each with the same signer the SDK reports."""

from __future__ import annotations

from typing import Any

import pytest

from service.domain import ArtifactFormat, ArtifactKind, AuthTier, ProofStatus
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.proofs import parse_artifact, proof_wrapper
from service.workflows.verify import verify_artifact
from tests.interop.keys import ALGS
from tests.interop.peer import node_ready, run_peer
from tests.interop.scenario import KID_METHODS, PAYER, Keys, now, offer_spec, receipt_spec
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns

pytestmark = [pytest.mark.node, pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))]


def _sdk_artifacts(host: DidWebHost, keys: Keys) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(spec, SDK output) for offers and receipts in every format, alg and kid method."""
    url = f"{host.base_url}/weather?city=Paris"
    specs = [
        offer_spec(keys=keys, fmt="eip712", resource_url=url, pay_to=keys.evm_address),
        receipt_spec(keys=keys, fmt="eip712", resource_url=url),
        receipt_spec(keys=keys, fmt="eip712", resource_url=url, transaction=None),  # SDK signs transaction ""
    ]
    for alg in ALGS:
        for method in KID_METHODS:
            kid = keys.kid(method, alg, host.did)
            specs.append(offer_spec(keys=keys, fmt="jws", resource_url=url, pay_to=PAYER, alg=alg, kid=kid))
            specs.append(receipt_spec(keys=keys, fmt="jws", resource_url=url, alg=alg, kid=kid))
    web_kid = keys.kid("web", "ES256", host.did)
    specs.append(receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="ES256", kid=web_kid, transaction=None))
    created = run_peer("create", {"specs": specs})["artifacts"]
    return list(zip(specs, created, strict=True))


def test_every_sdk_artifact_verifies_here_with_the_same_signer(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    keys = Keys.new()
    host.set_document(keys.document(host.did))
    pairs = _sdk_artifacts(host, keys)
    assert len(pairs) == 3 + 2 * len(ALGS) * len(KID_METHODS) + 1

    for spec, made in pairs:
        outcome = verify_artifact(data=made["artifact"], resolver=resolver, controllers=controllers, now=now() + 60)
        expected_signer = made.get("signer") or made["kid"]
        where = f"{spec['kind']} {spec['format']} {spec.get('alg', '')} {spec.get('kid', '')[:40]}"
        assert outcome.status is ProofStatus.VERIFIED, (where, outcome)
        assert outcome.signature_valid, where
        assert outcome.signer == expected_signer, where
        assert outcome.kind is ArtifactKind(spec["kind"]), where
        assert outcome.format is ArtifactFormat(spec["format"]), where
        assert outcome.tier is AuthTier.DID_DOCUMENT, where
        assert outcome.evidence_hash, where
        assert outcome.replay_key, where

    # Our resolver fetched the service document over TLS (with SNI), once: later look-ups hit the cache.
    fetched = host.requests_for()
    assert len(fetched) == 1
    assert fetched[0].tls
    assert fetched[0].sni == "localhost"
    assert not any(r.tls is False for r in host.requests)
    # Every artifact was authorized by the document, so DNS (the next tier) was never asked.
    assert dns.queries == []


def test_our_eip712_digest_equals_the_sdk_digest(host: DidWebHost) -> None:
    keys = Keys.new()
    pairs = _sdk_artifacts(host, keys)
    eip712 = [made["artifact"] for spec, made in pairs if spec["format"] == "eip712"]
    digests = run_peer("digest", {"artifacts": eip712})["digests"]
    for artifact, digest in zip(eip712, digests, strict=True):
        assert "0x" + parse_artifact(data=artifact).signing_input.hex() == digest


def test_sdk_artifacts_inside_proof_wrappers_verify(
    host: DidWebHost, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    keys = Keys.new()
    host.set_document(keys.document(host.did))
    url = f"{host.base_url}/weather"
    specs = [
        receipt_spec(keys=keys, fmt="eip712", resource_url=url),
        receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="ES256K", kid=keys.kid("jwk", "ES256K", host.did)),
    ]
    for made in run_peer("create", {"specs": specs})["artifacts"]:
        wrapper = proof_wrapper(artifact=made["artifact"], kind=ArtifactKind.RECEIPT)
        outcome = verify_artifact(data=wrapper, resolver=resolver, controllers=controllers, now=now())
        assert outcome.status is ProofStatus.VERIFIED
        assert outcome.signer == (made.get("signer") or made["kid"])

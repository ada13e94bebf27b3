"""Authorization tiers end to end on SDK-made artifacts: did:web document (real HTTPS host), DNS ``_controllers``
TXT (real loopback DNS server), payTo of a signed offer, and none of them.
"""

from __future__ import annotations

from typing import Any

import pytest

from service.domain import AuthTier, ProofStatus, Reason
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.workflows.verify import verify_artifact, verify_batch
from tests.interop.peer import node_ready, run_peer
from tests.interop.scenario import Keys, now, offer_spec, receipt_spec
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns

pytestmark = [pytest.mark.node, pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))]

CONTROLLERS = "_controllers.localhost"  # the resourceUrl host of the loopback service is "localhost"


def _create(*specs: dict[str, Any]) -> list[dict[str, Any]]:
    return [made["artifact"] for made in run_peer("create", {"specs": list(specs)})["artifacts"]]


def test_did_document_lists_the_signer(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    keys = Keys.new()
    host.set_document(keys.document(host.did))
    url = f"{host.base_url}/weather"
    for artifact in _create(
        receipt_spec(keys=keys, fmt="eip712", resource_url=url),
        receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="EdDSA", kid=keys.kid("key", "EdDSA", "")),
    ):
        outcome = verify_artifact(data=artifact, resolver=resolver, controllers=controllers, now=now())
        assert (outcome.status, outcome.tier) == (ProofStatus.VERIFIED, AuthTier.DID_DOCUMENT)
    assert dns.queries == []  # first tier matched: DNS never asked


def test_dns_controllers_list_the_signer(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    keys = Keys.new()
    host.set_document(Keys.new().document(host.did))  # a document that lists other keys only
    jws_kid = keys.kid("jwk", "ES256", "")
    # Two records, one split into several character-strings (joined before parsing), plus an unrelated v=spf1.
    dns.set_txt(
        CONTROLLERS,
        ["v=1;controller=did:pkh:eip155:1:", keys.evm_address.lower()],
        f"v=1;controller={jws_kid.split('#')[0]}",
        "v=spf1 -all",
    )
    url = f"{host.base_url}/weather"
    eip712, jws = _create(
        receipt_spec(keys=keys, fmt="eip712", resource_url=url),
        receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="ES256", kid=jws_kid),
    )
    for artifact in (eip712, jws):
        outcome = verify_artifact(data=artifact, resolver=resolver, controllers=controllers, now=now())
        assert (outcome.status, outcome.tier) == (ProofStatus.VERIFIED, AuthTier.DNS_TXT), outcome
        assert outcome.evidence_hash
    assert dns.queries_for(CONTROLLERS) == 1  # answers are cached


def test_older_omatrust_record_name_still_counts(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    keys = Keys.new()
    host.set_document(Keys.new().document(host.did))
    dns.set_txt("_omatrust.localhost", f"v=1;controller=did:pkh:eip155:8453:{keys.evm_address}")
    (artifact,) = _create(receipt_spec(keys=keys, fmt="eip712", resource_url=f"{host.base_url}/x"))
    outcome = verify_artifact(data=artifact, resolver=resolver, controllers=controllers, now=now())
    assert (outcome.status, outcome.tier) == (ProofStatus.VERIFIED, AuthTier.DNS_TXT)


def test_offer_payto_authorizes_the_receipt_signer(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    service, merchant = Keys.new(), Keys.new()
    host.set_document(service.document(host.did))  # lists the service's keys, not the merchant's EVM key
    url = f"{host.base_url}/weather"
    offer, receipt = _create(
        offer_spec(
            keys=service,
            fmt="jws",
            resource_url=url,
            pay_to=merchant.evm_address,
            alg="ES256",
            kid=service.kid("web", "ES256", host.did),
        ),
        receipt_spec(keys=merchant, fmt="eip712", resource_url=f"{url}?city=Paris"),
    )
    alone = verify_artifact(data=receipt, resolver=resolver, controllers=controllers, now=now())
    assert (alone.status, alone.reason) == (ProofStatus.UNAUTHORIZED, Reason.SIGNER_NOT_AUTHORIZED)

    offer_outcome, receipt_outcome = verify_batch(
        items=[offer, receipt], resolver=resolver, controllers=controllers, now=now()
    )
    assert (offer_outcome.status, offer_outcome.tier) == (ProofStatus.VERIFIED, AuthTier.DID_DOCUMENT)
    assert (receipt_outcome.status, receipt_outcome.tier) == (ProofStatus.VERIFIED, AuthTier.OFFER_PAYTO)
    assert receipt_outcome.signer == merchant.evm_address
    assert receipt_outcome.evidence_hash == offer_outcome.replay_key


def test_an_unauthorized_offer_vouches_for_nobody(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    service, attacker = Keys.new(), Keys.new()
    host.set_document(service.document(host.did))
    url = f"{host.base_url}/weather"
    # Anyone can sign an offer naming their own payTo: an offer whose signer is not authorized proves nothing.
    offer, receipt = _create(
        offer_spec(keys=attacker, fmt="eip712", resource_url=url, pay_to=attacker.evm_address),
        receipt_spec(keys=attacker, fmt="eip712", resource_url=url),
    )
    offer_outcome, receipt_outcome = verify_batch(
        items=[offer, receipt], resolver=resolver, controllers=controllers, now=now()
    )
    assert offer_outcome.status is ProofStatus.UNAUTHORIZED
    assert (receipt_outcome.status, receipt_outcome.reason) == (ProofStatus.UNAUTHORIZED, Reason.SIGNER_NOT_AUTHORIZED)


def test_no_tier_lists_the_signer(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    keys = Keys.new()
    host.set_document(Keys.new().document(host.did))
    dns.set_txt(CONTROLLERS, "v=1;controller=did:pkh:eip155:1:0x0000000000000000000000000000000000000001")
    url = f"{host.base_url}/weather"
    for artifact in _create(
        receipt_spec(keys=keys, fmt="eip712", resource_url=url),
        receipt_spec(keys=keys, fmt="jws", resource_url=url, alg="ES256K", kid=keys.kid("key", "ES256K", "")),
    ):
        outcome = verify_artifact(data=artifact, resolver=resolver, controllers=controllers, now=now())
        assert (outcome.status, outcome.reason) == (ProofStatus.UNAUTHORIZED, Reason.SIGNER_NOT_AUTHORIZED)
        assert outcome.signature_valid
        assert outcome.tier is None
    assert dns.queries_for(CONTROLLERS) == 1  # every tier was checked before saying "unauthorized"


def test_dns_down_and_no_document_match_is_indeterminate_not_unauthorized(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver
) -> None:
    keys = Keys.new()
    host.set_document(Keys.new().document(host.did))
    dns.hang = True
    quick = ControllerResolver(nameservers=[dns.nameserver], timeout=0.3)
    (artifact,) = _create(receipt_spec(keys=keys, fmt="eip712", resource_url=f"{host.base_url}/x"))
    outcome = verify_artifact(data=artifact, resolver=resolver, controllers=quick, now=now())
    assert (outcome.status, outcome.reason) == (ProofStatus.INDETERMINATE, Reason.DNS_FAILED)
    assert outcome.signature_valid
    assert outcome.signer == keys.evm_address

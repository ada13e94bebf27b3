"""``service.workflows.verify`` against the real loopback HTTPS did:web host and DNS server (no Node needed).

Artifacts come from our issuer; the signer identities are checked against eth-account / the keys themselves.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from eth_account import Account

from service.domain import (
    ArtifactFormat,
    ArtifactKind,
    AuthTier,
    OfferPayload,
    ProofOutcome,
    ProofStatus,
    Reason,
    ReceiptPayload,
)
from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.proofs import sign_offer_eip712, sign_offer_jws, sign_receipt_eip712, sign_receipt_jws
from service.workflows.verify import check_artifact, verify_artifact, verify_batch
from tests.interop.keys import did_document, did_jwk, new_jwk
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns

NOW = 1_750_000_000
CONTROLLERS = "_controllers.localhost"




class Service:
    """One EVM key and one P-256 key; ``document()`` lists whichever the test wants."""

    def __init__(self, host: DidWebHost) -> None:
        self.host = host
        self.account = Account.create()
        self.jwk = new_jwk("ES256")
        self.url = f"{host.base_url}/weather?city=Paris"

    @property
    def web_kid(self) -> str:
        return f"{self.host.did}#key-1"

    def document(self, *, evm: bool = True, jwk: bool = True) -> dict[str, Any]:
        return did_document(
            self.host.did,
            jwks={"key-1": self.jwk} if jwk else {},
            addresses={"evm": self.account.address} if evm else {},
        )

    def receipt(self, *, payer: str = "0x857b06519E91e3A54538791bDbb0E22373e36b66") -> ReceiptPayload:
        return ReceiptPayload(
            version=1, network="eip155:8453", resource_url=self.url, payer=payer, issued_at=NOW - 60, transaction=""
        )

    def offer(self, *, pay_to: str) -> OfferPayload:
        return OfferPayload(
            version=1,
            resource_url=self.url,
            scheme="exact",
            network="eip155:8453",
            asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            pay_to=pay_to,
            amount="1000",
            valid_until=NOW + 600,
        )

    def eip712_receipt(self) -> dict[str, Any]:
        return sign_receipt_eip712(payload=self.receipt(), private_key=bytes(self.account.key))

    def jws_receipt(self, kid: str | None = None) -> dict[str, Any]:
        return sign_receipt_jws(payload=self.receipt(), private_jwk=self.jwk, kid=kid or self.web_kid)


def _verify(data: Any, resolver: DidResolver | None, controllers: ControllerResolver | None, **kw: Any) -> ProofOutcome:
    return verify_artifact(data=data, resolver=resolver, controllers=controllers, now=NOW, **kw)


# ---- tiers and look-ups -------------------------------------------------------------------------------------


def test_document_tier_needs_no_dns_even_when_dns_is_dead(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    service = Service(host)
    host.set_document(service.document())
    dns.hang = True  # would cost a timeout if asked
    for artifact, signer in (
        (service.eip712_receipt(), service.account.address),
        (service.jws_receipt(), service.web_kid),
    ):
        outcome = _verify(artifact, resolver, controllers)
        assert outcome.status is ProofStatus.VERIFIED
        assert outcome.tier is AuthTier.DID_DOCUMENT
        assert outcome.signer == signer
        assert outcome.checked_at == NOW
    assert dns.queries == []
    assert len(host.requests_for()) == 1  # kid document and service document are the same: fetched once


def test_dns_tier_after_the_document_lists_nobody(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    service = Service(host)
    host.set_document(service.document(evm=False))
    dns.set_txt(CONTROLLERS, f"v=1;controller=did:pkh:eip155:1:{service.account.address}")
    outcome = _verify(service.eip712_receipt(), resolver, controllers)
    assert (outcome.status, outcome.tier) == (ProofStatus.VERIFIED, AuthTier.DNS_TXT)


def test_missing_document_does_not_hide_a_dns_authorization(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    service = Service(host)  # no did.json at all (404)
    dns.set_txt(CONTROLLERS, f"v=1;controller=did:pkh:eip155:1:{service.account.address}")
    outcome = _verify(service.eip712_receipt(), resolver, controllers)
    assert (outcome.status, outcome.tier) == (ProofStatus.VERIFIED, AuthTier.DNS_TXT)


def test_failed_document_fetch_and_no_dns_match_is_indeterminate(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    # A look-up that failed might have listed the signer: never conclude "unauthorized" from it.
    service = Service(host)
    host.set(host.document_path(), b"busy", status=503)
    outcome = _verify(service.eip712_receipt(), resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INDETERMINATE, Reason.FETCH_HTTP_STATUS)
    assert outcome.signature_valid
    assert outcome.signer == service.account.address
    assert dns.queries_for(CONTROLLERS) == 1  # the next tier was still tried


def test_a_broken_document_authorizes_nobody(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    service = Service(host)
    host.set_document({**service.document(), "id": "did:web:someone.else"})
    outcome = _verify(service.eip712_receipt(), resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.UNAUTHORIZED, Reason.SIGNER_NOT_AUTHORIZED)
    # For a JWS whose kid lives in that document, the key cannot be had: the signature is not checkable.
    outcome = _verify(service.jws_receipt(), resolver, controllers)
    assert (outcome.status, outcome.reason) == (ProofStatus.INVALID, Reason.DID_DOCUMENT_ID_MISMATCH)


def test_dns_timeout_is_indeterminate(host: DidWebHost, dns: LoopbackDns, resolver: DidResolver) -> None:
    service = Service(host)
    host.set_document(service.document(evm=False))
    dns.hang = True
    quick = ControllerResolver(nameservers=[dns.nameserver], timeout=0.3)
    outcome = _verify(service.eip712_receipt(), resolver, quick)
    assert (outcome.status, outcome.reason) == (ProofStatus.INDETERMINATE, Reason.DNS_FAILED)


def test_offer_payto_via_batch_whatever_the_order(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    service, merchant = Service(host), Account.create()
    host.set_document(service.document(evm=False))
    offer = sign_offer_jws(payload=service.offer(pay_to=merchant.address), private_jwk=service.jwk, kid=service.web_kid)
    receipt = sign_receipt_eip712(payload=service.receipt(), private_key=bytes(merchant.key))
    receipt_outcome, offer_outcome = verify_batch(
        items=[receipt, offer], resolver=resolver, controllers=controllers, now=NOW
    )
    assert (offer_outcome.kind, offer_outcome.tier) == (ArtifactKind.OFFER, AuthTier.DID_DOCUMENT)
    assert (receipt_outcome.kind, receipt_outcome.tier) == (ArtifactKind.RECEIPT, AuthTier.OFFER_PAYTO)
    assert receipt_outcome.signer == merchant.address


def test_offer_payto_needs_an_offer_authorized_by_document_or_dns(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    service, merchant, other = Service(host), Account.create(), Account.create()
    host.set_document(service.document(evm=False))
    # Offer signed by `other` (not authorized) naming the merchant; then a chain: offer authorized via offer-payto.
    rogue = sign_offer_eip712(payload=service.offer(pay_to=merchant.address), private_key=bytes(other.key))
    receipt = sign_receipt_eip712(payload=service.receipt(), private_key=bytes(merchant.key))
    outcomes = verify_batch(items=[rogue, receipt], resolver=resolver, controllers=controllers, now=NOW)
    assert [o.status for o in outcomes] == [ProofStatus.UNAUTHORIZED, ProofStatus.UNAUTHORIZED]


# ---- offline and missing resolvers -----------------------------------------------------------------------------


def test_offline_checks_signatures_only_and_never_touches_the_network(host: DidWebHost, dns: LoopbackDns) -> None:
    service = Service(host)
    host.set_document(service.document())
    eip712 = _verify(service.eip712_receipt(), None, None, offline=True)
    assert (eip712.status, eip712.tier, eip712.signer) == (ProofStatus.VERIFIED, None, service.account.address)
    assert "authorization not checked" in eip712.detail
    local_kid = did_jwk(service.jwk)
    jwk = _verify(service.jws_receipt(kid=local_kid), None, None, offline=True)
    assert (jwk.status, jwk.tier, jwk.signer) == (ProofStatus.VERIFIED, None, local_kid)
    web = _verify(service.jws_receipt(), None, None, offline=True)
    assert (web.status, web.reason, web.signature_valid) == (ProofStatus.INDETERMINATE, Reason.LOOKUP_SKIPPED, False)
    assert host.requests == []
    assert dns.queries == []


def test_offline_still_rejects_bad_signatures(host: DidWebHost) -> None:
    service = Service(host)
    artifact = service.jws_receipt(kid=did_jwk(new_jwk("ES256")))  # kid names another key
    outcome = _verify(artifact, None, None, offline=True)
    assert (outcome.status, outcome.reason) == (ProofStatus.INVALID, Reason.SIGNATURE_INVALID)


def test_no_resolvers_means_lookups_skipped(host: DidWebHost) -> None:
    outcome = _verify(Service(host).eip712_receipt(), None, None)
    assert (outcome.status, outcome.reason) == (ProofStatus.INDETERMINATE, Reason.LOOKUP_SKIPPED)
    assert outcome.signature_valid


# ---- parse failures ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"{not json", ProofStatus.INVALID, Reason.MALFORMED_JSON),
        ([1, 2], ProofStatus.INVALID, Reason.MALFORMED_ARTIFACT),
        ({"format": "cbor", "signature": "x"}, ProofStatus.UNSUPPORTED, Reason.UNSUPPORTED_FORMAT),
        ({"proofType": "tx-interaction", "proofObject": {}}, ProofStatus.UNSUPPORTED, Reason.UNSUPPORTED_PROOF_TYPE),
    ],
)
def test_unparsable_input_has_no_kind_and_makes_no_lookup(
    data: Any, status: ProofStatus, reason: Reason, host: DidWebHost, resolver: DidResolver
) -> None:
    checked = check_artifact(data=data, resolver=resolver, controllers=None, now=NOW)
    assert (checked.outcome.status, checked.outcome.reason) == (status, reason)
    assert checked.artifact is None
    assert checked.outcome.kind is None
    assert checked.outcome.replay_key is None
    assert host.requests == []


# ---- concurrency ------------------------------------------------------------------------------------------------


def test_concurrent_calls_agree_with_sequential_ones(
    host: DidWebHost, dns: LoopbackDns, resolver: DidResolver, controllers: ControllerResolver
) -> None:
    services = [Service(host) for _ in range(3)]
    host.set_document(services[0].document())
    dns.set_txt(CONTROLLERS, f"v=1;controller=did:pkh:eip155:1:{services[1].account.address}")
    items = [s.eip712_receipt() for s in services] + [services[0].jws_receipt(), services[2].jws_receipt()]
    items = items * 8
    expected = [_verify(item, resolver, controllers) for item in items]
    assert {(o.status, o.tier) for o in expected} == {
        (ProofStatus.VERIFIED, AuthTier.DID_DOCUMENT),
        (ProofStatus.VERIFIED, AuthTier.DNS_TXT),
        (ProofStatus.UNAUTHORIZED, None),
        (ProofStatus.INVALID, None),  # services[2]'s key is not key-1 of the document
    }

    fresh = DidResolver(
        fetcher=SafeFetcher(timeout=3.0, ca_file=host.ca_pem_path, insecure_hosts=frozenset({host.host}))
    )
    fresh_dns = ControllerResolver(nameservers=[dns.nameserver], timeout=1.0)
    start = threading.Barrier(8)

    def run(item: Any) -> ProofOutcome:
        return _verify(item, fresh, fresh_dns)

    def first(item: Any) -> ProofOutcome:
        start.wait()
        return run(item)

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(first, items[:8])) + list(pool.map(run, items[8:]))
    assert got == expected
    assert all(o.format in (ArtifactFormat.EIP712, ArtifactFormat.JWS) for o in got)

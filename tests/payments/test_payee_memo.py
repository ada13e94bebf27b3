"""The payee decision memo (service.workflows.payment_check.PayeeMemo): a repeat is served without deciding again
only while the identity caches still give the answers the decision was made on — a did.json re-fetched after the
resolver's TTL is a new answer and is decided again; a decision whose look-up failed is never remembered. Real
did:web host on loopback, the resolver on a test clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account

from service.cli.demo_kit import Merchant
from service.domain import ControllerRecord, Reason
from service.errors import CouldNotCheck, DnsFailed
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.verdicts.payment import service_probe
from service.workflows import payment_check
from service.workflows.payment_check import PayeeMemo
from tests.support.didweb_host import DidWebHost


@pytest.fixture
def decisions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Addresses decided (not served from the memo), in order."""
    made: list[str] = []
    decide = payment_check.payee_check

    def counted(**kw: Any) -> Callable[[str], bool]:
        inner = decide(**kw)

        def is_payee(address: str) -> bool:
            made.append(address)
            return inner(address)

        return is_payee

    monkeypatch.setattr(payment_check, "payee_check", counted)
    return made


def _resolver(didweb: DidWebHost, now: list[float]) -> DidResolver:
    fetcher = SafeFetcher(timeout=3.0, insecure_hosts=frozenset({didweb.host}), ca_file=didweb.ca_pem_path)
    return DidResolver(fetcher=fetcher, ttl=60, clock=lambda: now[0])


class _NoRecord:
    """DNS: the host lists no controllers."""

    def lookup(self, *, domain: str) -> ControllerRecord | None:
        return None


def test_a_repeat_is_served_until_the_identity_cache_moves_on(didweb: DidWebHost, decisions: list[str]) -> None:
    now = [1000.0]
    resolver = _resolver(didweb, now)
    merchant = Merchant(host=didweb.host)
    didweb.set_document(merchant.did_document())
    stranger = Account.create().address
    is_payee = PayeeMemo().check(artifact=service_probe(merchant.did), documents=resolver,
                                 controllers=_NoRecord())  # fmt: skip
    assert (is_payee(merchant.address), is_payee(stranger)) == (True, False)
    assert (is_payee(merchant.address.lower()), is_payee(stranger)) == (True, False)  # served: no new decision
    assert decisions == [merchant.address, stranger]

    # The service rotates its key. Until the resolver's cache entry expires every look-up still sees the old
    # document (the identity cache's own staleness) and so does the memo; once it is re-fetched, the memo decides
    # again on the new document at once.
    rotated = Merchant(host=didweb.host)
    didweb.set_document(rotated.did_document())
    assert is_payee(merchant.address) is True
    assert len(decisions) == 2
    now[0] += 61
    assert (is_payee(merchant.address), is_payee(rotated.address)) == (False, True)
    assert decisions[2:] == [merchant.address, rotated.address]


class _DnsDown:
    def lookup(self, *, domain: str) -> ControllerRecord | None:
        raise DnsFailed(Reason.DNS_FAILED, f"{domain}: timed out")


def test_a_decision_whose_look_up_failed_is_not_remembered(didweb: DidWebHost, decisions: list[str]) -> None:
    resolver = _resolver(didweb, [1000.0])
    merchant = Merchant(host=didweb.host)
    didweb.set_document(merchant.did_document())
    memo = PayeeMemo()
    is_payee = memo.check(artifact=service_probe(merchant.did), documents=resolver, controllers=_DnsDown())
    stranger = Account.create().address
    for _ in range(2):  # not in the document, and the DNS tier could not be asked: unknown, each time
        with pytest.raises(CouldNotCheck):
            is_payee(stranger)
    assert is_payee(merchant.address) is True  # the document tier decides before DNS is asked
    assert is_payee(merchant.address) is True
    assert decisions == [stranger, stranger, merchant.address]
    # Other look-up sources (re-verification's stored evidence, say) never get this memo's answers.
    other = memo.check(artifact=service_probe(merchant.did), documents=_resolver(didweb, [1000.0]), controllers=None)
    assert other(merchant.address) is True
    assert decisions == [stranger, stranger, merchant.address, merchant.address]

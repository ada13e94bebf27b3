"""Acceptance (issue 14): on anvil with every anchored schema registered, each on-chain tier authorizes a receipt
signer that no live look-up authorizes (the merchant publishes no did.json and no DNS record), the time rules hold
as of the receipt's issuedAt, and a Linked Identifier lets a different wallet pay — each case with its reason."""

from __future__ import annotations

import pytest
from eth_account import Account

from service.chain import omatrust_codec as oc
from service.chain.codec import schema_uid
from service.workflows.reverify import ReverifyOptions, reverify
from tests.authorization.conftest import Env

pytestmark = pytest.mark.anvil


def _pkh(address: str, chain: int = 1) -> str:
    return f"did:pkh:eip155:{chain}:{address}"


def _controller(env: Env, t0: int) -> str:
    """An address an approved witness saw controlling the subject long ago (it may then bind keys)."""
    controller = Account.create().address
    env.witness_attest(env.witness, subject=env.subject, controller=_pkh(controller, 31337), observed_at=t0 - 5000)
    return controller


def test_key_binding_tier_and_revocation_as_of_issued_at(env: Env) -> None:
    t0 = env.now()
    controller = _controller(env, t0)
    kb_uid = schema_uid(oc.KEY_BINDING_SCHEMA, revocable=True)

    bound, revoked_before, revoked_after = env.merchant(), env.merchant(), env.merchant()
    kb = env.key_binding(controller, subject=env.subject, key_id=_pkh(bound.address), effective_at=t0 - 1000)
    payer = Account.create().address
    ok = env.review(payer, proofs=[bound.receipt(payer=payer, issued_at=t0 - 60)])

    kb_before = env.key_binding(controller, subject=env.subject, key_id=_pkh(revoked_before.address, 8453),
                                effective_at=t0 - 1000)  # fmt: skip
    revoked_at = env.revoke(controller, schema=kb_uid, uid=kb_before.uid)
    payer2 = Account.create().address
    late = env.review(payer2, proofs=[revoked_before.receipt(payer=payer2, issued_at=revoked_at + 1)])

    kb_after = env.key_binding(controller, subject=env.subject, key_id=_pkh(revoked_after.address),
                               effective_at=t0 - 1000)  # fmt: skip
    payer3 = Account.create().address
    receipt = revoked_after.receipt(payer=payer3, issued_at=env.now() - 1)
    env.revoke(controller, schema=kb_uid, uid=kb_after.uid)
    early = env.review(payer3, proofs=[receipt])

    env.sync()
    row, proof = env.proof(ok.uid)
    assert (proof.status, proof.tier, proof.bound, row.verified_purchase) == ("verified", "key-binding", True, True)
    assert proof.evidence_hash == kb.uid[2:]
    assert kb.uid in proof.detail
    assert f"valid from {t0 - 1000}" in proof.detail
    _, proof = env.proof(late.uid)
    assert (proof.status, proof.reason) == ("unauthorized", "attestation-revoked")
    assert env.stored(kb_before.uid).revocation_time == revoked_at  # from the Revoked event
    _, proof = env.proof(early.uid)
    assert (proof.status, proof.tier) == ("verified", "key-binding")  # revoked after issuedAt: still counts

    # Re-verification (live look-ups only; the did.json still does not list the key) keeps the on-chain verdicts.
    report = reverify(engine=env.engine, resolver=env.rt.resolver, controllers=env.rt.controllers,
                      policy=env.rt.policy, options=ReverifyOptions(workers=0))  # fmt: skip
    assert report.proofs >= 3
    for review in (ok, early):
        row, proof = env.proof(review.uid)
        assert (proof.status, proof.tier, row.verified_purchase) == ("verified", "key-binding", True)
    assert env.proof(late.uid)[1].status == "unauthorized"  # (its reason: see docs/authorization.md, reverify)


def test_controller_witness_tier(env: Env) -> None:
    t0 = env.now()
    seen, seen_late, unapproved = env.merchant(), env.merchant(), env.merchant()
    cw = env.witness_attest(env.witness, subject=env.subject, controller=_pkh(seen.address), observed_at=t0 - 100)
    env.witness_attest(env.witness, subject=env.subject, controller=_pkh(seen_late.address), observed_at=t0 + 100)
    stranger = Account.create().address
    env.witness_attest(stranger, subject=env.subject, controller=_pkh(unapproved.address), observed_at=t0 - 100)
    reviews = {}
    for name, m in (("seen", seen), ("late", seen_late), ("unapproved", unapproved)):
        payer = Account.create().address
        reviews[name] = env.review(payer, proofs=[m.receipt(payer=payer, issued_at=t0 - 10)])

    env.sync()
    _, proof = env.proof(reviews["seen"].uid)
    assert (proof.status, proof.tier, proof.evidence_hash) == ("verified", "controller-witness", cw.uid[2:])
    _, proof = env.proof(reviews["late"].uid)
    assert (proof.status, proof.reason) == ("unauthorized", "attestation-not-effective")
    _, proof = env.proof(reviews["unapproved"].uid)
    assert (proof.status, proof.reason) == ("unauthorized", "issuer-not-approved")


def test_no_attestation_no_live_lookup_is_unauthorized(env: Env) -> None:
    m = env.merchant()
    payer = Account.create().address
    review = env.review(payer, proofs=[m.receipt(payer=payer, issued_at=env.now() - 10)])
    env.sync()
    _, proof = env.proof(review.uid)
    assert (proof.status, proof.reason) == ("unauthorized", "signer-not-authorized")


def test_linked_identifier_binds_a_different_payer(env: Env) -> None:
    t0 = env.now()
    m = env.merchant()
    env.witness_attest(env.witness, subject=env.subject, controller=_pkh(m.address), observed_at=t0 - 100)
    li_uid = schema_uid(oc.LINKED_IDENTIFIER_SCHEMA, revocable=True)

    payer, attester = Account.create().address, Account.create().address
    link = env.link(payer, subject=_pkh(payer, 8453), linked_id=_pkh(attester))
    linked = env.review(attester, proofs=[m.receipt(payer=payer, issued_at=t0 - 10)])

    payer2, attester2 = Account.create().address, Account.create().address
    link2 = env.link(payer2, subject=_pkh(payer2), linked_id=_pkh(attester2))
    env.revoke(payer2, schema=li_uid, uid=link2.uid)
    revoked = env.review(attester2, proofs=[m.receipt(payer=payer2, issued_at=t0 - 10)])

    payer3, attester3 = Account.create().address, Account.create().address
    env.link(attester3, subject=_pkh(payer3), linked_id=_pkh(attester3))  # the attester's own claim: proves nothing
    claimed = env.review(attester3, proofs=[m.receipt(payer=payer3, issued_at=t0 - 10)])

    env.sync()
    for rerun in (False, True):
        if rerun:  # re-verification (no attestation look-ups) keeps the link's binding and the refusals
            reverify(engine=env.engine, resolver=env.rt.resolver, controllers=env.rt.controllers,
                     policy=env.rt.policy, options=ReverifyOptions(workers=0))  # fmt: skip
        row, proof = env.proof(linked.uid)
        assert (proof.status, proof.bound, row.verified_purchase) == ("verified", True, True)
        assert rerun or f"linked-identifier {link.uid}" in proof.detail
        for review in (revoked, claimed):
            row, proof = env.proof(review.uid)
            assert (proof.status, proof.bound, proof.reason, row.verified_purchase) == (
                "verified", False, "payer-mismatch", False)  # fmt: skip

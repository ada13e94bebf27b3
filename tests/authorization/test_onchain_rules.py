"""The on-chain authorization rules (service.verdicts.onchain), unit level with attestations in memory; the same
rules against anvil + PostgreSQL are in test_acceptance.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from service.domain import AuthTier, Reason
from service.trust_anchors import load_trust_anchors
from service.verdicts.onchain import (
    Attested,
    ControllerWitness,
    KeyBinding,
    LinkedIdentifier,
    OnchainMiss,
    OnchainVouch,
    Signer,
    by_controller_witness,
    by_key_binding,
    names_signer,
    payer_link,
    subject_key,
)

SERVICE = "did:web:shop.example"
SIGNER = "0x" + "5" * 40
ATTESTER = "0x" + "a" * 40
PAYER = "0x" + "b" * 40
WITNESS = "0x96fa5ab5E519641bD8A840A6b26D17DB7497618b"  # approved in the built-in anchors
ANCHORS = load_trust_anchors()


@dataclass
class Memory:
    kbs: list[Attested[KeyBinding]] = field(default_factory=list)
    ws: list[Attested[ControllerWitness]] = field(default_factory=list)
    lis: list[Attested[LinkedIdentifier]] = field(default_factory=list)

    def key_bindings(self, *, subject: str) -> Sequence[Attested[KeyBinding]]:
        return [a for a in self.kbs if subject_key(a.record.subject) == subject]

    def controller_witnesses(self, *, subject: str) -> Sequence[Attested[ControllerWitness]]:
        return [a for a in self.ws if subject_key(a.record.subject) == subject]

    def linked_identifiers(self, *, subject: str) -> Sequence[Attested[LinkedIdentifier]]:
        return [a for a in self.lis if subject_key(a.record.subject) == subject]


def kb(*, key: str = f"did:pkh:eip155:8453:{SIGNER}", purpose: tuple[str, ...] = ("assertionMethod",),
       effective: int = 100, expires: int = 0, revoked: int = 0, subject: str = SERVICE,
       attester: str = WITNESS) -> Attested[KeyBinding]:  # fmt: skip
    return Attested("0x" + "01" * 32, attester, 100, revoked, KeyBinding(subject, key, "", purpose, (), 100,
                                                                      effective, expires))  # fmt: skip


def witness(*, attester: str = WITNESS, observed: int = 100, controller: str = f"did:pkh:eip155:1:{SIGNER}",
            subject: str = SERVICE) -> Attested[ControllerWitness]:  # fmt: skip
    return Attested(
        "0x" + "02" * 32, attester, observed, 0, ControllerWitness(subject, controller, "dns-txt", observed)
    )


def _kb(memory: Memory, at: int = 200) -> OnchainVouch | OnchainMiss | None:
    return by_key_binding(service_did=SERVICE, signer=Signer(address=SIGNER), at=at, lookup=memory, anchors=ANCHORS)


def test_identifier_match() -> None:
    s = Signer(address=SIGNER)
    assert names_signer(f"did:pkh:eip155:1:{SIGNER.upper().replace('X', 'x')}", s)
    assert names_signer(f"did:pkh:eip155:66238:{SIGNER}", s)  # same address, any chain
    assert not names_signer(f"did:pkh:eip155:1:{ATTESTER}", s)
    assert names_signer("did:web:shop.example#k1", Signer(kid="did:web:shop.example#k1"))
    assert names_signer("did:web:shop.example", Signer(kid="did:web:shop.example#k1"))
    assert not names_signer("did:web:other.example", Signer(kid="did:web:shop.example#k1"))


def test_key_binding_issuer_must_speak_for_the_subject() -> None:
    # attester neither the subject, nor an approved key-binding issuer, nor a witnessed controller
    miss = _kb(Memory(kbs=[kb(attester=ATTESTER)]))
    assert isinstance(miss, OnchainMiss)
    assert miss.reason is Reason.ISSUER_NOT_APPROVED
    # an approved witness saw the attester as a controller of the subject: its binding counts
    memory = Memory(kbs=[kb(attester=ATTESTER)], ws=[witness(controller=f"did:pkh:eip155:1:{ATTESTER}")])
    got = _kb(memory)
    assert isinstance(got, OnchainVouch)
    assert got.tier is AuthTier.KEY_BINDING
    assert (got.since, got.until) == (100, None)


def _witnessed(*bindings: Attested[KeyBinding]) -> Memory:
    return Memory(kbs=list(bindings), ws=[witness(controller=f"did:pkh:eip155:1:{WITNESS}", observed=50)])


def test_key_binding_window_and_revocation() -> None:
    assert isinstance(_kb(_witnessed(kb())), OnchainVouch)
    revoked_before = _kb(_witnessed(kb(revoked=150)))
    assert isinstance(revoked_before, OnchainMiss)
    assert revoked_before.reason is Reason.ATTESTATION_REVOKED
    assert isinstance(_kb(_witnessed(kb(revoked=250))), OnchainVouch)  # revoked after issuedAt: still counts
    late = _kb(_witnessed(kb(effective=201)))
    assert isinstance(late, OnchainMiss)
    assert late.reason is Reason.ATTESTATION_NOT_EFFECTIVE
    expired = _kb(_witnessed(kb(expires=200)))  # issuedAt < expiresAt, strictly
    assert isinstance(expired, OnchainMiss)
    assert expired.reason is Reason.ATTESTATION_NOT_EFFECTIVE
    purpose = _kb(_witnessed(kb(purpose=("keyAgreement",))))
    assert isinstance(purpose, OnchainMiss)
    assert purpose.reason is Reason.KEY_PURPOSE_MISMATCH
    assert _kb(_witnessed(kb(key=f"did:pkh:eip155:1:{ATTESTER}"))) is None  # names someone else
    assert _kb(_witnessed(kb(subject="did:web:other.example"))) is None


def _w(memory: Memory, at: int = 200) -> OnchainVouch | OnchainMiss | None:
    return by_controller_witness(service_did=SERVICE, signer=Signer(address=SIGNER), at=at, lookup=memory,
                                 anchors=ANCHORS)  # fmt: skip


def test_controller_witness() -> None:
    got = _w(Memory(ws=[witness()]))
    assert isinstance(got, OnchainVouch)
    assert got.tier is AuthTier.CONTROLLER_WITNESS
    assert got.since == 100
    after = _w(Memory(ws=[witness(observed=201)]))
    assert isinstance(after, OnchainMiss)
    assert after.reason is Reason.ATTESTATION_NOT_EFFECTIVE
    unapproved = _w(Memory(ws=[witness(attester=ATTESTER)]))
    assert isinstance(unapproved, OnchainMiss)
    assert unapproved.reason is Reason.ISSUER_NOT_APPROVED
    assert _w(Memory()) is None


def li(
    *, attester: str = PAYER, linked: str = ATTESTER, revoked: int = 0, expires: int = 0
) -> Attested[LinkedIdentifier]:
    return Attested("0x" + "03" * 32, attester, 100, revoked,
                    LinkedIdentifier(f"did:pkh:eip155:8453:{PAYER}", f"did:pkh:eip155:1:{linked}", "", (), 100, 0,
                                     expires))  # fmt: skip


def test_payer_link() -> None:
    got = payer_link(payer=PAYER, attester=ATTESTER, at=200, lookup=Memory(lis=[li()]))
    assert isinstance(got, OnchainVouch)
    assert got.tier is AuthTier.LINKED_IDENTIFIER
    revoked = payer_link(payer=PAYER, attester=ATTESTER, at=200, lookup=Memory(lis=[li(revoked=150)]))
    assert isinstance(revoked, OnchainMiss)
    assert revoked.reason is Reason.ATTESTATION_REVOKED
    # made by the attester alone: proves nothing
    assert payer_link(payer=PAYER, attester=ATTESTER, at=200, lookup=Memory(lis=[li(attester=ATTESTER)])) is None
    assert payer_link(payer=PAYER, attester=SIGNER, at=200, lookup=Memory(lis=[li()])) is None
    binding = Attested("0x" + "04" * 32, PAYER, 100, 0,
                       KeyBinding(f"did:pkh:eip155:1:{PAYER}", f"did:pkh:eip155:1:{ATTESTER}", "",
                                  ("assertionMethod",), (), 100, 0, 0))  # fmt: skip
    got = payer_link(payer=PAYER, attester=ATTESTER, at=200, lookup=Memory(kbs=[binding]))
    assert isinstance(got, OnchainVouch)
    assert got.tier is AuthTier.KEY_BINDING

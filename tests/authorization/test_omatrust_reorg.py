"""The OMATrust indexer under a reorg on a real anvil node (``evm_snapshot`` / ``evm_revert`` drop blocks and their
transactions): Key Bindings, Controller Witnesses, Linked Identifiers, review responses and ``Revoked`` events
stored from orphaned blocks are undone, canonical ones kept, and the store then equals a fresh sync of the
canonical chain (every field but the time it was seen), including response authorization judged again."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlmodel import Session, select

from service.chain import omatrust_codec as oc
from service.chain.codec import schema_uid
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.store.tables import IndexerProgressRow, OmatrustAttestationRow
from service.workflows.omatrust_sync import CHECKPOINT
from tests.authorization.conftest import Env, _skip_history
from tests.support.db import fresh_database_url

pytestmark = pytest.mark.anvil
KB_SCHEMA = schema_uid(oc.KEY_BINDING_SCHEMA, revocable=True)
LINK_SCHEMA = schema_uid(oc.LINKED_IDENTIFIER_SCHEMA, revocable=True)


def _store(env: Env) -> dict[str, Any]:
    with Session(env.engine) as s:
        rows = s.exec(select(OmatrustAttestationRow)).all()
        return {r.uid: (r.kind, r.status, r.reason, r.attester, r.subject_key, r.ref_uid, r.attestation_time,
                        r.revocation_time, r.block_number, r.block_hash, r.fields) for r in rows}  # fmt: skip


def _checkpoint(env: Env) -> int:
    with Session(env.engine) as s:
        row = s.get(IndexerProgressRow, CHECKPOINT)
        assert row is not None
        return int(row.last_block)


def test_reorg_undoes_orphaned_attestations_and_revocations(env: Env, tmp_path: Path) -> None:
    start = _checkpoint(env)  # the fixture starts both indexers here
    t0 = env.now()
    owner, other, linker = (Account.create().address for _ in range(3))
    m = env.merchant()
    # canonical before the fork: a binding, a link, a review and an (unauthorized) response to it
    kb1 = env.key_binding(owner, subject=f"did:pkh:eip155:1:{owner}", key_id=f"did:pkh:eip155:1:{other}")
    link1 = env.link(linker, subject=f"did:pkh:eip155:1:{linker}", linked_id=f"did:pkh:eip155:1:{other}")
    payer = Account.create().address
    review = env.review(payer, proofs=[m.receipt(payer=payer, issued_at=t0 - 10)])
    env.response(owner, review_uid=review.uid, body="before the fork")
    env.sync()
    snapshot = env.node.rpc("evm_snapshot")

    # to be orphaned: the binding and the link revoked, a witness making ``owner`` a controller, an authorized
    # response, another binding and a reject (undecodable data under the anchored witness schema)
    env.revoke(owner, schema=KB_SCHEMA, uid=kb1.uid)
    env.revoke(linker, schema=LINK_SCHEMA, uid=link1.uid)
    witness = env.witness_attest(env.witness, subject=env.subject, controller=f"did:pkh:eip155:1:{owner}",
                                 observed_at=t0 - 50)  # fmt: skip
    orphan_response = env.response(owner, review_uid=review.uid, body="orphaned answer")
    kb2 = env.key_binding(other, subject=f"did:pkh:eip155:1:{other}", key_id=f"did:pkh:eip155:1:{owner}")
    junk = env.attest(other, uid=schema_uid(oc.CONTROLLER_WITNESS_SCHEMA), data=b"\x01\x02",
                      recipient=other, revocable=False)  # fmt: skip
    env.sync()
    before = _store(env)
    assert {witness.uid, orphan_response.uid, kb2.uid, junk.uid} <= set(before)
    assert before[orphan_response.uid][1] == "authorized"
    assert before[kb1.uid][7] > 0  # revoked, in a block about to be orphaned
    assert before[link1.uid][7] > 0

    env.node.rpc("evm_revert", [snapshot])
    # the canonical chain goes on differently: only the link is revoked; ``owner`` answers again without a witness
    env.revoke(linker, schema=LINK_SCHEMA, uid=link1.uid)
    answer = env.response(owner, review_uid=review.uid, body="after the fork")
    kb3 = env.key_binding(owner, subject=f"did:pkh:eip155:1:{owner}", key_id=f"did:pkh:eip155:1:{linker}")
    env.node.rpc("anvil_mine", ["0x8"])  # past the old checkpoint: its number exists with another hash
    env.sync()
    after = _store(env)
    assert not {witness.uid, orphan_response.uid, kb2.uid, junk.uid} & set(after)
    assert after[kb1.uid][7] == 0  # its revocation was orphaned
    assert after[link1.uid][7] > 0  # revoked again on the canonical chain
    assert after[answer.uid][1] == "unauthorized"  # the witness that authorized the orphaned answer is gone
    assert kb3.uid in after
    assert _checkpoint(env) == int(env.node.rpc("eth_blockNumber"), 16)

    (tmp_path / "fresh").mkdir()
    with fresh_database_url(tmp_path / "fresh") as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        fresh = dataclasses.replace(env, engine=engine, rt=dataclasses.replace(env.rt, engine=engine))
        _skip_history(fresh, start)
        fresh.sync()
        canonical = _store(fresh)
        engine.dispose()
    assert after == canonical

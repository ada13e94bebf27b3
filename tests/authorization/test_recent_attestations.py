"""The per-process cache of stored OMATrust attestations (``RecentAttestations``) that submissions and prepares
share: it saves the read while the verdict holds, never weakens a verdict (a judgement on reused rows that does not
verify and bind every proof is judged again on fresh rows), expires after its TTL, is cleared by this process's sync
and witness writes, and does not keep a read that a clear overtook."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import event

from service.store.omatrust import RecentAttestations, StoredAttestations
from service.workflows.sync import ReviewIndexer, sync_chain
from tests.authorization.conftest import Env
from tests.authorization.test_acceptance import _controller, _pkh

pytestmark = pytest.mark.anvil


@pytest.fixture
def reads(env: Env) -> Iterator[list[str]]:
    """The subject look-ups run against ``omatrust_attestations`` (one entry per statement)."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("SELECT omatrust_attestations.kind, omatrust_attestations.uid,"):  # _OF_SUBJECT
            seen.append(statement)

    event.listen(env.engine, "before_cursor_execute", count)
    yield seen
    event.remove(env.engine, "before_cursor_execute", count)


def _evidence(env: Env, api: TestClient, signer: Any, t0: int) -> str:
    """The evidence class prepare finds for a receipt ``signer`` signed (a receipt no tier vouches for is
    ``unauthorized``: prepare reports it, submit would refuse it)."""
    payer = Account.create().address
    body = {"attester": payer, "review": {"subject": env.subject, "ratingValue": 5,
                                          "proofs": [signer.receipt(payer=payer, issued_at=t0 - 60)]}}  # fmt: skip
    resp = api.post("/v1/reviews/prepare", json=body)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["evidence"])


def test_reused_while_the_verdict_holds_and_read_again_before_any_weaker_one(
    env: Env, api: TestClient, reads: list[str]
) -> None:
    now = [1000.0]
    env.rt.onchain_recent.clock = lambda: now[0]  # the API's runtime shares it
    t0 = env.now()
    controller = _controller(env, t0)
    bound, elsewhere = env.merchant(), env.merchant()
    env.key_binding(controller, subject=env.subject, key_id=_pkh(bound.address), effective_at=t0 - 1000)
    env.sync()

    assert _evidence(env, api, bound, t0) == "verified"
    assert _evidence(env, api, bound, t0) == "verified"
    assert len(reads) == 1  # the second prepare reused the rows
    now[0] += 2.01
    assert _evidence(env, api, bound, t0) == "verified"
    assert len(reads) == 2  # older than the TTL: read again

    assert _evidence(env, api, elsewhere, t0) == "unauthorized"
    assert len(reads) == 3  # reused rows did not vouch: judged again on fresh rows
    env.key_binding(controller, subject=env.subject, key_id=_pkh(elsewhere.address), effective_at=t0 - 1000)
    other_process = dataclasses.replace(env.rt, onchain_recent=RecentAttestations(ttl=2.0))
    sync_chain(rt=other_process, indexer=ReviewIndexer(client=env.rt.eas))  # this process's cache is not cleared
    assert _evidence(env, api, elsewhere, t0) == "verified"  # at once, although the cached rows miss the binding


def test_this_process_sync_and_witness_clear_it(env: Env, api: TestClient, reads: list[str]) -> None:
    env.rt.onchain_recent.clock = lambda: 1000.0  # never expires here
    t0 = env.now()
    controller = _controller(env, t0)
    bound = env.merchant()
    env.key_binding(controller, subject=env.subject, key_id=_pkh(bound.address), effective_at=t0 - 1000)
    env.sync()
    assert _evidence(env, api, bound, t0) == "verified"
    assert _evidence(env, api, bound, t0) == "verified"
    assert len(reads) == 1
    env.sync()
    assert _evidence(env, api, bound, t0) == "verified"
    assert len(reads) == 2  # the sync cleared it

    witnessed = env.merchant()
    env.host.set_document(witnessed.did_document())
    controller_did = f"did:pkh:eip155:1:{witnessed.address}"
    answer = api.post("/v1/witness", json={"subject": env.subject, "controller": controller_did})
    assert answer.status_code == 200, answer.text
    assert _evidence(env, api, bound, t0) == "verified"
    assert len(reads) == 3  # the witness write cleared it


def test_a_read_overtaken_by_a_clear_is_not_kept(env: Env) -> None:
    recent = RecentAttestations(ttl=60.0)

    def clear_meanwhile(*_args: Any) -> None:
        recent.clear()  # a sync in this process committed while the read ran

    event.listen(env.engine, "before_cursor_execute", clear_meanwhile)
    try:
        StoredAttestations(engine=env.engine, shared=recent).key_bindings(subject=env.subject)
    finally:
        event.remove(env.engine, "before_cursor_execute", clear_meanwhile)
    assert recent.get(env.subject) is None
    StoredAttestations(engine=env.engine, shared=recent).key_bindings(subject=env.subject)
    assert recent.get(env.subject) is not None


def test_entries_expire_and_the_oldest_go_first() -> None:
    now = [0.0]
    recent = RecentAttestations(ttl=2.0, size=2, clock=lambda: now[0])
    recent.keep("did:web:a", {"key-binding": []}, read_at=recent.mark())
    assert recent.get("did:web:a") == {"key-binding": []}
    now[0] = 2.5
    assert recent.get("did:web:a") is None  # older than the TTL
    for name in ("did:web:b", "did:web:c", "did:web:d"):
        recent.keep(name, {}, read_at=recent.mark())
    assert [recent.get(n) is not None for n in ("did:web:b", "did:web:c", "did:web:d")] == [False, True, True]
    off = RecentAttestations(ttl=0)
    off.keep("did:web:a", {}, read_at=off.mark())
    assert off.get("did:web:a") is None

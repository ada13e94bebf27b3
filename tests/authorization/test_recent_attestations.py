"""The per-process cache of stored OMATrust attestations (``RecentAttestations``) that submissions and prepares
share: a key binding synced by this process counts for the very next request; one synced by another process
counts once the entry is older than the TTL (never later); a read that a sync overtook is not kept."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from service.store.omatrust import RecentAttestations
from service.workflows.sync import ReviewIndexer, sync_chain
from tests.authorization.conftest import Env
from tests.authorization.test_acceptance import _controller, _pkh

pytestmark = pytest.mark.anvil


def _evidence(env: Env, api: TestClient, signer: Any, t0: int) -> str:
    """The evidence class prepare finds for a receipt ``signer`` signed (a receipt no tier vouches for is
    ``unauthorized``: prepare reports it, submit would refuse it)."""
    payer = Account.create().address
    body = {"attester": payer, "review": {"subject": env.subject, "ratingValue": 5,
                                          "proofs": [signer.receipt(payer=payer, issued_at=t0 - 60)]}}  # fmt: skip
    resp = api.post("/v1/reviews/prepare", json=body)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["evidence"])


def test_a_binding_synced_here_counts_at_once_one_synced_elsewhere_after_the_ttl(env: Env, api: TestClient) -> None:
    now = [1000.0]
    recent = env.rt.onchain_recent  # shared with the API's runtime
    recent.clock = lambda: now[0]
    t0 = env.now()
    controller = _controller(env, t0)
    env.sync()
    here, elsewhere = env.merchant(), env.merchant()

    assert _evidence(env, api, elsewhere, t0) == "unauthorized"  # not bound yet; the subject's rows are now cached
    env.key_binding(controller, subject=env.subject, key_id=_pkh(elsewhere.address), effective_at=t0 - 1000)
    other_process = dataclasses.replace(env.rt, onchain_recent=RecentAttestations(ttl=2.0))
    sync_chain(rt=other_process, indexer=ReviewIndexer(client=env.rt.eas))  # stored, but this process's cache
    assert _evidence(env, api, elsewhere, t0) == "unauthorized"  # still serves the older rows ...
    now[0] += 2.01
    assert _evidence(env, api, elsewhere, t0) == "verified"  # ... for the TTL at most (the key binding vouches)

    assert _evidence(env, api, here, t0) == "unauthorized"  # cached again (a fresh entry)
    env.key_binding(controller, subject=env.subject, key_id=_pkh(here.address), effective_at=t0 - 1000)
    env.sync()  # this process's sync clears the cache
    assert _evidence(env, api, here, t0) == "verified"


def test_a_read_overtaken_by_a_clear_is_not_kept() -> None:
    now = [0.0]
    recent = RecentAttestations(ttl=2.0, size=2, clock=lambda: now[0])
    mark = recent.mark()
    recent.clear()  # a sync committed while the read ran
    recent.put("did:web:a", {"key-binding": []}, read_at=mark)
    assert recent.get("did:web:a") is None
    recent.put("did:web:a", {"key-binding": []}, read_at=recent.mark())
    assert recent.get("did:web:a") == {"key-binding": []}
    now[0] = 2.5
    assert recent.get("did:web:a") is None  # older than the TTL
    for name in ("did:web:b", "did:web:c", "did:web:d"):
        recent.put(name, {}, read_at=recent.mark())
    assert [recent.get(n) is not None for n in ("did:web:b", "did:web:c", "did:web:d")] == [False, True, True]
    off = RecentAttestations(ttl=0)
    off.put("did:web:a", {}, read_at=off.mark())
    assert off.get("did:web:a") is None

"""ABI pointer aliasing against a real ``omatrust serve``: forty ~190 KB ``POST /v1/reviews`` bodies whose ``proofs``
offsets all point at one 48 KB string (a permissive decoder expands each into ~70 MB). Every one is refused with
a 4xx before expansion, and the process's resident memory — now and at its peak — grows by less than 50 MB."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from service.chain.codec import MAX_ARRAY_ELEMENTS
from tests.hostile.conftest import start_serve
from tests.hostile.payloads import aliased_review_data

BODIES = 40
LIMIT_KIB = 50 * 1024


def _bodies() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(BODIES):
        # two shapes: over the element budget, and within it (then only the aliasing itself is refused)
        pointers = 1450 if i % 2 == 0 else MAX_ARRAY_ELEMENTS
        data = aliased_review_data(subject=f"did:web:shop{i}.example", pointers=pointers,
                                   shared_bytes=48 * 1024 + (1450 - pointers) * 32)  # fmt: skip
        out.append({"attester": "0x" + f"{i + 1:040x}", "data": "0x" + data.hex(), "deadline": int(time.time()) + 600,
                    "nonce": 0, "signature": "0x" + "11" * 65})  # fmt: skip
    return out


def test_aliasing_burst_is_refused_without_memory_growth(tmp_path: Path) -> None:
    bodies = _bodies()
    assert all(180_000 < len(str(b["data"])) < 200_000 for b in bodies)
    serve = start_serve(tmp_path, database_url=f"sqlite:///{tmp_path / 'alias.db'}")
    try:
        with httpx.Client(base_url=serve.url, timeout=30) as client:  # warm the code paths up once
            assert client.post("/v1/reviews", json=bodies[0]).status_code < 500
        rss_before, peak_before = serve.status_kib("VmRSS"), serve.status_kib("VmHWM")

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=serve.url, timeout=60) as client:
                return list(await asyncio.gather(*(client.post("/v1/reviews", json=b) for b in bodies)))

        responses = asyncio.run(burst()) + asyncio.run(burst())  # the report's second burst went higher
        rss_after, peak_after = serve.status_kib("VmRSS"), serve.status_kib("VmHWM")
    finally:
        serve.stop()
    print(f"RSS {rss_before / 1024:.0f} → {rss_after / 1024:.0f} MiB, peak {peak_before / 1024:.0f} → "
          f"{peak_after / 1024:.0f} MiB over {len(responses)} aliased bodies")  # fmt: skip
    assert {r.status_code for r in responses} == {422}, {r.status_code for r in responses}
    assert {r.json()["code"] for r in responses} == {"attestation-data-invalid"}
    assert rss_after - rss_before < LIMIT_KIB
    assert peak_after - peak_before < LIMIT_KIB

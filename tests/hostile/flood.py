"""``python -m tests.hostile.flood BASE_URL BODIES_JSON RESULTS_JSON``: POST every body to ``/v1/reviews`` at once
and write ``[[status, code, retry_after], …]``. A separate process, so that the client's own work never shows up
in latencies the calling test measures."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx


async def flood(base: str, bodies: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    limits = httpx.Limits(max_connections=len(bodies) + 10)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one(body: dict[str, Any]) -> tuple[int, str, str]:
            try:
                resp = await client.post("/v1/reviews", json=body)
            except httpx.TransportError as exc:  # reported as a failure by the caller
                return 0, repr(exc), ""
            code = resp.json().get("code", "") if resp.status_code >= 400 else ""
            return resp.status_code, code, resp.headers.get("retry-after", "")

        return list(await asyncio.gather(*(one(b) for b in bodies)))


def main() -> None:
    base, bodies_path, results_path = sys.argv[1:4]
    results = asyncio.run(flood(base, json.loads(Path(bodies_path).read_text())))
    Path(results_path).write_text(json.dumps(results))


if __name__ == "__main__":
    main()

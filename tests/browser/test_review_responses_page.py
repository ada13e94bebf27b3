"""A User Review Response shows under its review in headless Chromium: anvil with every anchored OMATrust schema
(``tests/authorization``), the review and two responses attested on chain and indexed by our own ``sync``; the
service API served by uvicorn on a loopback port; ``pages.mjs`` drives Debian Chromium through playwright-core
on the service page and the review page (desktop width), saves full-page screenshots under ``artifacts/pages/``
(``review-response-*``) and returns the rendered text under the review. The response from an address an approved
witness saw controlling the service is shown; the one from anyone else is not (and the pages stay free of
overlaps, serious axe findings and foreign requests)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import uvicorn
from eth_account import Account

from service.api.app import create_app
from service.chain.eas_relayer import EasClient
from service.chain.embedded import EAS_ADDRESS
from service.chain.rpc import connect
from service.config import Settings
from service.wiring import Wired
from tests.authorization.conftest import Env

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NODE = shutil.which("node") or "node"
NODE_MODULES = ROOT / "tests" / "interop"
AXE = NODE_MODULES / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "artifacts" / "pages"

pytestmark = [pytest.mark.browser, pytest.mark.node, pytest.mark.anvil, pytest.mark.slow]


@pytest.fixture
def served(env: Env) -> Iterator[str]:
    """The service over real HTTP on a free loopback port (uvicorn in a thread); yields its base URL."""
    eas = EasClient(w3=connect(rpc_url=env.node.url), eas_address=EAS_ADDRESS, relayer=None)
    app = create_app(Settings(rate_limit_per_minute=1000),
                     wired=Wired(runtime=dataclasses.replace(env.rt, eas=eas), publisher=None))  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-pages", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # uvicorn offers no start event: poll its flag
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def drive(config: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run([NODE, str(Path(__file__).with_name("pages.mjs")), json.dumps(config)],
                            capture_output=True, text=True, timeout=600, cwd=NODE_MODULES)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_authorized_response_shows_under_its_review_in_chromium(env: Env, served: str) -> None:
    t0 = env.now()
    m = env.merchant()
    owner = Account.create().address  # an address an approved witness saw controlling the subject
    env.witness_attest(env.witness, subject=env.subject, controller=f"did:pkh:eip155:1:{owner}", observed_at=t0 - 50)
    payer = Account.create().address
    review = env.review(payer, proofs=[m.receipt(payer=payer, issued_at=t0 - 10)])
    answer = env.response(owner, review_uid=review.uid, body="Thanks, we fixed the latency issue.")
    stranger = env.response(Account.create().address, review_uid=review.uid, body="I am the merchant, honest")
    env.sync()
    assert env.stored(answer.uid).status == "authorized"
    assert env.stored(stranger.uid).status == "unauthorized"
    row, _ = env.proof(review.uid)

    replies = f'li.review[data-review-id="{row.id}"] .reply'
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = [
        {"name": "review-response-service", "url": f"{served}/services/{quote(env.subject, safe='')}",
         "texts": [replies, "li.review"]},
        {"name": "review-response-review", "url": f"{served}/reviews/{row.id}", "texts": [".reply", "main"]},
    ]  # fmt: skip
    out = drive({"chromium": CHROMIUM, "axe": str(AXE), "nodeModules": str(NODE_MODULES), "outDir": str(ARTIFACTS),
                 "pages": pages, "widths": [{"name": "desktop", "width": 1280, "height": 900}]})  # fmt: skip

    service, detail = out["pages"]
    for page in (service, detail):
        assert page["status"] == 200, page["name"]
        assert page["count"] == 0, f"{page['name']}: overlapping boxes {page['overlaps']}"
        assert page["foreign"] == [], page["name"]
        assert not [v for v in page["axe"] if v["impact"] in ("serious", "critical")], page["axe"]
        shot = Path(page["shot"])
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 10_000
    # the service page: exactly the authorized response, inside the review it answers
    (shown,) = service["texts"][replies]
    assert "Reply from the service" in shown
    assert "Thanks, we fixed the latency issue." in shown
    assert not any("I am the merchant, honest" in text for text in service["texts"]["li.review"])
    # the review page: the same
    (on_detail,) = detail["texts"][".reply"]
    assert "Thanks, we fixed the latency issue." in on_detail
    assert "I am the merchant, honest" not in detail["texts"]["main"][0]

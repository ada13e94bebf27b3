"""The human pages in headless Chromium, end to end: ``omatrust serve`` (embedded chain, tmp SQLite) and ``omatrust
demo`` run as real subprocesses on free loopback ports; ``pages.mjs`` drives Debian Chromium through playwright-core
and, for landing, services index, service page (populated and empty), review detail and badge, at desktop and phone
widths: saves a full-page screenshot under ``artifacts/pages/``, measures overlapping boxes in the DOM and runs
axe-core. ``/docs`` and ``/redoc`` are rendered with every non-loopback request aborted."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NODE = shutil.which("node") or "node"
NODE_MODULES = ROOT / "tests" / "interop"
AXE = NODE_MODULES / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "artifacts" / "pages"
WIDTHS = [{"name": "desktop", "width": 1280, "height": 900}, {"name": "phone", "width": 390, "height": 844}]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.node,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (apt-get install chromium)"),
    pytest.mark.skipif(not AXE.exists(), reason="npm deps missing: (cd tests/interop && npm ci)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real ``omatrust serve`` populated by ``omatrust demo``; yields (base URL, merchant DID)."""
    tmp = tmp_path_factory.mktemp("pages")
    port, merchant_port = free_port(), free_port()
    env = {
        **os.environ,
        "OMATRUST_DATABASE_URL": f"sqlite:///{tmp / 'omatrust.db'}",
        "OMATRUST_DID_WEB_INSECURE_HOSTS": f"localhost:{merchant_port}",
        "OMATRUST_PUBLISH_INTERVAL_SECONDS": "0.1",
    }
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli.main", "serve", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, (tmp / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "omatrust serve did not come up"
            time.sleep(0.2)
        demo = subprocess.run(
            [sys.executable, "-m", "service.cli.main", "demo", "--api", base, "--port", str(merchant_port),
             "--wait", "60"],
            capture_output=True, text=True, timeout=180, cwd=tmp,
        )  # fmt: skip
        assert demo.returncode == 0, demo.stdout + demo.stderr
        did = f"did:web:localhost%3A{merchant_port}"
        assert did in demo.stdout
        yield base, did
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def drive(config: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run(
        [NODE, str(Path(__file__).with_name("pages.mjs")), json.dumps(config)],
        capture_output=True, text=True, timeout=600, cwd=NODE_MODULES,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_pages_render_without_overlap_and_pass_axe(demo_service: tuple[str, str]) -> None:
    base, did = demo_service
    enc = quote(did, safe="")
    verified = httpx.get(f"{base}/v1/services/{enc}/reviews?verified=true&limit=1", timeout=10).json()["items"]
    assert verified, "the demo posts verified purchases"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    pages = [
        {"name": "landing", "url": f"{base}/"},
        {"name": "services", "url": f"{base}/services"},
        {"name": "service", "url": f"{base}/services/{enc}"},
        {"name": "service-empty", "url": f"{base}/services/{quote('did:web:nobody-reviewed.example', safe='')}"},
        {"name": "review", "url": f"{base}/reviews/{verified[0]['id']}"},
        {"name": "badge", "url": f"{base}/badges/{enc}"},
    ]
    out = drive({
        "chromium": CHROMIUM, "axe": str(AXE), "nodeModules": str(NODE_MODULES), "outDir": str(ARTIFACTS),
        "pages": pages, "widths": WIDTHS, "docs": f"{base}/docs",
    })  # fmt: skip

    assert len(out["pages"]) == len(pages) * len(WIDTHS)
    for page in out["pages"]:
        where = f"{page['name']} at {page['width']}"
        assert page["status"] == 200, where
        assert page["count"] == 0, f"{where}: overlapping boxes {page['overlaps']}"
        assert page["boxes"] > 10, where  # the check saw a rendered page
        assert page["overflow"] <= 0, f"{where}: {page['overflow']} px wider than the viewport"
        serious = [v for v in page["axe"] if v["impact"] in ("serious", "critical")]
        assert not serious, f"{where}: {serious}"
        assert page["foreign"] == [], f"{where} requested another origin: {page['foreign']}"
        assert page["consoleErrors"] == [], f"{where}: {page['consoleErrors']}"  # e.g. a CSP refusal
        shot = Path(page["shot"])
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 10_000, where  # a rendered page, not a blank image
    titles = {p["name"]: p["title"] for p in out["pages"]}
    assert titles["service"].endswith("reviews and trust score")

    docs = out["docs"]
    assert docs["blocked"] == [], f"docs tried to load external assets: {docs['blocked']}"
    assert docs["swagger"]["rendered"]
    assert docs["swagger"]["operations"] >= 5
    assert docs["redoc"]["rendered"]
    assert docs["redoc"]["operations"] >= 5


def test_service_page_numbers_filters_and_badges_match_the_api(demo_service: tuple[str, str]) -> None:
    base, did = demo_service
    enc = quote(did, safe="")
    api = httpx.get(f"{base}/v1/services/{enc}/reputation", timeout=10).json()
    page = httpx.get(f"{base}/services/{enc}", timeout=10)
    assert page.status_code == 200
    assert page.headers["etag"]
    assert "max-age" in page.headers["cache-control"]
    html = page.text
    shown = re.search(r'id="score" data-score="([^"]+)">(\d+)<small>', html)
    assert shown is not None, html[:2000]
    assert math.isclose(float(shown[1]), api["score"], rel_tol=1e-6)
    counts = api["counts"]
    assert f"{counts['live']} live — {counts['verified']} verified purchases, {counts['unverified']} other" in html
    assert f"{counts['verified']} of them verified purchases" in html  # the plain-words explanation
    assert 'id="sparkline"' in html
    assert len(re.findall(r'<li class="review"', html)) == counts["live"]

    listed = httpx.get(f"{base}/v1/services/{enc}/reviews?limit=100", timeout=10).json()["items"]
    strongest = next(r["evidence"] for r in listed if r["verifiedPurchase"])  # verified or payment-backed
    only = httpx.get(f"{base}/services/{enc}?evidence={strongest}", timeout=10).text
    evidences = re.findall(r'<li class="review".*?data-evidence="([a-z-]+)"', only, flags=re.S)
    assert evidences == [strongest] * sum(r["evidence"] == strongest for r in listed)

    svg = httpx.get(f"{base}/badges/{enc}.svg", timeout=10)
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert f"{api['score']:.0f}/100" in svg.text
    assert f"{counts['verified']} paid" in svg.text
    shields = httpx.get(f"{base}/badges/{enc}.json", timeout=10).json()
    assert shields["schemaVersion"] == 1
    assert shields["label"] == "OMATrust"
    again = httpx.get(f"{base}/badges/{enc}.svg", headers={"If-None-Match": svg.headers["etag"]}, timeout=10)
    assert again.status_code == 304

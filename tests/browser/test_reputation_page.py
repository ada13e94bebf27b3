"""The reputation page in headless Chromium, end to end: ``omatrust serve`` (embedded chain, tmp SQLite) and
``omatrust demo`` run as real subprocesses on free loopback ports; Chromium renders ``/services/<did>``, its DOM is
checked against the JSON API and a screenshot is saved to ``artifacts/reputation-page.png``."""

from __future__ import annotations

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
from urllib.parse import quote

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={profile}", *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(profile)},
    )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real ``omatrust serve`` on a free port, allowed to fetch the demo merchant's did.json over loopback http."""
    port, merchant_port = free_port(), free_port()
    env = {
        **os.environ,
        "OMATRUST_DATABASE_URL": f"sqlite:///{tmp_path / 'omatrust.db'}",
        "OMATRUST_DID_WEB_INSECURE_HOSTS": f"localhost:{merchant_port}",
        "OMATRUST_PUBLISH_INTERVAL_SECONDS": "0.1",
    }
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli.main", "serve", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "omatrust serve did not come up"
            time.sleep(0.2)
        yield base, merchant_port
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def test_reputation_page_renders_in_chromium(
    service: tuple[str, int], tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    base, merchant_port = service
    demo = subprocess.run(
        [sys.executable, "-m", "service.cli.main", "demo", "--api", base, "--port", str(merchant_port), "--wait", "60"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    did = f"did:web:localhost%3A{merchant_port}"
    assert did in demo.stdout
    api = httpx.get(f"{base}/v1/services/{quote(did, safe='')}/reputation", timeout=10).json()
    assert api["counts"]["verified"] >= 3
    url = f"{base}/services/{quote(did, safe='')}"

    dom = chromium("--dump-dom", url, profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-3000:]
    html = dom.stdout
    shown = re.search(r'id="score" data-score="([^"]+)">([\d.]+)<small>/100</small>', html)
    assert shown is not None, html[:3000]
    assert math.isclose(float(shown[1]), api["score"], rel_tol=1e-6)
    assert shown[2] == f"{float(shown[1]):.1f}"
    counts = api["counts"]
    assert f"{counts['live']} live — {counts['verified']} verified, {counts['unverified']} unverified" in html
    reviews = re.findall(r'<li class="review".*?</li>', html, flags=re.S)
    assert len(reviews) == counts["live"]
    assert sum("✓ Verified purchase" in r for r in reviews) == counts["verified"]
    assert sum('data-evidence="none"' in r for r in reviews) == counts["unverified"]
    assert all("EAS attestation" in r for r in reviews)  # the demo waits for confirmations

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "reputation-page.png"
    shot.unlink(missing_ok=True)
    result = chromium(f"--screenshot={shot}", "--window-size=1200,1600", url, profile=tmp_path / "profile-shot")
    assert result.returncode == 0, result.stderr[-3000:]
    assert shot.exists()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank image
    record_property("screenshot", str(shot))
    print(f"screenshot: {shot}")

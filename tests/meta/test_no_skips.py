"""The README's test command must fail when a test skips (a real part missing from the setup)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import pytest

def test_needs_a_missing_part():
    pytest.skip("anvil not installed")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
"""


def _run(tmp_path: Path, *, required: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "OMATRUST_REQUIRE_REAL_PARTS"}
    if required is not None:
        env["OMATRUST_REQUIRE_REAL_PARTS"] = required
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
         "-p", "tests.support.no_skips", "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env, check=False,
    )


@pytest.mark.parametrize(
    ("required", "rc", "summary"), [("1", 1, "1 failed, 1 xfailed"), (None, 0, "1 skipped, 1 xfailed")]
)
def test_a_skip_fails_only_when_real_parts_are_required(tmp_path: Path, required: str | None, rc: int,
                                                        summary: str) -> None:
    result = _run(tmp_path, required=required)
    assert result.returncode == rc, result.stdout + result.stderr
    assert summary in result.stdout

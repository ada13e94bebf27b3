"""``omatrust verify`` on hostile input: deep nesting never crashes the process (eth-account raises the recursion
limit, after which the C JSON parser would overflow the stack)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _verify(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli.main", "verify", str(path), "--offline", *extra],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_deep_jsonl_line_is_a_malformed_verdict(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("[" * 200_000 + "]" * 200_000 + "\n" + json.dumps({"format": "eip712"}) + "\n")
    out = _verify(path, "--jsonl")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["index"], r["status"], r["reason"]) for r in lines] == [
        (0, "invalid", "malformed-json"),
        (1, "invalid", "missing-field"),
    ]


def test_deep_document_is_an_unusable_file(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    out = _verify(path)
    assert out.returncode == 2
    assert "nested deeper" in out.stderr

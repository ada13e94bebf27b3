"""The command line reads DIDs and finds the database the way the API and ``serve`` do, and starts fast: a DID is
normalized exactly like ``/v1/services/{did}`` (bare port colon, case), a non-DID is a usage error (exit 2), a
missing SQLite file is reported rather than created empty, and ``omatrust --help`` imports no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.cli.main import main
from service.store.engine import make_engine
from service.store.migrate import upgrade
from tests.api.test_reputation_store import insert_review

SUBJECT = "did:web:localhost%3a4021"  # normalized form of did:web:localhost%3A4021


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "omatrust.db"
    engine = make_engine(url=f"sqlite:///{path}")
    upgrade(engine=engine)
    insert_review(engine, rid="r1", subject=SUBJECT, attester="0x" + "1" * 40, rating=5, time=int(time.time()) - 60,
                  evidence="verified")  # fmt: skip
    engine.dispose()
    monkeypatch.setenv("OMATRUST_DATABASE_URL", f"sqlite:///{path}")
    return path


@pytest.mark.parametrize(
    "typed",
    ["did:web:localhost:4021", "did:web:localhost%3A4021", "did:web:LocalHost%3a4021", " did:web:localhost:4021 "],
)
def test_score_reads_the_did_as_the_api_does(database: Path, typed: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", typed]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["did"] == SUBJECT
    assert out["counts"]["live"] == 1


@pytest.mark.parametrize("argv", [["score", "notadid"], ["score", "did:"], ["reverify", "--subject", "example.com"]])
def test_a_non_did_is_a_usage_error(database: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "is not a service DID" in capsys.readouterr().err


def test_reverify_subject_is_normalized(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli.main import build_parser
    from service.cli.reverify import _options

    args = build_parser("reverify").parse_args(["reverify", "--subject", "did:web:localhost:4021", "--dry-run"])
    assert _options(args).subject == SUBJECT


def test_missing_database_is_reported_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OMATRUST_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["score", "did:web:a.example"]) == 2
    err = capsys.readouterr().err
    assert "no database at" in err
    assert "OMATRUST_DATABASE_URL" in err
    assert list(tmp_path.iterdir()) == []  # no empty omatrust.db left behind
    assert main(["reverify", "--dry-run"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_help_imports_no_heavy_library() -> None:
    probe = (
        "import sys\nfrom service.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('web3', 'fastapi', 'sqlalchemy', 'sqlmodel', 'eth_account', 'uvicorn', 'httpx', 'coincurve')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert "usage: omatrust" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"

"""Run every fuzz target for a bounded time on its committed seed corpus (``fuzz/corpus/<target>``).

New inputs go to a temporary directory (the committed corpus is never written). Exit status 1 when a target
crashed: the crashing input is copied to ``fuzz/crashes/<target>/`` — commit it, and
``tests/hostile/test_fuzz_corpus.py`` replays it as a regular test from then on.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = ("review", "artifact")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60, help="time per target (default 60)")
    parser.add_argument("targets", nargs="*", default=list(TARGETS))
    args = parser.parse_args()
    failed = False
    for target in args.targets:
        with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as work:
            Path(f"{work}/corpus").mkdir()
            started = time.monotonic()
            seeds = str(HERE / "corpus" / target)
            result = subprocess.run(  # noqa: S603 (fixed argv: this interpreter, this harness)
                [sys.executable, str(HERE / "fuzz_decoders.py"), target, f"{work}/corpus", seeds,
                 f"-max_total_time={args.seconds}", "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1",
                 f"-artifact_prefix={work}/"],
                capture_output=True, text=True, cwd=HERE.parent,
            )  # fmt: skip
            runs = next((line.rsplit(":", 1)[1].strip() for line in result.stderr.splitlines()
                         if line.startswith("stat::number_of_executed_units")), "?")  # fmt: skip
            print(f"fuzz {target}: exit {result.returncode}, {runs} inputs in {time.monotonic() - started:.0f}s")
            crashes = [p for p in Path(work).iterdir() if p.is_file() and p.name.split("-")[0] in
                       ("crash", "timeout", "oom", "leak")]  # fmt: skip
            if result.returncode != 0 or crashes:
                failed = True
                keep = HERE / "crashes" / target
                keep.mkdir(parents=True, exist_ok=True)
                for crash in crashes:
                    shutil.copy(crash, keep / crash.name)
                    print(f"  {crash.name} → {keep / crash.name}")
                print(result.stderr[-4000:])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

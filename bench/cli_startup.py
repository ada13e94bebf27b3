"""``omatrust --help`` start-up time (goal < 0.5 s) against two baselines measured in the same run: a bare
``python -c pass`` and the eager alternative (importing every command module, as the dispatcher used to).

    python -m bench.cli_startup [--runs 15]

Prints the median and best wall time of each over alternating runs and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from service.cli.main import COMMANDS

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "omatrust --help": [sys.executable, "-m", "service.cli.main", "--help"],
    "eager imports": [
        sys.executable, "-c",
        "import importlib\n"
        + "".join(f"importlib.import_module({m!r})\n" for m, _ in COMMANDS.values() if m != "service.cli.attestation"),
    ],
}  # fmt: skip


def run(*, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(runs):
        for name, cmd in CASES.items():  # alternating: a busy moment hits every case alike
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    times = run(runs=args.runs)
    base = statistics.median(times["python -c pass"])
    helps = statistics.median(times["omatrust --help"])
    eager = statistics.median(times["eager imports"])
    for name, values in times.items():
        med = statistics.median(values)
        best = min(values)
        print(f"{name:18s} median {med * 1000:7.1f} ms  best {best * 1000:7.1f} ms  x{med / base:5.2f} of python")
    print(f"omatrust --help: {helps:.3f} s (goal < 0.5 s: {'met' if helps < 0.5 else 'NOT met'}); "
          f"{eager / helps:.1f}x faster than importing every command")  # fmt: skip


if __name__ == "__main__":
    main()

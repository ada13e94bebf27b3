"""atheris (libFuzzer) entry point: ``python fuzz/fuzz_decoders.py TARGET [libFuzzer args…]``.

TARGET is ``review`` or ``artifact`` (see ``fuzz/targets.py``). Run both, bounded, with the committed seeds::

    python fuzz/run.py --seconds 60
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports(include=["service"]):
    from fuzz.targets import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer args]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""How fast the `crisis` command answers when nothing needs a server: help, and refused scenario files.

    python bench/cli.py [--runs 7]

Each figure is the median wall time of a fresh interpreter running the command (`python -m crisis ...`),
so it includes Python's own start-up; the interpreter alone is printed first for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUGHS = "\n".join(
    ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"a{n}: &a{n} [" + ",".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 9)]
)
ZERO = """name: zero
participants: [{org: hub, role: coordinator}]
timeline:
  - at: 0
    share: {by: hub, file: /dev/zero}
"""


def median_s(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False, timeout=120)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        bomb, zero = Path(tmp) / "bomb.yaml", Path(tmp) / "zero.yaml"
        bomb.write_text(LAUGHS + "\n")
        zero.write_text(ZERO)
        crisis = [sys.executable, "-m", "crisis"]
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("crisis --help", [*crisis, "--help"]),
            ("crisis tail --help", [*crisis, "tail", "--help"]),
            (
                f"exercise check (billion laughs, {bomb.stat().st_size} B)",
                [*crisis, "exercise", "check", str(bomb)],
            ),
            ("exercise check (file: /dev/zero)", [*crisis, "exercise", "check", str(zero)]),
        ]
        for name, argv in cases:
            print(f"{name:<42} {median_s(argv, runs) * 1000:7.0f} ms  (median of {runs})")


if __name__ == "__main__":
    main()

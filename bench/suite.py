"""How long the test suite takes: serially, with pytest-xdist's two workers, and `make test-fast`.

Runs, one after the other, each as its own pytest process over the same selection:

- serial:   pytest -n 0
- parallel: pytest -n 2 --dist loadfile    (pyproject's addopts; the box tests in one worker)
- fast:     pytest -m "not servers and not box"   (make test-fast: two workers, no real servers)

and prints each one's wall time, its summary line, and the ratios. Targets (issue 25): the
parallel run at most half the serial one on 2 cores, and the fast run under a minute.

Extra arguments select part of the suite (paths, -k, -m): the same selection for all three runs,
`-m` combined with the fast run's own marker expression.

    .venv/bin/python bench/suite.py                        # the whole suite (minutes)
    .venv/bin/python bench/suite.py tests/config tests/policy --only serial parallel
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PARALLEL_TARGET = 0.5  # parallel wall / serial wall
FAST_TARGET_SECONDS = 60.0
FAST_MARKERS = "not servers and not box"
RUNS = {
    "serial": ["-n", "0"],
    "parallel": ["-n", "2", "--dist", "loadfile"],
    "fast": ["-n", "2", "--dist", "loadfile"],
}
# pytest's last line: "265 passed, 3 deselected in 50.60s" (-q), or the same between "=" rules.
SUMMARY = re.compile(r"^=*\s*((?:\d+ \w+(?:, )?)+ in [\d.]+s.*?|no tests ran.*?)\s*=*$")


@dataclass
class Run:
    name: str
    seconds: float
    exit_code: int
    summary: str


def marker_expression(name: str, selected: str | None) -> list[str]:
    if name != "fast":
        return ["-m", selected] if selected else []
    return ["-m", f"({FAST_MARKERS}) and ({selected})" if selected else FAST_MARKERS]


def run(name: str, selection: list[str], selected_markers: str | None) -> Run:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *RUNS[name],
        *marker_expression(name, selected_markers),
        *selection,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    matches = [match for line in done.stdout.splitlines() if (match := SUMMARY.match(line))]
    summary = matches[-1].group(1) if matches else (done.stdout + done.stderr).strip()[-300:]
    return Run(name, seconds, done.returncode, summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", nargs="+", choices=list(RUNS), default=list(RUNS), help="which runs (in this order)")
    parser.add_argument("-m", dest="markers", help="a marker expression for every run (the fast run adds its own)")
    args, selection = parser.parse_known_args()
    results: dict[str, Run] = {}
    for name in args.only:
        result = run(name, selection, args.markers)
        results[name] = result
        status = "ok" if result.exit_code == 0 else f"EXIT {result.exit_code}"
        print(f"{name + ':':10} {result.seconds:7.1f} s  {status:8}  {result.summary}", flush=True)
    if "serial" in results and "parallel" in results:
        ratio = results["parallel"].seconds / results["serial"].seconds
        verdict = "met" if ratio <= PARALLEL_TARGET else "NOT met"
        print(f"parallel/serial: {ratio:.2f} (target <= {PARALLEL_TARGET}: {verdict})")
    if "fast" in results:
        fast = results["fast"].seconds
        verdict = "met" if fast < FAST_TARGET_SECONDS else "NOT met"
        print(f"fast: {fast:.1f} s (target < {FAST_TARGET_SECONDS:.0f} s: {verdict})")
        if "serial" in results:
            print(f"fast/serial: {fast / results['serial'].seconds:.2f}")
    if any(result.exit_code not in (0, 5) for result in results.values()):  # 5: nothing selected
        sys.exit(1)


if __name__ == "__main__":
    main()

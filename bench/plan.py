"""How much `plan dev` costs beyond importing the providers.

Prints the ratio of the wall time of `python -m leanstack plan dev` to that of
`python -c "import pulumi_aws, pulumi_cloudflare"` on this machine: the median of several
alternating runs of each. Target: 1.5 or less.

    .venv/bin/python bench/plan.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMPORT = [sys.executable, "-c", "import pulumi_aws, pulumi_cloudflare"]
PLAN = [sys.executable, "-m", "leanstack", "plan", "dev"]
# For context: pulumi_aws loads its service modules lazily, so the baseline above does not pay
# for the modules the program uses; this shows how much of the plan's time is that import.
MODULES = [
    sys.executable,
    "-W",
    "ignore",
    "-c",
    "import pulumi_aws, pulumi_cloudflare, pulumi_tls, pulumi_random; "
    "from pulumi_aws import cloudwatch, ec2, elasticache, iam, rds, route53, s3, sns, ssm, vpc",
]


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    wall(IMPORT)  # warm the file cache and the bytecode
    imports, modules, plans = [], [], []
    for _ in range(runs):
        imports.append(wall(IMPORT))
        modules.append(wall(MODULES))
        plans.append(wall(PLAN))
    imp, mods, plan = statistics.median(imports), statistics.median(modules), statistics.median(plans)
    print(f"import pulumi_aws, pulumi_cloudflare:           median {imp:.2f} s over {runs} runs")
    print(f"  ...plus the AWS service modules the program uses: median {mods:.2f} s (ratio {mods / imp:.2f})")
    print(f"python -m leanstack plan dev:                   median {plan:.2f} s over {runs} runs")
    print(f"ratio plan/import: {plan / imp:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()

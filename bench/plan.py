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
# `python -m leanstack plan` switches off the cyclic garbage collector (leanstack/__main__.py),
# which also makes its own import of the providers faster than the baseline's. This is the
# same import without the collector: the like-for-like baseline, printed so that the gain
# is not mistaken for the plan costing less than it does.
IMPORT_NO_GC = [sys.executable, "-c", "import gc; gc.disable(); import pulumi_aws, pulumi_cloudflare"]
PLAN = [sys.executable, "-m", "leanstack", "plan", "dev"]
# For context: pulumi_aws loads its service modules lazily (on first attribute access), so the
# baseline above does not pay for the modules the program uses. This loads them for real, by
# touching one class of each, to show how much of the plan's time is the providers' own code.
# These are the service modules `plan dev` loads (`python -X importtime`); a stack with the
# cache or scaled-out hosts adds elasticache, lb and autoscaling.
CLASSES = (
    "aws.cloudwatch.MetricAlarm", "aws.ec2.Vpc", "aws.ecr.Repository", "aws.iam.Role", "aws.rds.Instance",
    "aws.route53.HealthCheck", "aws.s3.Bucket", "aws.sns.Topic", "aws.ssm.Parameter",
    "aws.vpc.SecurityGroupIngressRule", "cf.DnsRecord", "tls.PrivateKey", "rnd.RandomPassword",
)  # fmt: skip
MODULES = [
    sys.executable,
    "-W",
    "ignore",
    "-c",
    # Without the collector, like the plan.
    "import gc; gc.disable(); import pulumi_aws as aws, pulumi_cloudflare as cf, pulumi_tls as tls, "
    "pulumi_random as rnd; " + "; ".join(CLASSES),
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
    imports, imports_no_gc, modules, plans = [], [], [], []
    for _ in range(runs):
        imports.append(wall(IMPORT))
        imports_no_gc.append(wall(IMPORT_NO_GC))
        modules.append(wall(MODULES))
        plans.append(wall(PLAN))
    imp, imp_no_gc = statistics.median(imports), statistics.median(imports_no_gc)
    mods, plan = statistics.median(modules), statistics.median(plans)
    print(f"import pulumi_aws, pulumi_cloudflare:           median {imp:.2f} s over {runs} runs")
    print(f"  ...the same with the garbage collector off:   median {imp_no_gc:.2f} s")
    print(f"  ...plus loading the provider modules the program uses: median {mods:.2f} s")
    print(f"python -m leanstack plan dev:                   median {plan:.2f} s over {runs} runs")
    print(f"ratio plan/import: {plan / imp:.2f} (target <= 1.5: {'met' if plan / imp <= 1.5 else 'NOT met'})")
    print(f"ratio plan/import, both without the garbage collector: {plan / imp_no_gc:.2f} (like for like)")
    print(f"ratio plan/(import + the modules it must load): {plan / mods:.2f} (what leanstack itself adds)")


if __name__ == "__main__":
    main()

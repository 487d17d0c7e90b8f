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
# For context: pulumi_aws loads its service modules lazily (on first attribute access), so the
# baseline above does not pay for the modules the program uses. This loads them for real, by
# touching one class of each, to show how much of the plan's time is the providers' own code.
CLASSES = (
    "aws.autoscaling.Group", "aws.cloudwatch.MetricAlarm", "aws.ec2.Vpc", "aws.ecr.Repository",
    "aws.elasticache.ReplicationGroup", "aws.iam.Role", "aws.lb.LoadBalancer", "aws.rds.Instance",
    "aws.route53.HealthCheck", "aws.s3.Bucket", "aws.sns.Topic", "aws.ssm.Parameter",
    "aws.vpc.SecurityGroupIngressRule", "cf.DnsRecord", "tls.PrivateKey", "rnd.RandomPassword",
)  # fmt: skip
MODULES = [
    sys.executable,
    "-W",
    "ignore",
    "-c",
    "import pulumi_aws as aws, pulumi_cloudflare as cf, pulumi_tls as tls, pulumi_random as rnd; " + "; ".join(CLASSES),
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
    print(f"  ...plus loading the provider modules the program uses: median {mods:.2f} s")
    print(f"python -m leanstack plan dev:                   median {plan:.2f} s over {runs} runs")
    print(f"ratio plan/import: {plan / imp:.2f} (target <= 1.5: {'met' if plan / imp <= 1.5 else 'NOT met'})")
    print(f"ratio plan/(import + the modules it must load): {plan / mods:.2f} (what leanstack itself adds)")


if __name__ == "__main__":
    main()

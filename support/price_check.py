"""Re-check leanstack/pricing.json's instance prices against coroot/cloud-pricing's daily snapshots.

    git clone https://github.com/coroot/cloud-pricing && python -m support.price_check cloud-pricing

coroot publishes one gzipped JSON of AWS on-demand prices a day on its gh-pages branch
(data/cloud-pricing.json.gz), made from Infracost's pricing database, which is read from the AWS
Price List API. For every figure of `ec2Hourly`, `rdsPostgresHourly` (Single-AZ) and
`elasticacheRedisHourly` this prints what the snapshots say: one value in every snapshot that has
the class (`agrees` or `differs`), or several (`ambiguous`: coroot's update.go keeps the last
matching row of a class without filtering tenancy or capacity status, so a class with several rows
flips from day to day). It exits 1 when pricing.json's `checkedAgainst` no longer says the same,
so the record in the file is what the dataset shows, not what someone remembered.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PRICING = Path(__file__).resolve().parent.parent / "leanstack" / "pricing.json"
TABLES = ("ec2Hourly", "rdsPostgresHourly", "elasticacheRedisHourly")
SNAPSHOT = "data/cloud-pricing.json.gz"


def snapshots(clone: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(commit, date, the snapshot's `aws` prices) for every commit of the gh-pages branch."""
    git = ["git", "-C", str(clone)]
    # A clone has the branch as origin/gh-pages; a mirror has it as gh-pages.
    branch = next(
        b
        for b in ("origin/gh-pages", "gh-pages")
        if subprocess.run([*git, "rev-parse", "-q", "--verify", b], capture_output=True).returncode == 0
    )
    log = [*git, "log", branch, "--format=%H %cd", "--date=short"]
    found = []
    for line in subprocess.run(log, capture_output=True, text=True, check=True).stdout.splitlines():
        commit, date = line.split()
        blob = subprocess.run([*git, "show", f"{commit}:{SNAPSHOT}"], capture_output=True)
        if blob.returncode == 0:
            found.append((commit, date, json.loads(gzip.decompress(blob.stdout))["aws"]))
    return found


def source_price(aws: dict[str, Any], region: str, table: str, item: str) -> float | None:
    if table == "ec2Hourly":
        row = aws["compute"].get(region, {}).get(item)
        return float(row["on_demand"]) if row else None
    if table == "rdsPostgresHourly":
        row = aws.get("managed_db", {}).get(region, {}).get("postgres", {}).get(item) or {}
        return float(row["single_az"]["on_demand"]) if row.get("single_az") else None
    row = aws.get("managed_cache", {}).get(region, {}).get("redis", {}).get(item)
    return float(row["on_demand"]) if row else None


def verdicts(pricing: dict[str, Any], found: list[tuple[str, str, dict[str, Any]]]) -> dict[str, dict[str, str]]:
    """Per region and `table.item`: agrees, differs (with the source's value) or ambiguous."""
    out: dict[str, dict[str, str]] = {}
    for region, table_set in pricing["regions"].items():
        out[region] = {}
        for table in TABLES:
            for item, figure in table_set.get(table, {}).items():
                seen = Counter(v for _c, _d, aws in found if (v := source_price(aws, region, table, item)))
                if not seen:
                    out[region][f"{table}.{item}"] = "not in the source"
                elif len(seen) > 1:
                    out[region][f"{table}.{item}"] = "ambiguous"
                else:
                    (value,) = seen
                    out[region][f"{table}.{item}"] = "agrees" if abs(value - figure) < 1e-9 else f"differs: {value}"
    return out


def recorded(entry: str) -> str:
    """What pricing.json's `checkedAgainst` entry claims, in the verdicts' words."""
    if entry.startswith("agrees"):
        return "agrees"
    if entry.startswith("ambiguous"):
        return "ambiguous"
    return "changed"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    pricing = json.loads(PRICING.read_text(encoding="utf-8"))
    found = snapshots(Path(argv[0]))
    print(f"{len(found)} snapshots, {found[-1][1]} to {found[0][1]}; newest {found[0][0]}")
    claims = pricing["checkedAgainst"]["prices"]
    stale = 0
    for region, results in verdicts(pricing, found).items():
        for key, verdict in results.items():
            claim = recorded(claims.get(region, {}).get(key, ""))
            # A figure changed to the source's value now agrees with it.
            honest = claim == verdict or (claim == "changed" and verdict == "agrees")
            stale += not honest
            print(f"{'ok   ' if honest else 'STALE'} {region} {key}: {verdict} (pricing.json: {claim})")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

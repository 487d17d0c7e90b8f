"""`leanstack diff BASE [HEAD]`: what a change does to every stack, risk first.

BASE and HEAD are git revisions or saved JSON plans (`plan --format json`); HEAD defaults
to the working tree. A git revision is materialized with `git archive` in a temporary
directory and planned there in a subprocess, so the revision's own program, components and
stack files are used. Resources are matched by URN; for each stack the diff lists what is
added, removed and changed (properties old → new) and the monthly cost delta, priced with
this checkout's price table on both sides.

Risk comes first. A finding is raised when a change would lose data or open the stack up:
a stateful resource (database, cache, bucket, Elastic IP; not a read replica, which holds a
copy of its source) replaced or deleted, a URN change (Pulumi replaces a renamed resource
unless it is aliased), `protect` or deletion protection removed, a port newly open to the
internet, encryption turned off, backup retention or Object Lock weakened. Which property
changes force a replacement is the explicit table REPLACES below, kept in step with the AWS
provider's schema and tested.

Nothing here imports Pulumi: the diff of two saved plans takes a fraction of a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from leanstack.cost import estimate, fmt_delta, fmt_money, money
from leanstack.plan import PLAN_FORMAT_VERSION, ingress_openings, source_kind

WORKTREE = "working tree"

# Resources that hold data (or an address users depend on): replacing or deleting one loses it.
STATEFUL: dict[str, str] = {
    "aws:rds/instance:Instance": "database",
    "aws:rds/cluster:Cluster": "database cluster",
    "aws:elasticache/replicationGroup:ReplicationGroup": "cache",
    "aws:elasticache/cluster:Cluster": "cache",
    "aws:s3/bucket:Bucket": "bucket",
    "aws:s3/bucketV2:BucketV2": "bucket",
    "aws:ec2/eip:Eip": "Elastic IP",
    "aws:ec2/volume:Volume": "EBS volume",
    "aws:efs/fileSystem:FileSystem": "file system",
    "aws:dynamodb/table:Table": "table",
}

# Inputs whose change makes the AWS provider replace the resource (ForceNew in its schema).
# A change of the resource's provider region replaces every resource too (see _replacing).
REPLACES: dict[str, frozenset[str]] = {
    "aws:rds/instance:Instance": frozenset(
        {
            "identifier",
            "identifierPrefix",
            "engine",
            "dbName",
            "username",
            "storageEncrypted",
            "kmsKeyId",
            "availabilityZone",
            "dbSubnetGroupName",
            "characterSetName",
            "ncharCharacterSetName",
            "timezone",
            "snapshotIdentifier",
            "restoreToPointInTime",
            "s3Import",
            "customIamInstanceProfile",
        }
    ),
    "aws:rds/cluster:Cluster": frozenset(
        {"clusterIdentifier", "engine", "databaseName", "masterUsername", "storageEncrypted", "kmsKeyId"}
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": frozenset(
        {
            "replicationGroupId",
            "engine",
            "subnetGroupName",
            "atRestEncryptionEnabled",
            "kmsKeyId",
            "snapshotArns",
            "snapshotName",
            "preferredCacheClusterAzs",
        }
    ),
    "aws:elasticache/cluster:Cluster": frozenset(
        {"clusterId", "engine", "subnetGroupName", "availabilityZone", "snapshotArns", "snapshotName"}
    ),
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix", "objectLockEnabled"}),
    "aws:s3/bucketV2:BucketV2": frozenset({"bucket", "bucketPrefix", "objectLockEnabled"}),
    "aws:ec2/eip:Eip": frozenset({"domain", "vpc", "publicIpv4Pool", "address", "customerOwnedIpv4Pool"}),
    "aws:ec2/instance:Instance": frozenset(
        {"ami", "availabilityZone", "subnetId", "keyName", "privateIp", "placementGroup", "tenancy"}
    ),
    "aws:ec2/volume:Volume": frozenset({"availabilityZone", "encrypted", "kmsKeyId", "snapshotId"}),
    "aws:ec2/securityGroup:SecurityGroup": frozenset({"name", "namePrefix", "vpcId", "description"}),
    "aws:cloudwatch/logGroup:LogGroup": frozenset({"name", "namePrefix"}),
    "aws:rds/parameterGroup:ParameterGroup": frozenset({"name", "namePrefix", "family"}),
    "aws:rds/subnetGroup:SubnetGroup": frozenset({"name", "namePrefix"}),
    "aws:lb/loadBalancer:LoadBalancer": frozenset({"name", "namePrefix", "internal", "loadBalancerType"}),
    "aws:lb/targetGroup:TargetGroup": frozenset(
        {"name", "namePrefix", "port", "protocol", "protocolVersion", "targetType", "vpcId"}
    ),
    "aws:autoscaling/group:Group": frozenset({"name", "namePrefix"}),
    "aws:ec2/launchTemplate:LaunchTemplate": frozenset({"name", "namePrefix"}),
}

ENCRYPTION_FLAGS: dict[str, tuple[str, ...]] = {
    "aws:rds/instance:Instance": ("storageEncrypted",),
    "aws:rds/cluster:Cluster": ("storageEncrypted",),
    "aws:elasticache/replicationGroup:ReplicationGroup": ("atRestEncryptionEnabled", "transitEncryptionEnabled"),
    "aws:ec2/instance:Instance": ("rootBlockDevice.encrypted",),
    "aws:ec2/volume:Volume": ("encrypted",),
}
ENCRYPTION_CONFIG_TYPES = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
OBJECT_LOCK_TYPES = frozenset(
    {
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2",
    }
)
LIFECYCLE_TYPES = frozenset(
    {
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
    }
)
RETENTION_FIELDS: dict[str, str] = {
    "aws:rds/instance:Instance": "backupRetentionPeriod",
    "aws:rds/cluster:Cluster": "backupRetentionPeriod",
    "aws:elasticache/replicationGroup:ReplicationGroup": "snapshotRetentionLimit",
    "aws:cloudwatch/logGroup:LogGroup": "retentionInDays",
}


class DiffError(ValueError):
    """Bad input for the diff, said in one line."""


# --------------------------------------------------------------------------- loading plans


def check_plan(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict) or "leanstackPlan" not in data:
        raise DiffError(f"{where}: not a leanstack plan (make one with `python -m leanstack plan STACK --format json`)")
    if data["leanstackPlan"] != PLAN_FORMAT_VERSION:
        raise DiffError(
            f"{where}: a leanstack plan of format version {data['leanstackPlan']}; "
            f"this leanstack reads version {PLAN_FORMAT_VERSION}: re-create it with `plan --format json`"
        )
    if not isinstance(data.get("resources"), list) or not isinstance(data.get("stack"), str):
        raise DiffError(f"{where}: a leanstack plan without its stack or resources")
    return data


def load_plan_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DiffError(f"{path}: cannot read: {exc.__class__.__name__}") from None
    except json.JSONDecodeError as exc:
        raise DiffError(f"{path}: not JSON (line {exc.lineno}): not a leanstack plan") from None
    return check_plan(data, str(path))


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def git_root(start: Path) -> Path | None:
    done = _git(start, "rev-parse", "--show-toplevel")
    return Path(done.stdout.strip()) if done.returncode == 0 else None


class Source:
    """One side of the diff: a saved plan, a git revision or the working tree."""

    def __init__(self, spec: str | None, repo: Path) -> None:
        self.spec = spec or WORKTREE
        self.repo = repo
        self.plan: dict[str, Any] | None = None
        self.tree: Path | None = None
        self.commit = ""
        if spec is None:
            self.tree = repo
            return
        path = Path(spec)
        if path.suffix == ".json" or (path.is_file() and not _git(repo, "rev-parse", "--verify", "-q", spec).stdout):
            if not path.is_file():
                raise DiffError(f"{spec}: no such saved plan")
            self.plan = load_plan_file(path)
            return
        done = _git(repo, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
        if done.returncode != 0 or not done.stdout.strip():
            if git_root(repo) is None:
                raise DiffError(f"{spec}: not a saved plan, and {repo} is not a git repository")
            raise DiffError(f"unknown git revision {spec!r}")
        self.commit = done.stdout.strip()

    @property
    def label(self) -> str:
        if self.plan is not None:
            return self.spec
        return f"{self.spec} ({self.commit[:12]})" if self.commit and self.commit[:12] not in self.spec else self.spec

    def stacks(self) -> list[str]:
        if self.plan is not None:
            return [self.plan["stack"]]
        assert self.tree is not None
        return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (self.tree / "stacks").glob("Pulumi.*.yaml"))

    def materialize(self, into: Path) -> None:
        """Extract the revision's tracked files (git archive) into `into`."""
        if not self.commit:
            return
        archive = into / "tree.tar"
        done = subprocess.run(
            ["git", "-C", str(self.repo), "archive", "--format=tar", "-o", str(archive), self.commit],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise DiffError(f"git archive {self.spec} failed: {done.stderr.strip().splitlines()[-1:]}")
        tree = into / "tree"
        tree.mkdir()
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
        archive.unlink()
        self.tree = tree

    def plan_of(self, stack: str) -> dict[str, Any] | None:
        """The stack's plan on this side, or None when the stack does not exist here."""
        if self.plan is not None:
            return self.plan if self.plan["stack"] == stack else None
        assert self.tree is not None
        if not (self.tree / "stacks" / f"Pulumi.{stack}.yaml").exists():
            return None
        env = dict(os.environ, PYTHONPATH=str(self.tree), PYTHONDONTWRITEBYTECODE="1")
        done = subprocess.run(
            [sys.executable, "-m", "leanstack", "plan", stack, "--format", "json"],
            cwd=self.tree,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1].removeprefix("leanstack: ")
            raise DiffError(f"plan of stack {stack!r} at {self.spec} failed: {last}")
        try:
            data = json.loads(done.stdout)
        except json.JSONDecodeError:
            raise DiffError(f"plan of stack {stack!r} at {self.spec} did not print a JSON plan") from None
        return check_plan(data, f"plan of stack {stack!r} at {self.spec}")


# --------------------------------------------------------------------------- comparing


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted paths; lists stay whole values (compared as a whole)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _get(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def property_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    a, b = flatten(old["inputs"]), flatten(new["inputs"])
    changes = [
        {"property": key, "old": a.get(key), "new": b.get(key)}
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    ]
    for key in ("protect", "retainOnDelete", "provider", "region"):
        if old["options"].get(key) != new["options"].get(key):
            changes.append(
                {"property": f"options.{key}", "old": old["options"].get(key), "new": new["options"].get(key)}
            )
    return changes


def _replacing(kind: str, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    forcing = REPLACES.get(kind, frozenset())
    out = []
    for c in changes:
        top = c["property"].split(".")[0]
        if top in forcing or c["property"] == "options.region":
            out.append(c)
    return out


def holds_data(r: dict[str, Any]) -> bool:
    """Whether replacing or deleting `r` loses something: a STATEFUL type, except a read replica,
    whose data is its source's copy (removing one loses nothing; the source is still there)."""
    return r["type"] in STATEFUL and not r["inputs"].get("replicateSourceDb")


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "..."


def _what(r: dict[str, Any]) -> str:
    if r["inputs"].get("replicateSourceDb"):
        return f"read replica `{r['name']}`"
    return f"{STATEFUL.get(r['type'], r['type'].rsplit(':', 1)[-1])} `{r['name']}`"


def _world_openings(resources: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (o["component"], o["name"], o["port"])
        for o in ingress_openings(resources)
        if o["cidrs"] and source_kind(o["cidrs"]) == "internet"
    }


def _lock(r: dict[str, Any]) -> tuple[str, int]:
    rule = (r["inputs"].get("rule") or {}).get("defaultRetention") or {}
    return str(rule.get("mode") or ""), int(rule.get("days") or 0) + 365 * int(rule.get("years") or 0)


def _expiry_days(r: dict[str, Any]) -> int:
    days = [
        int((rule.get("expiration") or {}).get("days") or 0)
        for rule in r["inputs"].get("rules") or []
        if rule.get("status", "Enabled") == "Enabled"
    ]
    return min([d for d in days if d] or [0])


def risks_for(
    stack: str, base: dict[str, Any] | None, head: dict[str, Any] | None, diff: dict[str, Any]
) -> list[dict[str, str]]:
    """Findings for one stack, most severe kinds first."""
    found: list[dict[str, str]] = []

    def flag(kind: str, r: dict[str, Any], text: str) -> None:
        found.append(
            {"stack": stack, "kind": kind, "type": r["type"], "name": r["name"], "urn": r["urn"], "text": text}
        )

    for c in diff["changed"]:
        old, new = c["old"], c["new"]
        kind = new["type"]
        if c["replaced"] and holds_data(new):
            why = "; ".join(f"`{x['property']}` {_short(x['old'])} → {_short(x['new'])}" for x in c["replacedBy"])
            flag(
                "replaces stateful data",
                new,
                f"{_what(new)} is REPLACED: {why} forces a new {STATEFUL[kind]}; the old one and its data are deleted "
                f"(restore from backup, or revert)",
            )
        if old["options"].get("protect") and not new["options"].get("protect"):
            flag("protection removed", new, f"{_what(new)}: Pulumi `protect` removed")
        if old["inputs"].get("deletionProtection") and not new["inputs"].get("deletionProtection"):
            flag("protection removed", new, f"{_what(new)}: deletion protection turned off")
        if kind in STATEFUL and old["options"].get("retainOnDelete") and not new["options"].get("retainOnDelete"):
            flag("protection removed", new, f"{_what(new)}: `retainOnDelete` removed")
        final_before = not old["inputs"].get("skipFinalSnapshot", True)
        if kind.startswith("aws:rds/") and final_before and new["inputs"].get("skipFinalSnapshot"):
            flag("protection removed", new, f"{_what(new)}: final snapshot on delete turned off")
        for path in ENCRYPTION_FLAGS.get(kind, ()):
            if _get(old["inputs"], path) and not _get(new["inputs"], path):
                flag("encryption turned off", new, f"{_what(new)}: `{path}` true → {_short(_get(new['inputs'], path))}")
        field = RETENTION_FIELDS.get(kind)
        if field:
            before, after = old["inputs"].get(field), new["inputs"].get(field)
            # A log group's retention of 0 means "never expire": not a reduction.
            shorter = isinstance(before, int) and isinstance(after, int) and after < before
            if shorter and not (field == "retentionInDays" and after == 0):
                flag("retention reduced", new, f"{_what(new)}: `{field}` {before} → {after}")
        if kind in OBJECT_LOCK_TYPES:
            (m0, d0), (m1, d1) = _lock(old), _lock(new)
            if (m0 == "COMPLIANCE" and m1 != "COMPLIANCE") or (m0 and not m1):
                flag("retention reduced", new, f"{_what(new)}: Object Lock mode {m0 or 'none'} → {m1 or 'none'}")
            if d1 < d0:
                flag("retention reduced", new, f"{_what(new)}: Object Lock default retention {d0} → {d1} days")
        if kind in LIFECYCLE_TYPES:
            e0, e1 = _expiry_days(old), _expiry_days(new)
            if e0 and e1 and e1 < e0:
                flag("retention reduced", new, f"{_what(new)}: backups now expire after {e1} days instead of {e0}")
        if kind in ENCRYPTION_CONFIG_TYPES and _short(old["inputs"].get("rules")) != _short(new["inputs"].get("rules")):
            algorithms = {
                str(_get(r, "applyServerSideEncryptionByDefault.sseAlgorithm"))
                for r in new["inputs"].get("rules") or []
            }
            if not algorithms or algorithms <= {"None", ""}:
                flag("encryption turned off", new, f"{_what(new)}: default encryption removed")
        if (
            kind == "aws:s3/bucket:Bucket"
            and old["inputs"].get("objectLockEnabled")
            and not new["inputs"].get("objectLockEnabled")
        ):
            flag("retention reduced", new, f"{_what(new)}: Object Lock turned off")
        if (
            kind == "aws:rds/instance:Instance"
            and new["inputs"].get("publiclyAccessible")
            and not old["inputs"].get("publiclyAccessible")
        ):
            flag("newly open to the internet", new, f"{_what(new)}: now publicly accessible")
        if kind == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
            weakened = [k for k, v in sorted(old["inputs"].items()) if v is True and not new["inputs"].get(k)]
            if weakened:
                flag(
                    "newly open to the internet",
                    new,
                    f"{_what(new)}: public access block {', '.join(weakened)} turned off",
                )

    for r in diff["removed"]:
        if holds_data(r):
            renamed = next((a for a in diff["added"] if a["type"] == r["type"] and a["name"] == r["name"]), None)
            renamed = renamed or next(
                (a for a in diff["added"] if a["type"] == r["type"] and a["component"] == r["component"]), None
            )
            if renamed is not None:
                flag(
                    "replaces stateful data",
                    r,
                    f"{_what(r)}: its URN changes to `{renamed['urn']}`; Pulumi deletes the old {STATEFUL[r['type']]} "
                    f"and creates a new one unless the resource has `aliases` for the old URN",
                )
            else:
                flag("deletes stateful data", r, f"{_what(r)} is DELETED with its data")
        if r["type"] in ENCRYPTION_CONFIG_TYPES:
            flag("encryption turned off", r, f"{_what(r)}: default bucket encryption removed")
        if r["type"] in OBJECT_LOCK_TYPES:
            flag("retention reduced", r, f"{_what(r)}: Object Lock configuration removed")

    before = _world_openings(base["resources"]) if base else set()
    after = _world_openings(head["resources"]) if head else set()
    for component, name, port in sorted(after - before):
        r = next((x for x in (head or {}).get("resources", []) if x["name"] == name), None)
        if r is not None:
            flag("newly open to the internet", r, f"{_what(r)} ({component}): {port} open to 0.0.0.0/0 or ::/0")
    order = list(RISK_ORDER)
    found.sort(key=lambda f: (order.index(f["kind"]) if f["kind"] in order else len(order), f["name"], f["text"]))
    unique: list[dict[str, str]] = []
    for f in found:
        if f not in unique:
            unique.append(f)
    return unique


RISK_ORDER = (
    "replaces stateful data",
    "deletes stateful data",
    "protection removed",
    "newly open to the internet",
    "encryption turned off",
    "retention reduced",
)


def diff_plans(stack: str, base: dict[str, Any] | None, head: dict[str, Any] | None) -> dict[str, Any]:
    """Compare one stack's two plans by URN."""
    old = {r["urn"]: r for r in (base or {}).get("resources", [])}
    new = {r["urn"]: r for r in (head or {}).get("resources", [])}
    empty: dict[str, Any] = {"total": 0.0, "resources": {}}
    cost_old: dict[str, Any] = estimate(base) if base else empty
    cost_new: dict[str, Any] = estimate(head) if head else empty
    changed = []
    for urn in sorted(set(old) & set(new)):
        changes = property_changes(old[urn], new[urn])
        if changes:
            forcing = _replacing(new[urn]["type"], changes)
            changed.append(
                {
                    "urn": urn,
                    "type": new[urn]["type"],
                    "name": new[urn]["name"],
                    "component": new[urn]["component"],
                    "changes": changes,
                    "replaced": bool(forcing),
                    "replacedBy": forcing,
                    "old": old[urn],
                    "new": new[urn],
                }
            )
    added = [new[u] for u in sorted(set(new) - set(old))]
    removed = [old[u] for u in sorted(set(old) - set(new))]
    result: dict[str, Any] = {"added": added, "removed": removed, "changed": changed}
    costs = []
    for urn in sorted(set(old) | set(new)):
        a = cost_old["resources"].get(urn, {}).get("monthly") if urn in old else 0.0
        b = cost_new["resources"].get(urn, {}).get("monthly") if urn in new else 0.0
        if a != b:
            r = new.get(urn) or old[urn]
            delta = None if a is None or b is None else money(b - a)
            costs.append({"urn": urn, "name": r["name"], "type": r["type"], "before": a, "after": b, "delta": delta})
    result["cost"] = {
        "before": cost_old["total"] if base else 0.0,
        "after": cost_new["total"] if head else 0.0,
        "delta": money(cost_new["total"] - cost_old["total"]),
        # Resources whose price the totals leave out: a total with any is partial.
        "notPriced": {"before": len(cost_old.get("notPriced", [])), "after": len(cost_new.get("notPriced", []))},
        "resources": costs,
    }
    result["risks"] = risks_for(stack, base, head, result)
    result["exists"] = {"base": base is not None, "head": head is not None}
    return result


def diff_sources(
    base_spec: str, head_spec: str | None, stacks: list[str] | None = None, repo: Path | None = None
) -> dict[str, Any]:
    """Resolve both sides, plan them (in parallel), and diff every stack."""
    repo = repo or git_root(Path.cwd()) or Path.cwd()
    base, head = Source(base_spec, repo), Source(head_spec, repo)
    with tempfile.TemporaryDirectory(prefix="leanstack-diff-") as tmp:
        for n, side in enumerate((base, head)):
            where = Path(tmp) / str(n)
            where.mkdir()
            side.materialize(where)
        names = sorted(set(base.stacks()) | set(head.stacks()))
        if base.plan is not None or head.plan is not None:
            names = sorted({s.plan["stack"] for s in (base, head) if s.plan is not None})
        if stacks:
            missing = [s for s in stacks if s not in names]
            if missing:
                raise DiffError(f"unknown stack {missing[0]!r} (stacks: {', '.join(names) or 'none'})")
            names = sorted(stacks)
        jobs = [(side, stack) for stack in names for side in (base, head)]
        with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
            plans = list(pool.map(lambda job: job[0].plan_of(job[1]), jobs))
    per_stack = {}
    for i, stack in enumerate(names):
        b, h = plans[2 * i], plans[2 * i + 1]
        if b is None and h is None:
            continue
        per_stack[stack] = diff_plans(stack, b, h)
    changed = any(s["added"] or s["removed"] or s["changed"] for s in per_stack.values())
    return {
        "base": base.label,
        "head": head.label,
        "stacks": per_stack,
        "risks": [r for s in per_stack.values() for r in s["risks"]],
        "changed": changed,
    }


# --------------------------------------------------------------------------- rendering


def _counts(s: dict[str, Any]) -> str:
    replaced = sum(1 for c in s["changed"] if c["replaced"])
    extra = f" ({replaced} replaced)" if replaced else ""
    return f"{len(s['added'])} added, {len(s['removed'])} removed, {len(s['changed'])} changed{extra}"


def _cost_line(s: dict[str, Any]) -> str:
    c = s["cost"]
    line = f"{fmt_money(c['before'])} → {fmt_money(c['after'])} a month ({fmt_delta(c['delta'])})"
    unpriced = c.get("notPriced") or {}
    if unpriced.get("before") or unpriced.get("after"):
        line += f"; PARTIAL: {unpriced['before']} → {unpriced['after']} resources not priced, not in the totals"
    return line


def render_markdown(result: dict[str, Any]) -> str:
    lines = [f"## leanstack diff: `{result['base']}` → `{result['head']}`", ""]
    risks = result["risks"]
    if risks:
        lines += [f"### ⚠️ Risk: {len(risks)} finding{'s' if len(risks) != 1 else ''}", ""]
        lines += [f"- **{r['stack']}** — **{r['kind']}**: {r['text']}" for r in risks]
    else:
        lines += ["### Risk: none found", "", "No stateful resource replaced or deleted, no protection removed, no new "
                  "internet exposure, no encryption turned off, no retention reduced."]  # fmt: skip
    lines += ["", "| Stack | Changes | Monthly cost |", "| --- | --- | --- |"]
    for stack, s in result["stacks"].items():
        lines.append(f"| {stack} | {_counts(s)} | {_cost_line(s)} |")
    for stack, s in result["stacks"].items():
        if not (s["added"] or s["removed"] or s["changed"]):
            continue
        lines += ["", f"### {stack}", ""]
        if not s["exists"]["base"]:
            lines.append("_New stack._")
        if not s["exists"]["head"]:
            lines.append("_Stack removed._")
        for c in s["changed"]:
            verb = "**replace**" if c["replaced"] else "update"
            lines.append(f"- ~ {verb} `{c['type']}` **{c['name']}** ({c['component']})")
            for x in c["changes"]:
                lines.append(f"  - `{x['property']}`: `{_short(x['old'])}` → `{_short(x['new'])}`")
        for r in s["added"]:
            lines.append(f"- \\+ create `{r['type']}` **{r['name']}** ({r['component']})")
        for r in s["removed"]:
            lines.append(f"- \\- delete `{r['type']}` **{r['name']}** ({r['component']})")
        if s["cost"]["resources"]:
            lines += ["", "| Resource | Before | After | Delta |", "| --- | ---: | ---: | ---: |"]
            for c in s["cost"]["resources"]:
                delta = fmt_delta(c["delta"]) if c["delta"] is not None else "not priced"
                lines.append(f"| {c['name']} | {fmt_money(c['before'])} | {fmt_money(c['after'])} | {delta} |")
    lines += [
        "",
        "_Offline diff of `python -m leanstack plan` under mocks; prices are AWS on-demand list prices from "
        "`leanstack/pricing.json`. A real `pulumi preview` with credentials is still the final word._",
        "",
    ]
    return "\n".join(lines)


def render_text(result: dict[str, Any]) -> str:
    lines = [f"leanstack diff: {result['base']} → {result['head']}", ""]
    if result["risks"]:
        lines.append(f"RISK: {len(result['risks'])} finding(s)")
        lines += [f"  ! [{r['stack']}] {r['kind']}: {r['text']}" for r in result["risks"]]
    else:
        lines.append("Risk: none found")
    for stack, s in result["stacks"].items():
        lines += ["", f"{stack}: {_counts(s)}; {_cost_line(s)}"]
        for c in s["changed"]:
            lines.append(f"  ~ {'REPLACE' if c['replaced'] else 'update'} {c['type']}  {c['name']}")
            lines += [f"      {x['property']}: {_short(x['old'])} → {_short(x['new'])}" for x in c["changes"]]
        lines += [f"  + {r['type']}  {r['name']}" for r in s["added"]]
        lines += [f"  - {r['type']}  {r['name']}" for r in s["removed"]]
        for c in s["cost"]["resources"]:
            delta = fmt_delta(c["delta"]) if c["delta"] is not None else "not priced"
            lines.append(f"  $ {c['name']}: {fmt_money(c['before'])} → {fmt_money(c['after'])} ({delta})")
    return "\n".join(lines) + "\n"


def render_json(result: dict[str, Any]) -> str:
    slim = json.loads(json.dumps(result))
    for s in slim["stacks"].values():
        for c in s["changed"]:
            c.pop("old", None)
            c.pop("new", None)
        s["added"] = [{"urn": r["urn"], "type": r["type"], "name": r["name"]} for r in s["added"]]
        s["removed"] = [{"urn": r["urn"], "type": r["type"], "name": r["name"]} for r in s["removed"]]
    return json.dumps(slim, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}

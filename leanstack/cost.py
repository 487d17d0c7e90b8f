"""Monthly cost of a plan, per resource, per component and in total, from `pricing.json`.

Pricing is by resource *type*: the table of resource types (`leanstack.config.resource_types`)
names each priced type's rule, and the rule here of that name reads the resource's inputs
(instance class, storage, Multi-AZ, engine, period...) and the region it lives in, and
returns dollars a month with a one-line basis a reviewer can check by hand. Types known to
cost nothing say why in the table (FREE here); every other type is "not priced", shown
as such and never counted as zero, so a new resource nobody priced stands out.

Usage-based charges (log ingestion, backup storage, e-mails) are priced from the stated
assumptions in pricing.json and named on each resource that uses one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from leanstack.config.resource_types import EC2_LAUNCH_TEMPLATE, RDS_INSTANCE, TYPES

PRICING_FILE = Path(__file__).with_name("pricing.json")

PRICED, FREE_STATUS, NOT_PRICED = "priced", "free", "not priced"

# Types that cost nothing by themselves, with the reason shown in the plan (the table's `free`).
FREE: dict[str, str] = {token: entry.free for token, entry in TYPES.items() if entry.free}
FREE_PREFIXES: dict[str, str] = {
    "pulumi:providers:": "a provider configuration, not a cloud resource",
    "cloudflare:": "included in Cloudflare's Free plan",
}


@dataclass(frozen=True)
class Price:
    """What one resource costs a month, and how that was worked out."""

    status: str  # priced | free | not priced
    monthly: float | None
    basis: str
    assumptions: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "monthly": self.monthly,
            "basis": self.basis,
            "assumptions": list(self.assumptions),
        }


@dataclass
class Context:
    """What a pricing function may consult besides the resource itself."""

    pricing: dict[str, Any]
    resources: list[dict[str, Any]]
    default_region: str
    assumptions_used: set[str] = field(default_factory=set)

    def region_table(self, region: str) -> dict[str, Any] | None:
        table: dict[str, Any] | None = self.pricing["regions"].get(region)
        return table

    @property
    def hours(self) -> float:
        return float(self.pricing["hoursPerMonth"])

    def assume(self, key: str) -> str:
        text: str = self.pricing["assumptionText"][key]
        return text


@lru_cache(maxsize=1)
def load_pricing() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PRICING_FILE.read_text(encoding="utf-8"))
    return data


def money(value: float) -> float:
    """Round to cents (half up, so 0.125 is 0.13 on every machine)."""
    return float(int(value * 100 + 0.5 + 1e-9)) / 100 if value >= 0 else -money(-value)


def fmt_money(value: float | None) -> str:
    if value is None:
        return "not priced"
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def fmt_total(total: float, not_priced: int, resources: int) -> str:
    """A headline total: `$12.34/month`, or, with unpriced resources, says it is partial and by how much.

    A total that leaves resources out is a floor, not the bill: a stack moved to a region the price
    table lacks would otherwise show a few dollars as if that were all it costs.
    """
    text = f"{fmt_money(total)}/month"
    if not_priced:
        text += f" (PARTIAL: {not_priced} of {resources} resources not priced and not counted)"
    return text


def fmt_delta(value: float) -> str:
    return f"+${value:,.2f}" if value >= 0 else f"-${-value:,.2f}"


PriceFn = Callable[[dict[str, Any], dict[str, Any], Context], Price]


def _not_priced(why: str) -> Price:
    return Price(NOT_PRICED, None, why)


def _ec2_instance(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    kind = str(r["inputs"].get("instanceType", ""))
    hourly = t["ec2Hourly"].get(kind)
    if hourly is None:
        return _not_priced(f"no price for EC2 {kind or '?'} in {r['options']['region']}")
    root = r["inputs"].get("rootBlockDevice") or {}
    size = float(root.get("volumeSize") or 8)
    volume_type = str(root.get("volumeType") or "gp3")
    total = hourly * ctx.hours
    basis = f"{kind} {ctx.hours:g} h x ${hourly}/h"
    if volume_type == "gp3":
        total += size * t["ebsGp3GbMonth"]
        basis += f" + {size:g} GB gp3 x ${t['ebsGp3GbMonth']}/GB"
    else:
        basis += f" (root volume type {volume_type}: not priced)"
    return Price(PRICED, money(total), basis)


def _launch_template(ctx: Context, template_id: str) -> dict[str, Any] | None:
    for other in ctx.resources:
        if other["type"] == EC2_LAUNCH_TEMPLATE.token and template_id in (other.get("id"), other["urn"]):
            return other
    return None


def _autoscaling_group(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    """The group's hosts at their steady count: instance hours, root volumes and public IPv4 addresses."""
    i = r["inputs"]
    spec = i.get("launchTemplate") or {}
    template = _launch_template(ctx, str(spec.get("id") or ""))
    if template is None:
        return _not_priced("no launch template found for the group")
    lt = template["inputs"]
    kind = str(lt.get("instanceType", ""))
    hourly = t["ec2Hourly"].get(kind)
    if hourly is None:
        return _not_priced(f"no price for EC2 {kind or '?'} in {r['options']['region']}")
    # Desired capacity when fixed; an autoscaled group (no desired capacity) is priced at its minimum.
    count = int(i.get("desiredCapacity") or i.get("minSize") or 0)
    maximum = int(i.get("maxSize") or count)
    size = sum(
        float((m.get("ebs") or {}).get("volumeSize") or 8)
        for m in lt.get("blockDeviceMappings") or []
        if str((m.get("ebs") or {}).get("volumeType") or "gp3") == "gp3"
    )
    public = any(n.get("associatePublicIpAddress") in (True, "true") for n in lt.get("networkInterfaces") or [])
    ipv4 = t["publicIpv4Hourly"] if public else 0.0
    each = hourly * ctx.hours + size * t["ebsGp3GbMonth"] + ipv4 * ctx.hours
    basis = f"{count} x ({kind} {ctx.hours:g} h x ${hourly}/h + {size:g} GB gp3 x ${t['ebsGp3GbMonth']}/GB"
    basis += f" + public IPv4 {ctx.hours:g} h x ${ipv4}/h)" if public else ")"
    if maximum > count:
        basis += f"; up to {maximum} hosts when scaled out: {fmt_money(money(each * maximum))}"
    return Price(PRICED, money(each * count), basis)


def _load_balancer(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    i = r["inputs"]
    kind = str(i.get("loadBalancerType") or "application")
    if kind != "application":
        return _not_priced(f"{kind} load balancers are not in the price table")
    prices = t.get("alb")
    if prices is None:
        return _not_priced(f"no Application Load Balancer price for {r['options']['region']}")
    lcus = float(ctx.pricing["assumptions"]["albLcus"])
    ctx.assumptions_used.add("albLcus")
    total = prices["hourly"] * ctx.hours + lcus * prices["lcuHourly"] * ctx.hours
    basis = f"ALB {ctx.hours:g} h x ${prices['hourly']}/h + {lcus:g} LCU x {ctx.hours:g} h x ${prices['lcuHourly']}/h"
    if not i.get("internal"):
        # An internet-facing ALB holds one public IPv4 address per subnet (AZ), billed like any other.
        addresses = len(i.get("subnets") or i.get("subnetMappings") or []) or 2
        total += addresses * t["publicIpv4Hourly"] * ctx.hours
        basis += f" + {addresses} public IPv4 x {ctx.hours:g} h x ${t['publicIpv4Hourly']}/h"
    return Price(PRICED, money(total), basis, (ctx.assume("albLcus"),))


def _eip(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    hourly = t["publicIpv4Hourly"]
    return Price(PRICED, money(hourly * ctx.hours), f"public IPv4 {ctx.hours:g} h x ${hourly}/h")


def _replica_source(r: dict[str, Any], ctx: Context) -> dict[str, Any] | None:
    source = r["inputs"].get("replicateSourceDb")
    for other in ctx.resources:
        if other["type"] == r["type"] and source and source in (other["inputs"].get("identifier"), other.get("id")):
            return other
    return None


def _rds_instance(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    i = r["inputs"]
    replica = bool(i.get("replicateSourceDb"))
    if replica:
        # A read replica inherits engine and storage size from its source; it has no secret of its own.
        source = _replica_source(r, ctx)
        if source is None:
            return _not_priced(f"read replica of {i.get('replicateSourceDb')}, which is not in this plan")
        inherited = {k: source["inputs"].get(k) for k in ("engine", "allocatedStorage", "storageType")}
        i = {**inherited, **{k: v for k, v in i.items() if v is not None}, "manageMasterUserPassword": False}
    engine = str(i.get("engine", ""))
    klass = str(i.get("instanceClass", ""))
    if engine != "postgres":
        return _not_priced(f"RDS engine {engine or '?'} is not in the price table")
    hourly = t["rdsPostgresHourly"].get(klass)
    if hourly is None:
        return _not_priced(f"no price for RDS {klass or '?'} in {r['options']['region']}")
    multi = bool(i.get("multiAz"))
    factor = t["rdsMultiAzFactor"] if multi else 1
    storage = float(i.get("allocatedStorage") or 20)
    storage_type = str(i.get("storageType") or "gp3")
    az = "Multi-AZ" if multi else "Single-AZ"
    total = hourly * factor * ctx.hours
    basis = (
        "read replica: " if replica else ""
    ) + f"{klass} {az} {ctx.hours:g} h x ${money(hourly * factor * 1000) / 1000:g}/h"
    if storage_type == "gp3":
        total += storage * t["rdsGp3GbMonth"] * factor
        basis += f" + {storage:g} GB gp3 x ${t['rdsGp3GbMonth']}/GB" + (f" x {factor}" if multi else "")
    else:
        basis += f" (storage type {storage_type}: not priced)"
    if i.get("manageMasterUserPassword"):
        secret = ctx.pricing["global"]["secretsManagerSecretMonth"]
        total += secret
        basis += f" + RDS-managed master secret ${secret}"
    ctx.assumptions_used.add("rdsBackups")
    return Price(PRICED, money(total), basis, (ctx.assume("rdsBackups"),))


def _elasticache_group(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    i = r["inputs"]
    node = str(i.get("nodeType", ""))
    engine = str(i.get("engine") or "redis")
    hourly = t["elasticacheRedisHourly"].get(node)
    if hourly is None or engine not in ("redis", "valkey"):
        return _not_priced(f"no price for ElastiCache {engine} {node or '?'} in {r['options']['region']}")
    if engine == "valkey":
        hourly = hourly * t["elasticacheValkeyFactor"]
    nodes = int(i.get("numCacheClusters") or (int(i.get("replicasPerNodeGroup") or 0) + 1))
    shards = int(i.get("numNodeGroups") or 1)
    count = nodes * shards
    total = hourly * count * ctx.hours
    return Price(
        PRICED, money(total), f"{count} x {engine} {node} {ctx.hours:g} h x ${money(hourly * 10000) / 10000:g}/h"
    )


def _secret(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    price = ctx.pricing["global"]["secretsManagerSecretMonth"]
    return Price(PRICED, money(price), f"1 secret x ${price}/month")


def _ssm_parameter(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    tier = str(r["inputs"].get("tier") or "Standard")
    if tier == "Advanced":
        price = ctx.pricing["global"]["ssmAdvancedParameterMonth"]
        return Price(PRICED, money(price), f"advanced parameter ${price}/month")
    if tier == "Standard":
        return Price(FREE_STATUS, 0.0, "standard parameter: no charge")
    return _not_priced(f"SSM parameter tier {tier}")


def _metric_alarm(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    i = r["inputs"]
    queries = i.get("metricQueries") or []
    standard, high = t["cloudwatchAlarmMetricMonth"], t["cloudwatchHighResAlarmMetricMonth"]
    if queries:
        metrics = [q for q in queries if q.get("metric")]
        fast = any(int((q.get("metric") or {}).get("period") or 60) < 60 for q in metrics)
        unit = high if fast else standard
        kind = "high-resolution" if fast else "standard"
        return Price(
            PRICED, money(unit * len(metrics)), f"metric-math alarm over {len(metrics)} {kind} metrics x ${unit}"
        )
    period = int(i.get("period") or 60)
    if period < 60:
        return Price(PRICED, money(high), f"high-resolution alarm (period {period} s) ${high}/month")
    return Price(PRICED, money(standard), f"standard alarm ${standard}/month")


def _dashboard(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    """A CloudWatch dashboard: priced in full, though an account's first few are free."""
    g = ctx.pricing["global"]
    price, free = g["cloudwatchDashboardMonth"], g["cloudwatchDashboardsFree"]
    return Price(PRICED, money(price), f"one dashboard ${price}/month (an account's first {free} are free)")


def _composite_alarm(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    price = t["cloudwatchCompositeAlarmMonth"]
    return Price(PRICED, money(price), f"composite alarm ${price}/month")


def _log_group(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    gb = float(ctx.pricing["assumptions"]["logsGbPerMonth"])
    retention = int(r["inputs"].get("retentionInDays") or 0)
    stored = gb * (min(retention, 30) / 30 if retention else 1)
    total = gb * t["logsIngestGb"] + stored * t["logsStoreGbMonth"]
    ctx.assumptions_used.add("logsGbPerMonth")
    basis = f"{gb:g} GB ingested x ${t['logsIngestGb']} + {stored:g} GB stored x ${t['logsStoreGbMonth']}"
    return Price(PRICED, money(total), basis, (ctx.assume("logsGbPerMonth"),))


def _lifecycle_for(bucket: dict[str, Any], ctx: Context) -> dict[str, Any] | None:
    names = {str(bucket.get("id") or ""), str(bucket["inputs"].get("bucket") or "")} - {""}
    prefix = str(bucket["inputs"].get("bucketPrefix") or "")
    for other in ctx.resources:
        if "bucketLifecycleConfiguration" not in other["type"]:
            continue
        target = str(other["inputs"].get("bucket") or "")
        if target in names or (prefix and target.startswith(prefix)):
            return other
    return None


def _s3_bucket(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    backup = bool(r["inputs"].get("objectLockEnabled")) or r["component"] == "BackupBucket"
    key = "uploadsGb" if r["component"] == "Storage" else "backupBucketGb" if backup else "otherBucketGb"
    gb = float(ctx.pricing["assumptions"][key])
    ctx.assumptions_used.add(key)
    standard_share = 1.0
    lifecycle = _lifecycle_for(r, ctx)
    if lifecycle is not None:
        for rule in lifecycle["inputs"].get("rules") or []:
            if rule.get("status", "Enabled") != "Enabled":
                continue
            expire = int((rule.get("expiration") or {}).get("days") or 0)
            for transition in rule.get("transitions") or []:
                if transition.get("storageClass") == "GLACIER_IR" and expire:
                    after = int(transition.get("days") or 0)
                    standard_share = min(standard_share, min(after, expire) / expire)
    std, gir = gb * standard_share, gb * (1 - standard_share)
    total = std * t["s3StandardGbMonth"] + gir * t["s3GlacierIrGbMonth"]
    basis = f"{std:.3g} GB Standard x ${t['s3StandardGbMonth']}"
    if gir:
        basis += f" + {gir:.3g} GB Glacier IR x ${t['s3GlacierIrGbMonth']}"
    return Price(PRICED, money(total), basis, (ctx.assume(key), ctx.assume("requests")))


def _replication(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    """S3 replication: the inter-region transfer of what is written, plus its replication metrics."""
    gb = float(ctx.pricing["assumptions"]["uploadsNewGbPerMonth"])
    ctx.assumptions_used.add("uploadsNewGbPerMonth")
    g = ctx.pricing["global"]
    rules = r["inputs"].get("rules") or []
    metrics = 4 * sum(
        1 for rule in rules if ((rule.get("destination") or {}).get("metrics") or {}).get("status") == "Enabled"
    )
    total = gb * g["s3ReplicationTransferGb"] + metrics * g["customMetricMonth"]
    transfer, metric = g["s3ReplicationTransferGb"], g["customMetricMonth"]
    basis = f"{gb:g} GB replicated x ${transfer} + {metrics} replication metrics x ${metric}"
    return Price(PRICED, money(total), basis, (ctx.assume("uploadsNewGbPerMonth"),))


def _rds_backup_replication(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    """Replicated automated backups: about the source's allocated storage, stored and transferred."""
    source = next((o for o in ctx.resources if o["type"] == RDS_INSTANCE.token
                   and not o["inputs"].get("replicateSourceDb")), None)  # fmt: skip
    gb = float((source or {}).get("inputs", {}).get("allocatedStorage") or 20)
    g = ctx.pricing["global"]
    ctx.assumptions_used.add("rdsReplicatedBackups")
    total = gb * (g["rdsReplicatedBackupGbMonth"] + g["s3ReplicationTransferGb"])
    basis = f"{gb:g} GB x (${g['rdsReplicatedBackupGbMonth']} stored + ${g['s3ReplicationTransferGb']} transferred)"
    return Price(PRICED, money(total), basis, (ctx.assume("rdsReplicatedBackups"),))


def _database_source(ctx: Context) -> dict[str, Any] | None:
    """The plan's primary RDS instance (not a read replica)."""
    return next((o for o in ctx.resources if o["type"] == RDS_INSTANCE.token
                 and not o["inputs"].get("replicateSourceDb")), None)  # fmt: skip


def _backup_plan(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    """AWS Backup's snapshots of the database, here and in each copy vault, and the copies' transfer."""
    gb = float((_database_source(ctx) or {}).get("inputs", {}).get("allocatedStorage") or 20)
    g = ctx.pricing["global"]
    copies = sum(len(rule.get("copyActions") or []) for rule in r["inputs"].get("rules") or [])
    ctx.assumptions_used.add("awsBackup")
    stored, moved = g["awsBackupRdsSnapshotGbMonth"], g["awsBackupCopyTransferGb"]
    total = gb * stored * (1 + copies) + gb * moved * copies
    basis = f"{gb:g} GB of snapshots x ${stored} in {1 + copies} vault(s) + {copies} x {gb:g} GB copied x ${moved}"
    return Price(PRICED, money(total), basis, (ctx.assume("awsBackup"),))


def _restore_test(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    """A monthly restore test: AWS Backup's charge and the test instance's hours."""
    g = ctx.pricing["global"]
    source = _database_source(ctx)
    klass = str((source or {}).get("inputs", {}).get("instanceClass", ""))
    hourly = t["rdsPostgresHourly"].get(klass)
    if hourly is None:
        return _not_priced(f"no price for RDS {klass or '?'} (the restore test's instance)")
    hours = int(r["inputs"].get("validationWindowHours") or 1) + 1
    ctx.assumptions_used.add("awsBackup")
    total = g["awsBackupRestoreTestJob"] + hours * hourly
    basis = f"one test a month ${g['awsBackupRestoreTestJob']} + {klass} Single-AZ {hours} h x ${hourly}/h"
    return Price(PRICED, money(total), basis, (ctx.assume("awsBackup"),))


def _ecr_repository(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    gb = float(ctx.pricing["assumptions"]["appImagesGb"])
    price = ctx.pricing["global"]["ecrStorageGbMonth"]
    ctx.assumptions_used.add("appImagesGb")
    return Price(PRICED, money(gb * price), f"{gb:g} GB of images x ${price}/GB", (ctx.assume("appImagesGb"),))


def _sns_subscription(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    protocol = str(r["inputs"].get("protocol", ""))
    if protocol != "email" and protocol != "email-json":
        return _not_priced(f"SNS {protocol or '?'} delivery")
    ctx.assumptions_used.add("alertEmailsPerMonth")
    return Price(PRICED, 0.0, "e-mail delivery inside the free 1,000 a month", (ctx.assume("alertEmailsPerMonth"),))


def _budget(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    """AWS Budgets: an account's first budgets are free, each further one is billed per day."""
    g, assumptions = ctx.pricing["global"], ctx.pricing["assumptions"]
    ctx.assumptions_used.add("budgetsInAccount")
    day = g["budgetDay"]
    beyond = money(day * ctx.hours / 24)
    if int(assumptions["budgetsInAccount"]) <= int(g["budgetsFreePerAccount"]):
        free = g["budgetsFreePerAccount"]
        basis = f"one of the account's {free} free budgets; a further one is ${day}/day (${beyond}/month)"
        return Price(PRICED, 0.0, basis, (ctx.assume("budgetsInAccount"),))
    return Price(PRICED, beyond, f"${day}/day x {ctx.hours / 24:g} days", (ctx.assume("budgetsInAccount"),))


def _health_check(r: dict[str, Any], t: dict[str, Any], ctx: Context) -> Price:
    i = r["inputs"]
    prices = ctx.pricing["global"]["route53HealthCheck"]
    kind = str(i.get("type", ""))
    if kind in ("CALCULATED", "CLOUDWATCH_METRIC"):
        return Price(PRICED, money(prices["awsEndpoint"]), f"{kind} health check ${prices['awsEndpoint']}/month")
    # An endpoint given by name resolves through Cloudflare, which AWS bills as a non-AWS endpoint.
    non_aws = bool(i.get("fqdn")) and not i.get("ipAddress")
    base = prices["nonAwsEndpoint" if non_aws else "awsEndpoint"]
    feature = prices["nonAwsEndpointOptionalFeature" if non_aws else "awsEndpointOptionalFeature"]
    features = []
    if kind.startswith("HTTPS"):
        features.append("HTTPS")
    if kind.endswith("_STR_MATCH"):
        features.append("string matching")
    if int(i.get("requestInterval") or 30) < 30:
        features.append("fast interval")
    if i.get("measureLatency"):
        features.append("latency measurement")
    total = base + feature * len(features)
    where = "a non-AWS endpoint (resolves to Cloudflare)" if non_aws else "an AWS endpoint"
    extra = f" + {len(features)} optional features ({', '.join(features)}) x ${feature}" if features else ""
    return Price(PRICED, money(total), f"{kind} check of {where} ${base}{extra}")


# The cost model's rules by name (the table of resource types names each type's rule): a regional
# rule reads the region's prices, a global one only the global prices.
REGIONAL_RULES: dict[str, PriceFn] = {
    "ec2_instance": _ec2_instance,
    "eip": _eip,
    "autoscaling_group": _autoscaling_group,
    "load_balancer": _load_balancer,
    "rds_instance": _rds_instance,
    "elasticache_group": _elasticache_group,
    "secret": _secret,
    "ssm_parameter": _ssm_parameter,
    "metric_alarm": _metric_alarm,
    "composite_alarm": _composite_alarm,
    "log_group": _log_group,
    "s3_bucket": _s3_bucket,
    "sns_subscription": _sns_subscription,
    "ecr_repository": _ecr_repository,
    "replication": _replication,
    "rds_backup_replication": _rds_backup_replication,
    "backup_plan": _backup_plan,
    "restore_test": _restore_test,
}
GLOBAL_RULES: dict[str, PriceFn] = {
    "health_check": _health_check,
    "budget": _budget,
    "dashboard": _dashboard,
}
REGIONAL: dict[str, PriceFn] = {t: REGIONAL_RULES[e.price] for t, e in TYPES.items() if e.price in REGIONAL_RULES}
GLOBAL: dict[str, PriceFn] = {t: GLOBAL_RULES[e.price] for t, e in TYPES.items() if e.price in GLOBAL_RULES}
PRICED_TYPES = frozenset(REGIONAL) | frozenset(GLOBAL)


def price_resource(resource: dict[str, Any], ctx: Context) -> Price:
    kind = resource["type"]
    if kind in FREE:
        return Price(FREE_STATUS, 0.0, FREE[kind])
    for prefix, why in FREE_PREFIXES.items():
        if kind.startswith(prefix):
            return Price(FREE_STATUS, 0.0, why)
    if kind in GLOBAL:
        return GLOBAL[kind](resource, {}, ctx)
    if kind in REGIONAL:
        region = resource["options"].get("region") or ctx.default_region
        table = ctx.region_table(region)
        if table is None:
            return _not_priced(f"no prices for region {region}")
        return REGIONAL[kind](resource, table, ctx)
    return _not_priced(f"{kind} is not in leanstack's price table")


def estimate(plan: dict[str, Any], pricing: dict[str, Any] | None = None) -> dict[str, Any]:
    """Cost of every resource of a plan, per component and in total (JSON-ready, deterministic)."""
    pricing = pricing or load_pricing()
    resources: list[dict[str, Any]] = plan["resources"]
    region = str((plan.get("outputs") or {}).get("region") or "us-east-1")
    ctx = Context(pricing=pricing, resources=resources, default_region=region)
    per_resource: dict[str, dict[str, Any]] = {}
    components: dict[str, dict[str, Any]] = {}
    for r in resources:
        price = price_resource(r, ctx)
        per_resource[r["urn"]] = price.as_dict()
        entry = components.setdefault(r["component"], {"monthly": 0.0, "notPriced": []})
        if price.monthly is None:
            entry["notPriced"].append(r["name"])
        else:
            entry["monthly"] = money(entry["monthly"] + price.monthly)
    not_priced = [
        {"type": r["type"], "name": r["name"], "why": per_resource[r["urn"]]["basis"]}
        for r in sorted(resources, key=lambda x: (x["type"], x["name"]))
        if per_resource[r["urn"]]["monthly"] is None
    ]
    total = money(sum(c["monthly"] for c in components.values()))
    return {
        "currency": "USD",
        # The date of the stack's own region's prices (regions were added at different times).
        "pricesTaken": (pricing.get("regionSources") or {}).get(region, {}).get("takenOn", pricing["takenOn"]),
        "total": total,
        "components": {name: components[name] for name in sorted(components)},
        "resources": {urn: per_resource[urn] for urn in sorted(per_resource)},
        "notPriced": not_priced,
        "assumptions": sorted(
            {pricing["assumptionText"][k] for k in ctx.assumptions_used}
            | {pricing["assumptionText"][k] for k in ("dataTransfer", "requests", "customMetrics")}
        ),
    }

"""The offline plan: every resource a stack would create, grouped by component.

`build_plan(run)` turns a recorded offline run into a plain, JSON-ready dict that is
stable across runs and machines (sorted, no timestamps, secrets as "[secret]"), and
`render_text` prints it for a terminal with the settings that matter for each resource.
"""

from __future__ import annotations

import json
from typing import Any

from leanstack.mocks import StackRun, redact

PLAN_FORMAT_VERSION = 1

# The inputs worth a line in the text plan, per resource type; the JSON plan has them all.
KEY_INPUTS: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "mapPublicIpOnLaunch"),
    "aws:ec2/securityGroup:SecurityGroup": ("name", "ingress"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ("fromPort", "toPort", "description"),
    "aws:ec2/instance:Instance": ("instanceType", "ami", "metadataOptions", "rootBlockDevice", "keyName"),
    "aws:ec2/eip:Eip": ("domain",),
    "aws:rds/instance:Instance": (
        "identifier",
        "engine",
        "engineVersion",
        "instanceClass",
        "allocatedStorage",
        "maxAllocatedStorage",
        "multiAz",
        "storageEncrypted",
        "publiclyAccessible",
        "backupRetentionPeriod",
        "deletionProtection",
        "skipFinalSnapshot",
        "manageMasterUserPassword",
    ),
    "aws:rds/parameterGroup:ParameterGroup": ("family", "parameters"),
    "aws:elasticache/replicationGroup:ReplicationGroup": (
        "engine",
        "nodeType",
        "atRestEncryptionEnabled",
        "transitEncryptionEnabled",
        "authToken",
    ),
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix", "objectLockEnabled"),
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": ("rule",),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ("rules",),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ("blockPublicAcls", "restrictPublicBuckets"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("metricName", "comparisonOperator", "threshold", "period"),
    "aws:sns/topicSubscription:TopicSubscription": ("protocol", "endpoint"),
    "aws:ssm/parameter:Parameter": ("name", "type", "value"),
    "aws:iam/role:Role": ("name",),
    "cloudflare:index/dnsRecord:DnsRecord": ("name", "type", "proxied"),
    "cloudflare:index/zoneSetting:ZoneSetting": ("settingId", "value"),
    "cloudflare:index/originCaCertificate:OriginCaCertificate": (
        "hostnames",
        "requestType",
        "requestedValidity",
    ),
    "pulumi:providers:aws": ("region", "profile"),
}


def build_plan(run: StackRun) -> dict[str, Any]:
    """A JSON-ready, deterministic description of everything the stack declares."""
    components = {r.urn: r for r in run.components()}
    resources = []
    for r in run.resources:
        if r.urn in components:
            continue
        resources.append(
            {
                "component": r.component,
                "type": r.type,
                "name": r.name,
                "urn": r.urn,
                "inputs": redact(r.inputs),
                "options": {
                    "protect": r.protect,
                    "retainOnDelete": r.retain_on_delete,
                    "provider": r.provider.rsplit("::", 1)[-1] if r.provider else "default",
                    "region": r.region,
                },
            }
        )
    resources.sort(key=lambda item: (item["component"], item["type"], item["name"]))
    return {
        "leanstackPlan": PLAN_FORMAT_VERSION,
        "stack": run.stack,
        "components": sorted({str(item["component"]) for item in resources}),
        "resources": resources,
        "outputs": redact(run.outputs),
    }


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 100 else text[:97] + "..."


def render_text(plan: dict[str, Any]) -> str:
    resources: list[dict[str, Any]] = plan["resources"]
    lines = [
        f"leanstack plan — stack {plan['stack']}: {len(resources)} resources in "
        f"{len(plan['components'])} components (offline, under mocks)",
    ]
    for component in plan["components"]:
        members = [r for r in resources if r["component"] == component]
        lines += ["", f"{component} ({len(members)})"]
        for r in members:
            flags = [f for f in ("protect", "retainOnDelete") if r["options"][f]]
            region = f" @{r['options']['region']}" if r["options"]["region"] else ""
            lines.append(f"  + {r['type']}  {r['name']}{region}{'  [' + ', '.join(flags) + ']' if flags else ''}")
            for key in KEY_INPUTS.get(r["type"], ()):
                if key in r["inputs"]:
                    lines.append(f"      {key} = {_short(r['inputs'][key])}")
    if plan["outputs"]:
        lines += ["", "Outputs"]
        lines += [f"  {key} = {_short(value)}" for key, value in sorted(plan["outputs"].items())]
    return "\n".join(lines) + "\n"


def render_json(plan: dict[str, Any]) -> str:
    return json.dumps(plan, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

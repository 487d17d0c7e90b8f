"""The default monthly budget: 1.5 x what the config's big-ticket items (and the dashboard) cost.

Prices are leanstack/pricing.json's.

The program (`__main__.py`) hands the result to the Budget component as `limit_usd` when the
stack file leaves `budget.monthlyUsd` at 0; the component itself takes any limit a user gives.
"""

from __future__ import annotations

import math
from typing import Any

from leanstack.config import StackConfig
from leanstack.cost import Context, load_pricing, price_resource

DEFAULT_FACTOR = 1.5


def _basis_resources(cfg: StackConfig) -> list[dict[str, Any]]:
    """The config's big-ticket items, as the resource inputs the plan's pricing functions read."""
    region = {"region": cfg.region}
    host = {"instanceType": cfg.host.instance_type, "rootBlockDevice": {"volumeSize": cfg.host.root_volume_gb}}
    hosts = cfg.hosts
    resources: list[dict[str, Any]] = []
    if hosts.scaled:
        count = hosts.autoscale.min if hosts.autoscale.max else hosts.count
        resources.append(
            {
                "type": "aws:ec2/launchTemplate:LaunchTemplate",
                "id": "basis-hosts",
                "urn": "basis-hosts",
                "inputs": {
                    "instanceType": cfg.host.instance_type,
                    "blockDeviceMappings": [{"ebs": {"volumeSize": cfg.host.root_volume_gb}}],
                    "networkInterfaces": [{"associatePublicIpAddress": True}],
                },
                "options": region,
            }
        )
        resources.append(
            {
                "type": "aws:autoscaling/group:Group",
                "urn": "basis-group",
                "inputs": {"launchTemplate": {"id": "basis-hosts"}, "desiredCapacity": count},
                "options": region,
            }
        )
        resources.append(
            {"type": "aws:lb/loadBalancer:LoadBalancer", "urn": "basis-lb", "inputs": {}, "options": region}
        )
    else:
        resources.append({"type": "aws:ec2/instance:Instance", "urn": "basis-host", "inputs": host, "options": region})
        resources.append({"type": "aws:ec2/eip:Eip", "urn": "basis-ip", "inputs": {}, "options": region})
    db = cfg.database
    primary = {
        "engine": "postgres",
        "identifier": "basis-db",
        "instanceClass": db.instance_class,
        "allocatedStorage": db.allocated_storage_gb,
        "multiAz": db.multi_az,
        "manageMasterUserPassword": True,
    }
    resources.append({"type": "aws:rds/instance:Instance", "urn": "basis-db", "inputs": primary, "options": region})
    for n in range(db.read_replicas):
        replica = {"replicateSourceDb": "basis-db", "instanceClass": db.instance_class, "multiAz": db.replica_multi_az}
        resources.append(
            {"type": "aws:rds/instance:Instance", "urn": f"basis-replica-{n}", "inputs": replica, "options": region}
        )
    if cfg.cache.enabled:
        cache = {
            "nodeType": cfg.cache.node_type,
            "engine": cfg.cache.engine,
            "numCacheClusters": cfg.cache.replicas + 1,
        }
        resources.append(
            {
                "type": "aws:elasticache/replicationGroup:ReplicationGroup",
                "urn": "basis-cache",
                "inputs": cache,
                "options": region,
            }
        )
    # A fixed $3 of every stack since the dashboard came; without it, the alarms and logs the basis leaves out
    # would push a small stack's real bill past the 80% line the basis is meant to stay under.
    resources.append(
        {"type": "aws:cloudwatch/dashboard:Dashboard", "urn": "basis-dashboard", "inputs": {}, "options": region}
    )
    return resources


def budget_basis_usd(cfg: StackConfig, pricing: dict[str, Any] | None = None) -> float:
    """What the config's hosts, load balancer, database, cache and dashboard cost a month (0 if not priced)."""
    resources = _basis_resources(cfg)
    ctx = Context(pricing=pricing or load_pricing(), resources=resources, default_region=cfg.region)
    return sum(price_resource(r, ctx).monthly or 0.0 for r in resources)


def default_limit_usd(cfg: StackConfig, pricing: dict[str, Any] | None = None) -> int:
    """1.5 x the basis, rounded up to a whole dollar; at least $1 (AWS refuses a zero budget)."""
    return max(1, math.ceil(round(DEFAULT_FACTOR * budget_basis_usd(cfg, pricing), 2)))

"""The default monthly budget: 1.5 x what the config's big-ticket items (and the dashboard) cost.

Prices are leanstack/pricing.json's.

The program (`__main__.py`) hands the result to the Budget component as `limit_usd` when the
stack file leaves `budget.monthlyUsd` at 0; the component itself takes any limit a user gives.
"""

from __future__ import annotations

import math
from typing import Any

from leanstack.config import StackConfig
from leanstack.config.resource_types import (
    AUTOSCALING_GROUP,
    CLOUDWATCH_DASHBOARD,
    EC2_EIP,
    EC2_INSTANCE,
    EC2_LAUNCH_TEMPLATE,
    ELASTICACHE_REPLICATION_GROUP,
    LB_LOAD_BALANCER,
    RDS_INSTANCE,
    ResourceType,
)
from leanstack.cost import Context, load_pricing, price_resource

DEFAULT_FACTOR = 1.5


def _resource(kind: ResourceType, urn: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    """One resource as the plan lists it, for the price rule of its type to read."""
    return {"type": kind.token, "urn": urn, "inputs": inputs, "options": {"region": region}}


def _host_resources(cfg: StackConfig) -> list[dict[str, Any]]:
    """The hosts: one EC2 instance and its address, or the scaled group's template, group and load balancer."""
    hosts, region = cfg.hosts, cfg.region
    if not hosts.scaled:
        host = {"instanceType": cfg.host.instance_type, "rootBlockDevice": {"volumeSize": cfg.host.root_volume_gb}}
        return [_resource(EC2_INSTANCE, "basis-host", host, region), _resource(EC2_EIP, "basis-ip", {}, region)]
    count = hosts.autoscale.min if hosts.autoscale.max else hosts.count
    template = {
        "instanceType": cfg.host.instance_type,
        "blockDeviceMappings": [{"ebs": {"volumeSize": cfg.host.root_volume_gb}}],
        "networkInterfaces": [{"associatePublicIpAddress": True}],
    }
    group = {"launchTemplate": {"id": "basis-hosts"}, "desiredCapacity": count}
    # The group's price rule finds its template by id.
    return [
        {**_resource(EC2_LAUNCH_TEMPLATE, "basis-hosts", template, region), "id": "basis-hosts"},
        _resource(AUTOSCALING_GROUP, "basis-group", group, region),
        _resource(LB_LOAD_BALANCER, "basis-lb", {}, region),
    ]


def _basis_resources(cfg: StackConfig) -> list[dict[str, Any]]:
    """The config's big-ticket items, as the resource inputs the plan's pricing functions read."""
    region, db = cfg.region, cfg.database
    resources = _host_resources(cfg)
    primary = {
        "engine": "postgres",
        "identifier": "basis-db",
        "instanceClass": db.instance_class,
        "allocatedStorage": db.allocated_storage_gb,
        "multiAz": db.multi_az,
        "manageMasterUserPassword": True,
    }
    resources.append(_resource(RDS_INSTANCE, "basis-db", primary, region))
    for n in range(db.read_replicas):
        replica = {"replicateSourceDb": "basis-db", "instanceClass": db.instance_class, "multiAz": db.replica_multi_az}
        resources.append(_resource(RDS_INSTANCE, f"basis-replica-{n}", replica, region))
    if cfg.cache.enabled:
        cache = {
            "nodeType": cfg.cache.node_type,
            "engine": cfg.cache.engine,
            "numCacheClusters": cfg.cache.replicas + 1,
        }
        resources.append(_resource(ELASTICACHE_REPLICATION_GROUP, "basis-cache", cache, region))
    # A fixed $3 of every stack since the dashboard came; without it, the alarms and logs the basis leaves out
    # would push a small stack's real bill past the 80% line the basis is meant to stay under.
    resources.append(_resource(CLOUDWATCH_DASHBOARD, "basis-dashboard", {}, region))
    return resources


def budget_basis_usd(cfg: StackConfig, pricing: dict[str, Any] | None = None) -> float:
    """What the config's hosts, load balancer, database, cache and dashboard cost a month (0 if not priced)."""
    resources = _basis_resources(cfg)
    ctx = Context(pricing=pricing or load_pricing(), resources=resources, default_region=cfg.region)
    return sum(price_resource(r, ctx).monthly or 0.0 for r in resources)


def default_limit_usd(cfg: StackConfig, pricing: dict[str, Any] | None = None) -> int:
    """1.5 x the basis, rounded up to a whole dollar; at least $1 (AWS refuses a zero budget)."""
    return max(1, math.ceil(round(DEFAULT_FACTOR * budget_basis_usd(cfg, pricing), 2)))

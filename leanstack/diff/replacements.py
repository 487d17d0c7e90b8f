"""The risks of what is replaced, deleted, renamed without an alias or moved to another network:
data lost or orphaned, refused by AWS, downtime."""

from __future__ import annotations

from typing import Any

import leanstack.config.resource_types as resource_types
from leanstack.diff.findings import (
    BUCKET_TYPES,
    DATA_LOSS,
    DOWNTIME,
    ENCRYPTION_CONFIG_TYPES,
    HOST,
    OBJECT_LOCK_TYPES,
    ORPHANED,
    RDS_INSTANCE,
    REFUSED,
    WEAKER,
    Findings,
    deleted_with,
    facts_of,
    holds_data,
    hosts_in,
    named,
)
from leanstack.diff.match import component_name, follows_replaced, ids_of
from leanstack.diff.values import brief

COPY_ADVICE = (
    "until the next backup runs the new bucket holds none, and restores must read the old one. Copy the objects "
    "across (`aws s3 sync s3://OLD s3://NEW --source-region OLD_REGION --region NEW_REGION`, or S3 Batch "
    "Replication to keep every version), and delete the old bucket by hand once its objects' lock has expired"
)


def replacement_risk(
    f: Findings, old: dict[str, Any], new: dict[str, Any], why: str, head: dict[str, Any] | None
) -> None:
    facts = facts_of(new)
    if old["options"].get("protect"):
        f.risk(
            REFUSED,
            new,
            f"{named(new)} is protected (Pulumi `protect`): `pulumi up` stops at its replacement ({why}); "
            f"remove `protect` in a separate, reviewed change only if losing it is intended",
        )
    if (
        new["type"] in BUCKET_TYPES
        and new["inputs"].get("bucket")
        and old["inputs"].get("bucket") == new["inputs"].get("bucket")
    ):
        f.risk(
            REFUSED,
            new,
            f"{named(new)} is replaced ({why}) under the same name `{new['inputs']['bucket']}`: S3 bucket names are "
            f"global, so the new bucket cannot be created while the old one exists: `pulumi up` fails. Instead: "
            f"give the new bucket another name (`backup.bucketName`)",
        )
    if holds_data(new) and old["options"].get("retainOnDelete"):
        f.risk(
            ORPHANED,
            new,
            f"{named(new)} is replaced ({why}): Pulumi creates a new, EMPTY {facts.what} and leaves the old one "
            f"in place, unmanaged and still billed, with {deleted_with(old)}; {COPY_ADVICE}",
        )
    elif holds_data(new):
        f.risk(
            DATA_LOSS,
            new,
            f"{named(new)} is REPLACED ({why}): a new, empty {facts.what}; the old one is deleted with "
            f"{deleted_with(old)}. Instead: {facts.keep_data}",
        )
    if new["type"] == HOST:
        only = len(hosts_in(head)) == 1
        f.risk(
            DOWNTIME,
            new,
            f"{'the only host' if only else 'host'} `{new['name']}` is REPLACED ({why}): the site is down until the "
            f"new host has booted, installed its packages and passes its health check (minutes); anything on its "
            f"disk is gone (the database and backups are untouched). Instead: apply it at a quiet hour, or run two "
            f"hosts (`hosts.count`), whose launch template change rolls one host at a time",
        )


def removal_risk(f: Findings, r: dict[str, Any], added: list[dict[str, Any]]) -> None:
    facts = facts_of(r)
    if r["options"].get("protect"):
        f.risk(REFUSED, r, f"{named(r)} is protected (Pulumi `protect`): `pulumi up` stops at its deletion")
    if holds_data(r) and r["options"].get("retainOnDelete"):
        f.risk(
            ORPHANED,
            r,
            f"{named(r)} leaves the program: Pulumi forgets it but leaves it in place, unmanaged and still billed, "
            f"with {deleted_with(r)}; delete it by hand once its data is no longer needed, or keep it in the program",
        )
    elif holds_data(r):
        f.risk(
            DATA_LOSS,
            r,
            f"{named(r)} is DELETED with {deleted_with(r)}. Instead: keep it, or {facts.keep_data}",
        )
    # Encryption or Object Lock configuration removed while its bucket stays.
    replaced_too = any(a["type"] == r["type"] and a["component"] == r["component"] for a in added)
    if r["type"] in ENCRYPTION_CONFIG_TYPES and not replaced_too:
        f.risk(WEAKER, r, f"{named(r)}: default bucket encryption removed")
    if r["type"] in OBJECT_LOCK_TYPES and not replaced_too:
        f.risk(WEAKER, r, f"{named(r)}: Object Lock default retention removed (new objects are not locked)")


def unaliased_renames(
    f: Findings, unaliased: list[tuple[dict[str, Any], dict[str, Any]]], head: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """File the risk of each component renamed without an alias (Pulumi replaces all it holds);
    the renamed entries, one per resource."""
    renamed: list[dict[str, Any]] = []
    by_component: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for gone, came in unaliased:
        renamed.append(
            {"from": gone["urn"], "to": came["urn"], "name": came["name"], "type": came["type"], "aliased": False}
        )
        key = f"{gone['component']}:{component_name(gone)}:{component_name(came)}"
        by_component.setdefault(key, []).append((gone, came))
    for group in by_component.values():
        first, then = group[0]
        old_name, new_name = component_name(first), component_name(then)
        component = next((x for x in group if x[0]["type"] in BUCKET_TYPES), group[0])[1]
        f.risk(
            DATA_LOSS
            if any(holds_data(x) and not x["options"].get("retainOnDelete") for x, _ in group)
            else ORPHANED
            if any(holds_data(x) for x, _ in group)
            else WEAKER,
            component,
            f"{first['component']} `{old_name}` renamed to `{new_name}` without an alias: Pulumi deletes its "
            f"{len(group)} resources and creates new ones. Add "
            f'`opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="{old_name}")])` to the component and '
            f"nothing is replaced",
        )
        for x, y in group:
            if holds_data(x):
                why = f"renamed `{x['name']}` → `{y['name']}` without an alias"
                replacement_risk(f, x, y, why, head)
    return renamed


SUBNET_GROUPS = {
    resource_types.RDS_SUBNET_GROUP.token: (resource_types.RDS_INSTANCE.token, "dbSubnetGroupName"),
    resource_types.ELASTICACHE_SUBNET_GROUP.token: (
        resource_types.ELASTICACHE_REPLICATION_GROUP.token,
        "subnetGroupName",
    ),
}


def moved_data_stores(f: Findings, changed: list[dict[str, Any]], existing: dict[str, dict[str, Any]]) -> None:
    """A database or cache that exists already and whose subnet group's subnets are replaced must
    move to new subnets (a new VPC). RDS does that only by modifying the instance's DB subnet
    group, with an outage, and refuses it for a Multi-AZ instance or one with read replicas
    (filed as refused); ElastiCache has no such move for a running cache. A resource being
    created has nothing to move."""
    gone = {i for c in changed if c["replaced"] for i in ids_of(c["new"])}
    for group in existing.values():
        if group["type"] not in SUBNET_GROUPS or not gone & set(group["inputs"].get("subnetIds") or []):
            continue
        kind, prop = SUBNET_GROUPS[group["type"]]
        names = {group["inputs"].get("name"), group.get("id")} - {None, ""}
        for r in existing.values():
            if r["type"] != kind or r["inputs"].get(prop) not in names:
                continue
            where = f"the new subnets of subnet group `{group['name']}` (another VPC)"
            instead = "Instead: keep the network, or migrate deliberately (snapshot, restore into the new VPC, switch)"
            if kind != RDS_INSTANCE:
                f.risk(
                    DOWNTIME,
                    r,
                    f"{named(r)} must move to {where}: ElastiCache moves no running cache to another VPC, so expect "
                    f"`pulumi up` to fail at the subnet group (cannot be checked offline). Instead: turn the cache "
                    f"off (`cache.enabled: false`) before the network change and on again after it; a cache holds "
                    f"nothing that must survive",
                )
                continue
            replicas = [
                x["name"]
                for x in existing.values()
                if x["inputs"].get("replicateSourceDb") in names | {r["inputs"].get("identifier")}
            ]
            if r["inputs"].get("multiAz") or replicas:
                because = (
                    "it is Multi-AZ" if r["inputs"].get("multiAz") else f"it has read replicas ({', '.join(replicas)})"
                )
                f.risk(
                    REFUSED,
                    r,
                    f"{named(r)} must move to {where}, and AWS refuses to move a DB instance to another VPC while "
                    f"{because}: `pulumi up` fails there. {instead}; or turn Multi-AZ off (and remove the read "
                    f"replicas) in a `pulumi up` of its own first",
                )
            else:
                f.risk(
                    DOWNTIME,
                    r,
                    f"{named(r)} must move to {where}: AWS does this only by modifying the instance, with an outage "
                    f"(whether it succeeds for this instance cannot be checked offline). {instead}",
                )


def replaced_vpcs(f: Findings, changed: list[dict[str, Any]]) -> None:
    """A replaced VPC in one line, with everything it drags along: replaced, and updated in place."""
    for vpc in (c for c in changed if c["replaced"] and c["type"] == resource_types.EC2_VPC.token):
        why = "; ".join(brief(x) for x in vpc["replacedBy"])
        dragged = sorted(c["name"] for c in changed if c["replaced"] and c is not vpc)
        updated = sorted(
            c["name"] for c in changed if not c["replaced"] and any(follows_replaced(x) for x in c["changes"])
        )
        f.risk(
            DOWNTIME,
            vpc["new"],
            f"the VPC `{vpc['name']}` is REPLACED ({why}), and with it {len(dragged)} resources are replaced "
            f"({', '.join(f'`{n}`' for n in dragged) or 'none'}) and {len(updated)} updated in place to point at "
            f"the new ones ({', '.join(f'`{n}`' for n in updated) or 'none'}). Instead: keep the network, or "
            f"build the new one beside it and migrate",
        )

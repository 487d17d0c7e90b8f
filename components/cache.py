"""Cache: optional Valkey (or Redis OSS) on ElastiCache, reachable only from the host.

Builds a one-node replication group in the private subnets with encryption at rest and in
transit, a generated auth token (a Pulumi secret, also stored as an SSM SecureString so
the app can read it at start through the host's role), its subnet group and a security
group that admits 6379 only from the clients given to `allow_from`.

Off by default, and off means no resources at all: `__main__` does not create it unless
`cache.enabled` is true. Add it when the app needs it, not before.

With `replicas` > 0, the group gets that many replica nodes in the other AZ(s), automatic
failover (a replica is promoted when the primary fails, keeping the primary endpoint) and
Multi-AZ; the replicas also serve reads at `reader_address`. Without replicas a failed node
is an empty cache for the minutes ElastiCache takes to replace it.

Cost: billed is each node (on demand, by `node_type`; Valkey is priced below Redis OSS on
node-based clusters), so each replica adds one node; snapshots within one day's retention are
free. Priced per region in `python -m leanstack plan`.

`eviction_policy` (the stack's `cache.evictionPolicy`, or noeviction when the app has workers:
`leanstack.config.eviction_policy`) puts the group on a parameter group of its own with that
`maxmemory-policy`; empty keeps the engine's default group (volatile-lru). A queue's jobs must
never be evicted: with noeviction a full cache refuses writes, which the app sees, instead of
dropping keys it never hears about. A parameter group costs nothing.

Replacement: changing the engine, the node type family or the subnet group replaces the
group and empties the cache (a cache holds nothing that cannot be rebuilt). Adding or
removing replicas, failover and Multi-AZ change the group in place.

Children, reachable as attributes and changeable before creation with `transform` (a mapping of
child key to a function that gets the child's keyword arguments, `opts` included, and may change
them): `replication_group`, `security_group`, `subnet_group`, `parameter_group` (None without
`eviction_policy`); also `auth_token`.

Example:
    cache = Cache("cache", CacheArgs(enabled=True), stack="prod", network=net,
                  transform={"replication_group": lambda args: args.update(snapshot_window="04:00-05:00")})
    cache.allow_from("host", host.security_group_id)
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from leanstack.components.base import LeanComponent, Transforms
from leanstack.components.network import Network
from leanstack.config import CacheArgs
from leanstack.config.naming import stack_prefix
from leanstack.host.agent import contract

__all__ = ["Cache", "CacheArgs"]


class Cache(LeanComponent):
    TRANSFORMABLE = ("replication_group", "security_group", "subnet_group", "parameter_group")
    address: pulumi.Output[str]
    # The reader endpoint: spreads reads over the replicas (the primary alone without replicas).
    reader_address: pulumi.Output[str]
    port: int
    auth_token_parameter: str
    security_group_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: CacheArgs,
        *,
        stack: str,
        network: Network,
        eviction_policy: str = "",
        transform: Transforms | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts, transform)
        self.args, self.stack, self.network = args, stack, network
        # Also the name of its subnet group, security group and auth token parameter.
        self.group_id = self.claim_physical_name(
            "ElastiCache group id", stack_prefix(stack), "stack= (a program has one Cache per stack)"
        )
        self.port = 6379
        self.auth_token_parameter = contract.cache_token_parameter(stack)
        self.security_group = self._create_security_group()
        self.subnet_group = self._create_subnet_group()
        self.auth_token = self._create_auth_token()
        self.parameter_group = self._create_parameter_group(eviction_policy) if eviction_policy else None
        self.replication_group = self._create_replication_group()

        self.address = self.replication_group.primary_endpoint_address
        self.reader_address = self.replication_group.reader_endpoint_address
        self.security_group_id = self.security_group.id
        self.register_outputs(
            {
                "address": self.address,
                "reader_address": self.reader_address,
                "security_group_id": self.security_group_id,
            }
        )

    def _create_security_group(self) -> aws.ec2.SecurityGroup:
        return aws.ec2.SecurityGroup(
            self.child_name("sg"),
            **self.transformed(
                "security_group",
                dict(
                    name=f"{self.group_id}-cache",
                    description="Cache: only from the clients admitted by leanstack",
                    vpc_id=self.network.vpc_id,
                    tags=self.named_tags(f"{self.group_id}-cache"),
                    opts=self.child_opts(),
                ),
            ),
        )

    def _create_subnet_group(self) -> aws.elasticache.SubnetGroup:
        return aws.elasticache.SubnetGroup(
            self.child_name("subnets"),
            **self.transformed(
                "subnet_group",
                dict(
                    name=self.group_id,
                    subnet_ids=self.network.private_subnet_ids,
                    description="Private subnets in two AZs",
                    tags=self.tags,
                    opts=self.child_opts(),
                ),
            ),
        )

    def _create_replication_group(self) -> aws.elasticache.ReplicationGroup:
        args, parameters = self.args, self.parameter_group
        return aws.elasticache.ReplicationGroup(
            self.child_name("group"),
            **self.transformed(
                "replication_group",
                dict(
                    replication_group_id=self.group_id,
                    description=f"leanstack {self.stack} cache",
                    engine=args.engine,
                    engine_version=args.engine_version,
                    node_type=args.node_type,
                    num_cache_clusters=1 + args.replicas,
                    # ElastiCache requires a replica for either; both come with the first one.
                    automatic_failover_enabled=args.replicas > 0,
                    multi_az_enabled=args.replicas > 0,
                    port=self.port,
                    subnet_group_name=self.subnet_group.name,
                    security_group_ids=[self.security_group.id],
                    at_rest_encryption_enabled=True,
                    transit_encryption_enabled=True,
                    auth_token=self.auth_token.result,
                    snapshot_retention_limit=args.snapshot_retention_days,
                    parameter_group_name=parameters.name if parameters is not None else None,
                    auto_minor_version_upgrade=True,
                    apply_immediately=False,
                    tags=self.tags,
                    opts=self.child_opts(),
                ),
            ),
        )

    def _create_parameter_group(self, policy: str) -> aws.elasticache.ParameterGroup:
        major = self.args.engine_version.split(".")[0]
        # ElastiCache's families: valkey7, valkey8, ...; redis7, and redis6.x for the 6 line.
        family = f"{self.args.engine}{major}" + (".x" if self.args.engine == "redis" and major == "6" else "")
        return aws.elasticache.ParameterGroup(
            self.child_name("params"),
            **self.transformed(
                "parameter_group",
                dict(
                    name=f"{self.group_id}-{family.replace('.', '-')}",
                    family=family,
                    description=f"leanstack cache: maxmemory-policy {policy}",
                    parameters=[aws.elasticache.ParameterGroupParameterArgs(name="maxmemory-policy", value=policy)],
                    tags=self.tags,
                    opts=self.child_opts(),
                ),
            ),
        )

    def _create_auth_token(self) -> random.RandomPassword:
        # ElastiCache tokens: 16-128 printable characters without '/', '"' or '@'; letters and digits suffice.
        token = random.RandomPassword(self.child_name("auth-token"), length=48, special=False, opts=self.child_opts())
        aws.ssm.Parameter(
            self.child_name("auth-token"),
            name=self.auth_token_parameter,
            type="SecureString",
            value=token.result,
            description="Cache auth token; the app reads it at start through the host role",
            tags=self.tags,
            opts=self.child_opts(),
        )
        return token

    def allow_from(self, client: str, security_group_id: pulumi.Input[str]) -> None:
        """Admit cache connections from one client security group (and nothing else)."""
        self._admit(self.security_group.id, client, security_group_id, self.port, "Cache")

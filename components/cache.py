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

Cost (us-east-1, on demand): cache.t4g.micro ~$11.68/month (Valkey is priced ~20% below
Redis OSS on node-based clusters: ~$9.34) per node, so each replica adds one node's price.
Snapshots within one day's retention are free.

Replacement: changing the engine, the node type family or the subnet group replaces the
group and empties the cache (a cache holds nothing that cannot be rebuilt). Adding or
removing replicas, failover and Multi-AZ change the group in place.

Example:
    cache = Cache("cache", CacheArgs(enabled=True), stack="prod", network=net)
    cache.allow_from("host", host.security_group_id)
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from leanstack.components.base import LeanComponent
from leanstack.components.network import Network
from leanstack.config import CacheArgs
from leanstack.config.naming import stack_prefix
from leanstack.host.agent import contract

__all__ = ["Cache", "CacheArgs"]


class Cache(LeanComponent):
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
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts)
        self.args = args
        # Also the name of its subnet group, security group and auth token parameter.
        self.group_id = self.claim_physical_name(
            "ElastiCache group id", stack_prefix(stack), "stack= (a program has one Cache per stack)"
        )
        self.port = 6379
        self.auth_token_parameter = contract.cache_token_parameter(stack)
        self._security_group = aws.ec2.SecurityGroup(
            self.child_name("sg"),
            name=f"{self.group_id}-cache",
            description="Cache: only from the clients admitted by leanstack",
            vpc_id=network.vpc_id,
            tags=self.named_tags(f"{self.group_id}-cache"),
            opts=self.child_opts(),
        )
        subnets = aws.elasticache.SubnetGroup(
            self.child_name("subnets"),
            name=self.group_id,
            subnet_ids=network.private_subnet_ids,
            description="Private subnets in two AZs",
            tags=self.tags,
            opts=self.child_opts(),
        )
        token = self._create_auth_token()
        group = aws.elasticache.ReplicationGroup(
            self.child_name("group"),
            replication_group_id=self.group_id,
            description=f"leanstack {stack} cache",
            engine=args.engine,
            engine_version=args.engine_version,
            node_type=args.node_type,
            num_cache_clusters=1 + args.replicas,
            # ElastiCache requires a replica for either; both come with the first one.
            automatic_failover_enabled=args.replicas > 0,
            multi_az_enabled=args.replicas > 0,
            port=self.port,
            subnet_group_name=subnets.name,
            security_group_ids=[self._security_group.id],
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            auth_token=token.result,
            snapshot_retention_limit=args.snapshot_retention_days,
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            tags=self.tags,
            opts=self.child_opts(),
        )
        self.address = group.primary_endpoint_address
        self.reader_address = group.reader_endpoint_address
        self.security_group_id = self._security_group.id
        self.register_outputs(
            {
                "address": self.address,
                "reader_address": self.reader_address,
                "security_group_id": self.security_group_id,
            }
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
        self._admit(self._security_group.id, client, security_group_id, self.port, "Cache")

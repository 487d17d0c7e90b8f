"""`leanstack:cache`: ElastiCache (Valkey or Redis OSS), off by default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from leanstack.config.fields import Validated, setting

if TYPE_CHECKING:
    from leanstack.config.sections.app import AppArgs

# ElastiCache versions per engine for node-based clusters, oldest first. Redis OSS ends at 7.1 on
# ElastiCache (newer Redis is not open source; AWS moved on to Valkey); 4.0 and 5.0 are past standard
# support. Valkey 7.2 is Redis OSS 7.2's successor. Source: the ElastiCache User Guide, "Engine
# versions and upgrading in ElastiCache" (docs.aws.amazon.com/AmazonElastiCache/latest/dg/engine-versions.html).
CACHE_ENGINE_VERSIONS: dict[str, tuple[str, ...]] = {
    "valkey": ("7.2", "8.0", "8.1", "8.2", "9.0"),
    "redis": ("6.2", "7.0", "7.1"),
}
# The default per engine: the newest Redis OSS there is; for Valkey the 8.0 line, in every region.
CACHE_DEFAULT_VERSIONS = {"valkey": "8.0", "redis": "7.1"}
# ElastiCache's maxmemory-policy values; every one but noeviction drops keys when memory runs out.
EVICTION_POLICIES = (
    "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random",
    "volatile-ttl",
)  # fmt: skip


@dataclass(frozen=True)
class CacheArgs(Validated):
    """ElastiCache (Valkey or Redis OSS), off by default: off means no resources at all."""

    enabled: bool = setting(False, doc="Create the cache. Off by default: add it when the app needs it.")
    engine: Literal["valkey", "redis"] = setting("valkey", doc="valkey (cheaper) or redis (Redis OSS).")
    engine_version: str = setting(
        "",
        doc="Engine version (major.minor); empty: 8.0 for valkey, 7.1 (the last Redis OSS) for redis. "
        f"Allowed: valkey {', '.join(CACHE_ENGINE_VERSIONS['valkey'])}; "
        f"redis {', '.join(CACHE_ENGINE_VERSIONS['redis'])}.",
        pattern=r"(\d+\.\d+)?",
        allowed="major.minor such as 8.0, or empty for the engine's default",
    )
    node_type: str = setting(
        "cache.t4g.micro",
        doc="ElastiCache node type.",
        pattern=r"cache\.[a-z0-9]+\.[a-z0-9]+",
        allowed="a node type starting with 'cache.', such as cache.t4g.micro",
    )
    snapshot_retention_days: int = setting(1, doc="Days of daily cache snapshots; 0 disables.", min=0, max=35)
    replicas: int = setting(
        0,
        doc="Replica nodes; 1 or more turns on automatic failover and Multi-AZ (each adds a node's price).",
        min=0,
        max=5,
    )
    eviction_policy: str = setting(
        "",
        doc="maxmemory-policy: what the cache does when full. Empty: noeviction with app.processes (a queue's jobs "
        "must never be evicted; writes fail instead, loudly), else the engine's default volatile-lru. An evicting "
        "policy is refused with app.processes.",
        check=lambda v: None if v in ("", *EVICTION_POLICIES) else f"one of {', '.join(EVICTION_POLICIES)}, or empty",
        choices=("", *EVICTION_POLICIES),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.engine_version:
            object.__setattr__(self, "engine_version", CACHE_DEFAULT_VERSIONS[self.engine])


def eviction_policy(cache: CacheArgs, app: AppArgs) -> str:
    """The cache's maxmemory-policy: as configured, else noeviction with workers; "" = the engine's default."""
    if cache.eviction_policy:
        return cache.eviction_policy
    return "noeviction" if app.processes else ""

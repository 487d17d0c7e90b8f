"""The config model: what a stack file may say, checked without Pulumi.

One module per concern, arrows one way (naming <- fields <- sections <- rules <- loading, schema):

- `naming`: the project's name and the naming scheme of what it creates;
- `fields`: the field language (`setting`, patterns, checks) and the parser of one value;
- `sections`: one module per section of the stack file, each a frozen Args dataclass that
  validates itself on construction, and the whole `StackConfig` (`sections.stack`);
- `rules`: what one section's value means for another's (run by the loader);
- `loading`: `load_stack_config(raw, stack)`, the one entry point from a stack's raw config;
- `schema`: the JSON Schema of stacks/Pulumi.<stack>.yaml, from the same dataclasses;
- `stack_file`: reading stacks/Pulumi.<stack>.yaml as Pulumi would.

Components and the tooling both stand on this package; it imports neither, nor Pulumi.

Importing a name from here loads only the module that defines it, so `leanstack.config.naming`
(what the deploy commands need) does not pull in the field checks, which read pulumi_aws's regions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leanstack.config.fields import (
        AWS_REGIONS,
        RESERVED_ENV_NAMES,
        RESERVED_ENV_PREFIXES,
        ConfigError,
        default_max_connections,
        env_name_problem,
        postgres_parameter_family,
    )
    from leanstack.config.loading import load_stack_config
    from leanstack.config.naming import PROJECT, RELEASE_TAG_PREFIX, final_snapshot_name, physical_name, stack_prefix
    from leanstack.config.rules import backup_interval_hours, guess_zone
    from leanstack.config.schema import json_schema
    from leanstack.config.sections import (
        AlertsArgs,
        AlertThresholds,
        AppArgs,
        AutoscaleArgs,
        AwsBackupArgs,
        BackupBucketArgs,
        BudgetArgs,
        CacheArgs,
        CdnArgs,
        DatabaseArgs,
        HostsArgs,
        JobArgs,
        NetworkArgs,
        OriginCertificateArgs,
        ProcessArgs,
        ProxyHostArgs,
        RecoveryTargets,
        SlackArgs,
        StackConfig,
        StorageArgs,
        UptimeCheckArgs,
        eviction_policy,
        is_production,
    )

_HOME = {
    "AWS_REGIONS": "leanstack.config.fields",
    "AlertThresholds": "leanstack.config.sections",
    "AlertsArgs": "leanstack.config.sections",
    "AppArgs": "leanstack.config.sections",
    "AutoscaleArgs": "leanstack.config.sections",
    "AwsBackupArgs": "leanstack.config.sections",
    "BackupBucketArgs": "leanstack.config.sections",
    "BudgetArgs": "leanstack.config.sections",
    "CacheArgs": "leanstack.config.sections",
    "StorageArgs": "leanstack.config.sections",
    "CdnArgs": "leanstack.config.sections",
    "ConfigError": "leanstack.config.fields",
    "DatabaseArgs": "leanstack.config.sections",
    "HostsArgs": "leanstack.config.sections",
    "JobArgs": "leanstack.config.sections",
    "NetworkArgs": "leanstack.config.sections",
    "OriginCertificateArgs": "leanstack.config.sections",
    "PROJECT": "leanstack.config.naming",
    "ProcessArgs": "leanstack.config.sections",
    "ProxyHostArgs": "leanstack.config.sections",
    "RELEASE_TAG_PREFIX": "leanstack.config.naming",
    "RESERVED_ENV_NAMES": "leanstack.config.fields",
    "RESERVED_ENV_PREFIXES": "leanstack.config.fields",
    "RecoveryTargets": "leanstack.config.sections",
    "SlackArgs": "leanstack.config.sections",
    "default_max_connections": "leanstack.config.fields",
    "StackConfig": "leanstack.config.sections",
    "UptimeCheckArgs": "leanstack.config.sections",
    "backup_interval_hours": "leanstack.config.rules",
    "env_name_problem": "leanstack.config.fields",
    "eviction_policy": "leanstack.config.sections",
    "final_snapshot_name": "leanstack.config.naming",
    "guess_zone": "leanstack.config.rules",
    "is_production": "leanstack.config.sections",
    "json_schema": "leanstack.config.schema",
    "load_stack_config": "leanstack.config.loading",
    "physical_name": "leanstack.config.naming",
    "postgres_parameter_family": "leanstack.config.fields",
    "stack_prefix": "leanstack.config.naming",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AWS_REGIONS",
    "PROJECT",
    "RELEASE_TAG_PREFIX",
    "RESERVED_ENV_NAMES",
    "RESERVED_ENV_PREFIXES",
    "AlertThresholds",
    "AlertsArgs",
    "AppArgs",
    "AutoscaleArgs",
    "AwsBackupArgs",
    "BackupBucketArgs",
    "BudgetArgs",
    "CacheArgs",
    "CdnArgs",
    "ConfigError",
    "DatabaseArgs",
    "HostsArgs",
    "JobArgs",
    "NetworkArgs",
    "OriginCertificateArgs",
    "ProcessArgs",
    "ProxyHostArgs",
    "RecoveryTargets",
    "SlackArgs",
    "StackConfig",
    "StorageArgs",
    "UptimeCheckArgs",
    "backup_interval_hours",
    "default_max_connections",
    "env_name_problem",
    "eviction_policy",
    "final_snapshot_name",
    "guess_zone",
    "is_production",
    "json_schema",
    "load_stack_config",
    "physical_name",
    "postgres_parameter_family",
    "stack_prefix",
]

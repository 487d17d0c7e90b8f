"""The config model: what a stack file may say, checked without Pulumi.

One module per concern, arrows one way (naming <- fields <- sections <- rules <- loading, schema):

- `naming`: the project's name and the naming scheme of what it creates;
- `fields`: the field language (`setting`, patterns, checks) and the parser of one value;
- `sections`: one frozen Args dataclass per section (each validates itself on construction) and
  the whole `StackConfig`;
- `rules`: what one section's value means for another's (run by the loader);
- `loading`: `load_stack_config(raw, stack)`, the one entry point from a stack's raw config;
- `schema`: the JSON Schema of stacks/Pulumi.<stack>.yaml, from the same dataclasses;
- `stack_file`: reading stacks/Pulumi.<stack>.yaml as Pulumi would.

Components and the tooling both stand on this package; it imports neither, nor Pulumi.
"""

from leanstack.config.fields import (
    AWS_REGIONS,
    RESERVED_ENV_NAMES,
    RESERVED_ENV_PREFIXES,
    ConfigError,
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
    BackupBucketArgs,
    BudgetArgs,
    CacheArgs,
    CdnArgs,
    DatabaseArgs,
    HostsArgs,
    NetworkArgs,
    OriginCertificateArgs,
    ProxyHostArgs,
    RecoveryTargets,
    StackConfig,
    UptimeCheckArgs,
    is_production,
)

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
    "BackupBucketArgs",
    "BudgetArgs",
    "CacheArgs",
    "CdnArgs",
    "ConfigError",
    "DatabaseArgs",
    "HostsArgs",
    "NetworkArgs",
    "OriginCertificateArgs",
    "ProxyHostArgs",
    "RecoveryTargets",
    "StackConfig",
    "UptimeCheckArgs",
    "backup_interval_hours",
    "final_snapshot_name",
    "guess_zone",
    "is_production",
    "json_schema",
    "load_stack_config",
    "physical_name",
    "postgres_parameter_family",
    "stack_prefix",
]

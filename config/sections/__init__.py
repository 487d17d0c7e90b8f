"""The sections of a stack file: one module per section, each the Args dataclass of its component.

Each section doubles as the args dataclass of its component (`leanstack.components` re-exports
`DatabaseArgs`), so a default documented here is the component's default, and each validates
its own fields on construction. Defaults are the lean, safe choice; the dev stack file relaxes
the safety ones explicitly (deletion protection, final snapshot, `protect`).

- `network`, `host` (host and hosts), `app` (with `workers`: jobs and processes), `database`,
  `cache`, `storage`, `cdn`, `backup`, `alerts`, `recovery`, `budget`: one `leanstack:<key>` each;
- `stack`: the whole `StackConfig`, the top-level keys (`SECTIONS`, `SCALARS`) and `is_production`.

A section module imports the field language (`leanstack.config.fields`) and, where one section
holds another (app holds jobs, alerts holds Slack), that section's module; never this package.
"""

from __future__ import annotations

from leanstack.config.sections.alerts import AlertsArgs, AlertThresholds, SlackArgs, UptimeCheckArgs
from leanstack.config.sections.app import AppArgs
from leanstack.config.sections.backup import BackupBucketArgs
from leanstack.config.sections.budget import BudgetArgs
from leanstack.config.sections.cache import CacheArgs, eviction_policy
from leanstack.config.sections.cdn import CdnArgs, OriginCertificateArgs
from leanstack.config.sections.database import AwsBackupArgs, DatabaseArgs
from leanstack.config.sections.host import AutoscaleArgs, HostsArgs, ProxyHostArgs
from leanstack.config.sections.network import NetworkArgs
from leanstack.config.sections.recovery import STATE_URL_RE, RecoveryCredentials, RecoveryTargets, SystemRecovery
from leanstack.config.sections.stack import REQUIRED_SECTIONS, SCALARS, SECTIONS, StackConfig, is_production
from leanstack.config.sections.storage import StorageArgs
from leanstack.config.sections.workers import JobArgs, ProcessArgs

__all__ = [
    "REQUIRED_SECTIONS",
    "SCALARS",
    "SECTIONS",
    "STATE_URL_RE",
    "AlertThresholds",
    "AlertsArgs",
    "AppArgs",
    "AutoscaleArgs",
    "AwsBackupArgs",
    "BackupBucketArgs",
    "BudgetArgs",
    "CacheArgs",
    "CdnArgs",
    "DatabaseArgs",
    "HostsArgs",
    "JobArgs",
    "NetworkArgs",
    "OriginCertificateArgs",
    "ProcessArgs",
    "ProxyHostArgs",
    "RecoveryCredentials",
    "RecoveryTargets",
    "SlackArgs",
    "StackConfig",
    "StorageArgs",
    "SystemRecovery",
    "UptimeCheckArgs",
    "eviction_policy",
    "is_production",
]

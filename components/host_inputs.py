"""What ProxyHost is given: the site it serves (from the stack's config) and the components it uses.

Two frozen dataclasses the program composes (`__main__.py`), so the host's constructor takes two
objects instead of a dozen arguments, and its helper modules (identity, boot files, alarms) read
the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

from leanstack.components.app import App
from leanstack.components.backup_bucket import BackupBucket
from leanstack.components.database import Database
from leanstack.components.network import Network
from leanstack.components.origin_certificate import OriginCertificate
from leanstack.components.storage import Storage
from leanstack.config import AlertThresholds, AppArgs, HostsArgs
from leanstack.host.boot import HostBoot
from leanstack.host.params import BackupJobs

__all__ = ["HostDependencies", "HostSite"]


@dataclass(frozen=True)
class HostSite:
    """What the hosts serve and how they are watched: the stack's hostnames, app, CDN, hosts and alerts."""

    hostnames: Sequence[str]
    app: AppArgs
    # False only with the CDN off (a debugging setting): 443 open to all, no client certificate asked.
    cdn_proxied: bool = True
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    # Scaled out (`count` > 1 or `autoscale`): a HostGroup replaces the one instance.
    hosts: HostsArgs | None = None
    backup_jobs: BackupJobs = field(default_factory=BackupJobs)


@dataclass(frozen=True)
class HostDependencies:
    """The components the host stands on or serves; an absent optional one means its part is left out."""

    network: Network
    certificate: OriginCertificate
    # Pages; tickets (can wait for working hours) go to `ticket_topic_arn`, or page without one.
    alarm_topic_arn: pulumi.Input[str]
    ticket_topic_arn: pulumi.Input[str] | None = None
    database: Database | None = None
    backups: BackupBucket | None = None
    application: App | None = None
    storage: Storage | None = None
    # What the host boots from; by default assembled by `leanstack.host.boot.host_boot`.
    boot: HostBoot | None = None

    @property
    def ticket_topic(self) -> pulumi.Input[str]:
        return self.ticket_topic_arn if self.ticket_topic_arn is not None else self.alarm_topic_arn

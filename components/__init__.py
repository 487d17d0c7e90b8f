"""leanstack's Pulumi components: one ComponentResource per module, and the Args each takes.

Each can be used on its own from another Pulumi program (see examples/):

    from leanstack.components import Alerts, AlertsArgs, Database, DatabaseArgs, Network, NetworkArgs

    alerts = Alerts("alerts", AlertsArgs(email="ops@example.com"), stack="prod", region="eu-west-1")
    net = Network("net", NetworkArgs())
    db = Database("db", DatabaseArgs(instance_class="db.t4g.small"), stack="prod", network=net,
                  alarm_topic_arn=alerts.topic_arn)

Args validate themselves on construction (`DatabaseArgs(instance_class="foo")` raises a one-line
`ConfigError`). Type tokens are `leanstack:index:<ClassName>`.
"""

from leanstack.components.alerts import Alerts
from leanstack.components.app import App
from leanstack.components.backup_bucket import BackupBucket
from leanstack.components.base import Transform, Transforms
from leanstack.components.budget import Budget
from leanstack.components.cache import Cache
from leanstack.components.cdn import Cdn
from leanstack.components.dashboard import Dashboard, DashboardSources
from leanstack.components.database import Database
from leanstack.components.host_group import GroupDependencies, HostGroup
from leanstack.components.host_inputs import HostDependencies, HostSite
from leanstack.components.network import Network
from leanstack.components.origin_certificate import OriginCertificate
from leanstack.components.proxy_host import ProxyHost
from leanstack.components.storage import Storage
from leanstack.components.uptime_check import UptimeCheck
from leanstack.config import (
    AlertsArgs,
    AlertThresholds,
    AppArgs,
    AutoscaleArgs,
    BackupBucketArgs,
    CacheArgs,
    CdnArgs,
    ConfigError,
    DatabaseArgs,
    HostsArgs,
    NetworkArgs,
    OriginCertificateArgs,
    ProxyHostArgs,
    SlackArgs,
    StorageArgs,
    UptimeCheckArgs,
)

__all__ = [
    "AlertThresholds",
    "Alerts",
    "AlertsArgs",
    "App",
    "AppArgs",
    "AutoscaleArgs",
    "BackupBucket",
    "BackupBucketArgs",
    "Budget",
    "Cache",
    "CacheArgs",
    "Cdn",
    "CdnArgs",
    "ConfigError",
    "Dashboard",
    "DashboardSources",
    "Database",
    "DatabaseArgs",
    "GroupDependencies",
    "HostDependencies",
    "HostGroup",
    "HostSite",
    "HostsArgs",
    "Network",
    "NetworkArgs",
    "OriginCertificate",
    "OriginCertificateArgs",
    "ProxyHost",
    "ProxyHostArgs",
    "SlackArgs",
    "Storage",
    "StorageArgs",
    "Transform",
    "Transforms",
    "UptimeCheck",
    "UptimeCheckArgs",
]

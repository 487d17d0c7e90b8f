"""The leanstack program: validate the stack config, then compose the components.

No resource is declared here directly; each lives in its component under components/.
Dev and prod differ only in stacks/Pulumi.<stack>.yaml.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from leanstack.budget_basis import default_limit_usd
from leanstack.components import providers
from leanstack.components.alerts import Alerts
from leanstack.components.app import App
from leanstack.components.backup_bucket import BackupBucket
from leanstack.components.budget import Budget
from leanstack.components.cache import Cache
from leanstack.components.cdn import Cdn
from leanstack.components.dashboard import Dashboard, DashboardSources
from leanstack.components.database import Database
from leanstack.components.network import Network
from leanstack.components.origin_certificate import OriginCertificate
from leanstack.components.providers import aws_provider
from leanstack.components.proxy_host import (
    HostDependencies,
    HostSite,
    ProxyHost,
    access_log_metrics,
    host_name,
    host_role_name,
    metrics_namespace,
)
from leanstack.components.rds_backup import RdsBackup
from leanstack.components.storage import Storage
from leanstack.components.uptime_check import UptimeCheck
from leanstack.config import (
    AlertsArgs,
    ConfigError,
    OriginCertificateArgs,
    UptimeCheckArgs,
    eviction_policy,
    load_stack_config,
    placeholders,
)
from leanstack.host.params import BackupJobs


def raw_stack_config() -> dict[str, Any]:
    """The stack's config as the program sees it under `pulumi up`, as a plain dict.

    Pulumi has no API that lists every config key, so this merges the two places the language
    host puts them: the process-wide PULUMI_CONFIG JSON and keys set in-process.
    """
    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return raw


stack = pulumi.get_stack()
raw = raw_stack_config()
try:
    cfg = load_stack_config(raw, stack)
except ConfigError as error:
    # RunError: Pulumi prints the one line, without a Python traceback.
    raise pulumi.RunError(str(error)) from None
# A preview (and the offline plan) may show the placeholders; `pulumi up` must not create them.
if providers.creating_real_resources() and (problem := placeholders.refusal(raw)):
    raise pulumi.RunError(problem)

main = pulumi.ResourceOptions(providers={"aws": aws_provider("aws", region=cfg.region, stack=stack)})

alerts = Alerts(
    "alerts",
    AlertsArgs(email=cfg.alert_email, ticket_email=cfg.alerts.ticket_email, slack=cfg.alerts.slack),
    stack=stack,
    region=cfg.region,
    opts=main,
)
network = Network("network", cfg.network, opts=main)
certificate = OriginCertificate("origin-cert", OriginCertificateArgs(hostnames=cfg.hostnames), opts=main)
database = Database(
    "database",
    cfg.database,
    stack=stack,
    network=network,
    alarm_topic_arn=alerts.topic_arn,
    thresholds=cfg.alerts,
    opts=main,
)
cache = (
    Cache(
        "cache", cfg.cache, stack=stack, network=network, eviction_policy=eviction_policy(cfg.cache, cfg.app), opts=main
    )
    if cfg.cache.enabled
    else None
)
backups = BackupBucket("backups", cfg.backup, stack=stack, writer_role_name=host_role_name(stack), opts=main)
app = App("app", cfg.app, stack=stack, region=cfg.region, cache=cache, opts=main)
# The app's uploads, replicated beside the backups, and the app's own role (off by default).
storage = (
    Storage(
        "storage",
        cfg.storage,
        stack=stack,
        backup=backups,
        host_role_name=host_role_name(stack),
        # Files at risk is a ticket: the upload is still in the stack's region.
        alarm_topic_arn=alerts.ticket_topic_arn,
        opts=main,
    )
    if cfg.storage.enabled
    else None
)
host = ProxyHost(
    "host",
    cfg.host,
    stack=stack,
    region=cfg.region,
    site=HostSite(
        hostnames=cfg.hostnames,
        app=cfg.app,
        cdn_proxied=cfg.cdn.proxied,
        thresholds=cfg.alerts,
        hosts=cfg.hosts,
        backup_jobs=BackupJobs(
            backup_calendar=cfg.backup.backup_calendar,
            drill_calendar=cfg.backup.drill_calendar,
            drill_target=cfg.backup.drill_target,
            drill_database_url=cfg.backup.drill_database_url,
            drill_starts_app=cfg.backup.drill_starts_app,
            verify_sql=cfg.backup.verify_sql,
        ),
    ),
    dependencies=HostDependencies(
        network=network,
        certificate=certificate,
        alarm_topic_arn=alerts.topic_arn,
        ticket_topic_arn=alerts.ticket_topic_arn,
        database=database,
        backups=backups,
        application=app,
        storage=storage,
    ),
    opts=main,
)
database.allow_from("host", host.security_group_id)
if storage is not None:
    # The app's role trusts the host's role itself, which IAM wants to exist first.
    storage.trust_host_role(host.role_arn)
if cfg.database.cross_region_backups:
    database.replicate_backups(cfg.backup.region)
# RDS's own restore paths proven: AWS Backup, copied off-site, restore-tested monthly (opt-in).
if cfg.database.aws_backup.enabled:
    RdsBackup(
        "rds-backup",
        cfg.database.aws_backup,
        database=database,
        backups=backups,
        stack=stack,
        ticket_topic_arn=alerts.ticket_topic_arn,
        opts=main,
    )
# Every host, single or scaled out, is tagged Name=leanstack-<stack>-host; the restart targets that tag.
app.restart_on_password_rotation(host_name(stack), database.secret_arn)
if cache is not None:
    cache.allow_from("host", host.security_group_id)
# Scaled out, the origin is the load balancer's DNS name (a CNAME) rather than the Elastic IP (an A record).
Cdn("cdn", cfg.cdn, hostnames=cfg.hostnames, origin=host.origin, origin_is_hostname=host.group is not None, opts=main)
# Site down, asked from outside through the CDN; its alarm lives in us-east-1 (see UptimeCheck).
UptimeCheck(
    "uptime",
    UptimeCheckArgs(
        hostname=cfg.hostnames[0], health_path=cfg.app.health_path, site_down_minutes=cfg.alerts.site_down_minutes
    ),
    stack=stack,
    topic_arn=alerts.global_topic_arn,
    provider=alerts.global_provider,
    opts=main,
)

# Actual spend against the plan: e-mails at 80% and 100% of the month's budget (see Budget).
budget = Budget(
    "budget",
    limit_usd=cfg.budget.monthly_usd or default_limit_usd(cfg),
    # A ticket: spend is a working-hours matter.
    email=cfg.alerts.ticket_email or cfg.alert_email,
    stack=stack,
    opts=main,
)
# The page to open when an alarm fires (see Dashboard).
Dashboard(
    "dashboard",
    DashboardSources(
        metrics_namespace=metrics_namespace(stack),
        requests_metric=access_log_metrics(stack)["requests"],
        errors_metric=access_log_metrics(stack)["errors"],
        latency_metric=access_log_metrics(stack)["latency"],
        database_identifier=database.identifier,
        connections_threshold=database.connections_threshold,
        app_log_group=app.log_group_name,
        load_balancer_arn_suffix=host.group.load_balancer_arn_suffix if host.group is not None else None,
    ),
    stack=stack,
    region=cfg.region,
    opts=main,
)

pulumi.export("region", cfg.region)
pulumi.export("hostnames", list(cfg.hostnames))
if host.group is None:
    pulumi.export("hostInstanceId", host.instance_id)
    pulumi.export("hostPublicIp", host.public_ip)
else:
    pulumi.export("loadBalancerDnsName", host.group.load_balancer_dns_name)
    pulumi.export("hostWebGroup", host.group.web_group_name)
    pulumi.export("hostJobsGroup", host.group.jobs_group_name)
pulumi.export("databaseAddress", database.address)
pulumi.export("databaseName", cfg.database.database_name)
pulumi.export("databaseSecretArn", database.secret_arn)
if database.replica_addresses:
    pulumi.export("databaseReplicaAddresses", database.replica_addresses)
pulumi.export("backupBucket", backups.bucket_name)
pulumi.export("backupRegion", cfg.backup.region)
pulumi.export("backupPrefix", cfg.backup.prefix)
pulumi.export("alertTopicArn", alerts.topic_arn)
pulumi.export("ticketTopicArn", alerts.ticket_topic_arn)
pulumi.export("budgetName", budget.name)
pulumi.export("appRepositoryUrl", app.repository_url)
pulumi.export("appReleasesParameter", app.releases_parameter)
pulumi.export("appLogGroup", app.log_group_name)
if storage is not None:
    pulumi.export("uploadsBucket", storage.bucket_name)
    pulumi.export("uploadsReplicaBucket", storage.replica_name)
    pulumi.export("appRoleArn", storage.app_role_arn)
if cache is not None:
    pulumi.export("cacheAddress", cache.address)
    if cfg.cache.replicas:
        pulumi.export("cacheReaderAddress", cache.reader_address)
    pulumi.export("cacheAuthTokenParameter", cache.auth_token_parameter)

"""ProxyHost: the one EC2 host users' traffic reaches, running nginx in front of the app.

Builds:
- an EC2 instance (Graviton t4g.small by default, the current Amazon Linux 2023 arm64 AMI
  by lookup unless `ami_id` pins one) in a public subnet, with an Elastic IP, an encrypted
  gp3 root volume and IMDSv2 required;
- no SSH key and no port 22: people get a shell through SSM Session Manager, which the
  instance role allows (`aws ssm start-session --target <instance id>`);
- a security group admitting 443 only from Cloudflare's published ranges (looked up with
  the Cloudflare provider on every `pulumi up`); port 80 stays closed because Cloudflare
  enforces HTTPS at the edge;
- cloud-init user data, assembled by `leanstack.host.boot` (the inline files, the fetch script
  and unit, the tools fetched from the host-files bucket) and rendered by `leanstack.host.render`
  from templates under `host/`; this component only uploads and hands over values: nginx as a
  TLS reverse proxy to the app on 127.0.0.1:<app.port> requiring Cloudflare's origin-pull
  client certificate, the CloudWatch agent shipping nginx's JSON access log, and the
  backup and restore-drill timers;
- the origin certificate and key as SSM SecureString parameters, which the host fetches at
  boot with its role (user data is readable by anything on the host, so no secret goes there);
- an instance role allowed exactly what the host does, scoped to the stack and with no
  AWS-managed policy (AmazonSSMManagedInstanceCore reads every parameter of the account,
  CloudWatchAgentServerPolicy publishes in any namespace): Session Manager and Run Command
  channels, parameters under /leanstack/<stack>/ only, streams in log groups under
  /leanstack/<stack>/, metrics in the namespace Leanstack/<stack> only
  (`host_agent_statements`), the database's RDS-managed secret, writing and reading backups
  (never deleting them). SecureStrings stay on the account's aws/ssm key: with reads scoped
  to the stack's path, a per-stack KMS key ($1/month) would only add a second lock against the
  account's own administrators, who can change its key policy (see the README's security section);
- alarms: automatic recovery when AWS's system status check fails, a page when the host
  stays broken, "errors up" (the share of user requests answered with a 5xx, from two
  metric filters on nginx's access log and metric math, above `alerts.errorRatePercent`
  for 5 minutes, counted only in minutes with `alerts.minRequestsPerMinute` requests), and
  the backup alarms ("backup stale", "restore drill stale", "restore drill failed").

Cost (us-east-1, on demand): t4g.small $12.26/month + 20 GiB gp3 $1.60 + public IPv4
$3.65 + 5 standard alarms $0.50 + the error-rate alarm (metric math over 2 metrics: billed
as 2 alarm metrics, $0.20) + 2 custom metrics from the log filters $0.60 + CloudWatch Logs
ingestion (usage-based, $0.50/GB).

Moving from the shared `Leanstack` namespace to `Leanstack/<stack>` (issue 15) updates the
alarms in place; the backup alarms count missing data as breaching, so until the replaced host's
first backup they may e-mail once (run `sudo systemctl start leanstack-backup` on the jobs host).

Replacement: changing the user data (any host setting, the AMI, the certificate) replaces
the instance: the host holds no state, the Elastic IP moves to the new one, and the site
is down for the minutes the new host takes to boot. The diff shows it.

Scaled out (`hosts.count` > 1 or `hosts.autoscale`, see HostGroup): the instance, its
Elastic IP and its two instance-status alarms give way to a HostGroup child: an Auto Scaling
group of hosts built from the same role, user data and AMI behind an Application Load
Balancer; the security group then admits 443 from the load balancer only. nginx on those hosts
runs in its behind-the-load-balancer mode: the load balancer checks Cloudflare's client
certificate and connects without SNI, so nginx asks for no certificate, answers a handshake
without SNI, and believes CF-Connecting-IP only from the VPC's CIDR blocks. Exactly one host
(the group's "jobs" member) enables the backup and restore-drill timers. Everything else here
(role, parameters, host-files bucket, access log, error-rate and backup alarms) keeps its
URN, so growing and shrinking never recreates it.

Example:
    host = ProxyHost("host", ProxyHostArgs(), AppArgs(port=3000), stack="prod", region="us-east-1",
                     hostnames=("example.com",), network=net, certificate=cert, database=db,
                     backups=backups, backup_jobs=BackupJobs(backup_calendar="*-*-* 02:00:00"),
                     alarm_topic_arn=alerts.topic_arn)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare

from leanstack.components.app import App
from leanstack.components.backup_bucket import BackupBucket, sealer_statements, writer_statements
from leanstack.components.base import LeanComponent, policy_output
from leanstack.components.database import Database
from leanstack.components.error_share import count_query, error_share_alarm
from leanstack.components.host_group import HostGroup, HostLaunch
from leanstack.components.network import Network
from leanstack.components.origin_certificate import OriginCertificate
from leanstack.components.private_bucket import lock_down_bucket
from leanstack.components.storage import Storage
from leanstack.config import AlertThresholds, AppArgs, HostsArgs, ProxyHostArgs
from leanstack.config.naming import stack_prefix
from leanstack.host.agent import contract
from leanstack.host.boot import HostBoot, SealJob, host_boot
from leanstack.host.deploy.install import AppDatabase, AppSettings
from leanstack.host.params import BackupJobs, BackupSettings, HostParams

__all__ = [
    "ProxyHost",
    "ProxyHostArgs",
    "access_log_metrics",
    "host_agent_statements",
    "host_name",
    "host_role_name",
    "metrics_namespace",
]

# Each stack publishes in a namespace of its own, so the host role's cloudwatch:namespace condition
# keeps a dev host from writing prod's BackupSuccess (and silencing prod's backup alarms).
METRICS_NAMESPACE_PREFIX = contract.METRICS_NAMESPACE_PREFIX
# What SSM Agent calls for Session Manager (the channels) and Run Command (ec2messages, which deploys
# and the password-rotation restart use), from AWS's "minimum permissions for SSM Agent" list; none
# of these reads data, and none supports a narrower resource than "*".
SESSION_MANAGER_ACTIONS = (
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)
RUN_COMMAND_ACTIONS = (
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
)
AL2023_ARM64 = "al2023-ami-2023.*-kernel-*-arm64"


def host_role_name(stack: str) -> str:
    """The host role's name is fixed so the backup bucket's policy can name it before it exists."""
    return f"{stack_prefix(stack)}-host"


def metrics_namespace(stack: str) -> str:
    """The CloudWatch namespace of the stack's own metrics (backups, drills, disk, the access-log filters)."""
    return contract.metrics_namespace(stack)


def access_log_metrics(stack: str) -> dict[str, str]:
    """The metrics the access log's filters publish, by role: 5xx answers, user requests, response time.

    Each name carries the stack: a metric filter cannot add a constant dimension.
    """
    return {
        "errors": f"Http5xxResponses-{stack}",
        "requests": f"HttpRequests-{stack}",
        "latency": f"RequestTime-{stack}",
    }


# What the host's leanstack-app publishes (Count 1, dimensions Stack and Stack+Process) each time a
# worker's container exits with an error and systemd restarts it.
PROCESS_RESTARTS_METRIC = "ProcessRestarts"


def latency_metric_name(stack: str) -> str:
    return access_log_metrics(stack)["latency"]


def host_agent_statements(stack: str, region: str, account: pulumi.Input[str]) -> list[dict[str, Any]]:
    """What every host of `stack` needs for SSM Agent, the CloudWatch agent and its own parameters.

    Scoped to the stack: parameters under /leanstack/<stack>/, log groups under /leanstack/<stack>/,
    metrics in its own namespace. The CloudWatch agent reads its config from a file (user data), so it
    needs no parameter/AmazonCloudWatch-* read; it does not create log groups (the stack does).
    """

    def arn(service: str, resource: str) -> pulumi.Output[str]:
        return pulumi.Output.concat(f"arn:aws:{service}:{region}:", account, f":{resource}")

    return [
        {"Sid": "SessionManagerChannels", "Effect": "Allow", "Action": list(SESSION_MANAGER_ACTIONS), "Resource": "*"},
        {"Sid": "RunCommandMessages", "Effect": "Allow", "Action": list(RUN_COMMAND_ACTIONS), "Resource": "*"},
        {
            "Sid": "RegisterWithSsm",
            "Effect": "Allow",
            "Action": "ssm:UpdateInstanceInformation",
            "Resource": arn("ec2", "instance/*"),
        },
        {
            "Sid": "ReadOwnParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            "Resource": arn("ssm", f"parameter{contract.parameter_root(stack)}/*"),
        },
        {
            "Sid": "ShipStackLogs",
            "Effect": "Allow",
            # The agent (nginx's access log) and Docker's awslogs driver (the app): streams in existing groups.
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": arn("logs", f"log-group:/{contract.PROJECT}/{stack}/*"),
        },
        {
            "Sid": "PublishStackMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            # PutMetricData has no resource-level permissions; the namespace condition scopes it.
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": metrics_namespace(stack)}},
        },
    ]


def host_name(stack: str) -> str:
    """The Name tag of every host of the stack (single or scaled out): SSM targets hosts by it."""
    return f"{stack_prefix(stack)}-host"


@dataclass(frozen=True)
class _Resolved:
    """The Output values the user data is rendered from, once known."""

    ipv4: Sequence[str]
    ipv6: Sequence[str]
    backup: BackupSettings | None
    host_files_bucket: str
    app: AppSettings | None
    # The load balancer's networks (the VPC's CIDR blocks) when the host sits behind it; None on a single host.
    load_balancer_cidrs: Sequence[str] | None


class ProxyHost(LeanComponent):
    # The single host's instance and Elastic IP; None when scaled out (see `group`).
    instance_id: pulumi.Output[str] | None
    public_ip: pulumi.Output[str] | None
    # Where Cloudflare sends users: the Elastic IP, or the load balancer's DNS name when scaled out.
    origin: pulumi.Output[str]
    group: HostGroup | None
    security_group_id: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: ProxyHostArgs,
        app: AppArgs,
        *,
        stack: str,
        region: str,
        hostnames: Sequence[str],
        network: Network,
        certificate: OriginCertificate,
        alarm_topic_arn: pulumi.Input[str],
        ticket_topic_arn: pulumi.Input[str] | None = None,
        cdn_proxied: bool = True,
        database: Database | None = None,
        backups: BackupBucket | None = None,
        thresholds: AlertThresholds | None = None,
        application: App | None = None,
        hosts: HostsArgs | None = None,
        backup_jobs: BackupJobs | None = None,
        storage: Storage | None = None,
        boot: HostBoot | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts)
        self.args, self.app, self.stack, self.region = args, app, stack, region
        self.thresholds = thresholds or AlertThresholds()
        self.hostnames = tuple(hostnames)
        self.cdn_proxied = cdn_proxied
        self.parameter_prefix = contract.parameter_root(stack)
        self.metrics_namespace = metrics_namespace(stack)
        self.topic_arn = alarm_topic_arn
        # Tickets (can wait for working hours); without a ticket topic they page like the rest.
        self.ticket_topic_arn = ticket_topic_arn if ticket_topic_arn is not None else alarm_topic_arn
        ranges = cloudflare.get_ip_ranges_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self._account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        tls_parameters = self._store_origin_tls(certificate)
        self.backup_jobs = backup_jobs or BackupJobs()
        self.storage = storage
        self._seal = self._seal_job(backups, database, application)
        # What the host boots from, assembled in host/boot.py; this component only uploads and hands it over.
        self._boot = boot or host_boot(
            with_backups=backups is not None and database is not None,
            with_app=application is not None,
        )
        self._fetched = self._boot.fetched
        files_bucket, uploads = self._create_host_files_bucket()
        role, profile = self._create_role(database, backups, files_bucket, application)
        self.group = None
        if hosts is not None and hosts.scaled:
            self.group = HostGroup(
                self.child_name("group"),
                hosts,
                stack=stack,
                network=network,
                certificate=certificate,
                health_path=app.health_path,
                cloudflare_ipv4=ranges.ipv4_cidrs,
                files_bucket=files_bucket.bucket,
                alarm_topic_arn=alarm_topic_arn,
                cdn_proxied=cdn_proxied,
                thresholds=self.thresholds,
                opts=self.child_opts(),
            )
        security_group = self._create_security_group(network, ranges.ipv4_cidrs)
        boot_after: list[pulumi.Resource] = [*tls_parameters, *uploads, role]
        if application is not None:
            boot_after.append(application.config_parameter)  # read by the first container start
        if database is not None:
            boot_after.append(self._store_database_location(database))  # read by the tools at each use
        if self.group is None:
            user_data = self._render_user_data(ranges, database, backups, files_bucket, application)
            instance = self._create_instance(network, security_group, profile, user_data, boot_after)
            eip = aws.ec2.Eip(
                self.child_name("ip"),
                domain="vpc",
                instance=instance.id,
                tags=self.named_tags(host_name(stack)),
                opts=self.child_opts(),
            )
        else:
            # The same cloud-init on every host, but only the jobs host arms the backup timers. Both
            # run nginx behind the load balancer, whose addresses come from the VPC's CIDR blocks.
            behind = network.vpc_cidr_blocks
            user_data = self._render_user_data(ranges, database, backups, files_bucket, application, behind=behind)
            web_user_data = self._render_user_data(
                ranges, database, backups, files_bucket, application, jobs=False, behind=behind
            )
            self.group.launch(
                HostLaunch(
                    ami=self._ami(),
                    instance_type=args.instance_type,
                    root_volume_gb=args.root_volume_gb,
                    instance_profile_name=profile.name,
                    security_group_id=security_group.id,
                    user_data=web_user_data,
                    jobs_user_data=user_data,
                    depends_on=tuple(boot_after),
                )
            )
        self.access_log_group = aws.cloudwatch.LogGroup(
            self.child_name("access-log"),
            name=contract.access_log_group(stack),
            # Enough to debug last month's incident; logs are billed per GB stored.
            retention_in_days=30,
            tags=self.tags,
            opts=self.child_opts(),
        )
        if self.group is None:
            self._create_host_alarms(instance)
        self._create_error_rate_alarm()
        self._create_latency_alarm()
        if application is not None and application.args.jobs:
            self._create_job_failed_alarm()
        if application is not None and application.args.processes:
            self._create_crash_loop_alarm()
        if backups is not None:
            self._create_backup_alarms()

        if self.group is None:
            self.instance_id, self.public_ip = instance.id, eip.public_ip
            self.origin = eip.public_ip
        else:
            self.instance_id = self.public_ip = None
            self.origin = self.group.origin
        self.security_group_id = security_group.id
        self.role_arn = role.arn
        self.register_outputs({"origin": self.origin, "role_arn": self.role_arn})

    # ------------------------------------------------------------------ secrets for the host

    def _store_origin_tls(self, certificate: OriginCertificate) -> list[aws.ssm.Parameter]:
        prefix = f"{self.parameter_prefix}/tls"
        return [
            aws.ssm.Parameter(
                self.child_name(f"tls-{part}"),
                name=f"{prefix}/origin-{part}",
                type="SecureString",
                value=value,
                description=f"Cloudflare origin {part} for nginx; fetched by the host at boot",
                tags=self.tags,
                opts=self.child_opts(),
            )
            for part, value in (("cert", certificate.certificate_pem), ("key", certificate.private_key_pem))
        ]

    # ------------------------------------------------------------------ identity

    def _create_role(
        self,
        database: Database | None,
        backups: BackupBucket | None,
        files_bucket: aws.s3.Bucket,
        application: App | None,
    ) -> tuple[aws.iam.Role, aws.iam.InstanceProfile]:
        role = aws.iam.Role(
            self.child_name("role"),
            name=host_role_name(self.stack),
            description="The leanstack proxy host: SSM sessions, logs, metrics, its secrets, backups",
            assume_role_policy=policy_output(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ),
            tags=self.tags,
            opts=self.child_opts(),
        )
        # No AWS-managed policy: AmazonSSMManagedInstanceCore and CloudWatchAgentServerPolicy allow
        # ssm:GetParameter on every parameter of the account (another stack's secrets) and
        # PutMetricData in any namespace. The statements below are what those two were used for.
        aws.iam.RolePolicy(
            self.child_name("permissions"),
            role=role.id,
            policy=policy_output(*self._role_statements(database, backups, files_bucket, application)),
            opts=self.child_opts(),
        )
        profile = aws.iam.InstanceProfile(
            self.child_name("profile"), name=host_role_name(self.stack), role=role.name, tags=self.tags,
            opts=self.child_opts(),
        )  # fmt: skip
        return role, profile

    def _role_statements(
        self,
        database: Database | None,
        backups: BackupBucket | None,
        files_bucket: aws.s3.Bucket,
        application: App | None,
    ) -> list[dict[str, Any]]:
        statements = [*host_agent_statements(self.stack, self.region, self._account)]
        statements.append(
            {
                "Sid": "ReadHostFiles",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": pulumi.Output.concat(files_bucket.arn, "/*"),
            }
        )
        if database is not None:
            statements.append(
                {
                    "Sid": "ReadDatabasePassword",
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": database.secret_arn,
                }
            )
        if backups is not None:
            statements += writer_statements(backups.bucket_arn, backups.prefix, self.stack)
        seal = self._seal
        if backups is not None and seal is not None:
            statements += sealer_statements(backups.bucket_arn, self.stack)
            if seal.secret_ids:
                # GetSecretValue on them is ReadAppSecrets'; the sealer also records their names.
                statements.append(
                    {
                        "Sid": "DescribeSealedSecrets",
                        "Effect": "Allow",
                        "Action": "secretsmanager:DescribeSecret",
                        "Resource": list(seal.secret_ids),
                    }
                )
        if application is not None:
            statements += self._app_statements(application)
        if self.storage is not None:
            statements += self._storage_statements(self.storage)
        return statements

    def _seal_job(
        self, backups: BackupBucket | None, database: Database | None, application: App | None
    ) -> SealJob | None:
        """The daily sealed copy of the app's config and secrets, when backup.recoveryPublicKey is set."""
        if backups is None or database is None or not backups.args.recovery_public_key:
            return None
        secrets = list(application.args.secrets.values()) if application is not None else []
        if application is not None and application.args.registry_secret_arn:
            # The image's pull credentials: without them a recovery cannot pull the app.
            secrets.append(application.args.registry_secret_arn)
        return SealJob(
            public_key=backups.args.recovery_public_key,
            secret_ids=tuple(sorted({v for v in secrets if v.startswith("arn:")})),
            calendar=self.backup_jobs.backup_calendar,
        )

    def _storage_statements(self, storage: Storage) -> list[dict[str, Any]]:
        """Serve the app its own role; read (never write) the uploads' replica for the drill's files check."""
        statements: list[dict[str, Any]] = [
            {"Sid": "ServeAppRole", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": storage.app_role_arn}
        ]
        if storage.args.drill_files_sql:
            statements.append(
                {
                    "Sid": "CheckFilesInReplica",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": pulumi.Output.concat(storage.replica_arn, "/*"),
                }
            )
        return statements

    def _app_statements(self, application: App) -> list[dict[str, Any]]:
        """Pull the app's image, ship its logs, read the secrets it is configured with."""
        statements: list[dict[str, Any]] = [
            {
                "Sid": "PullAppImages",
                "Effect": "Allow",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                "Resource": application.repository_arn,
            },
            {
                "Sid": "LogInToEcr",
                "Effect": "Allow",
                # GetAuthorizationToken has no resource-level permissions.
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
        ]
        secret_arns = sorted(
            {v for v in application.args.secrets.values() if v.startswith("arn:")}
            | ({application.args.registry_secret_arn} if application.args.registry_secret_arn else set())
        )
        if secret_arns:
            statements.append(
                {
                    "Sid": "ReadAppSecrets",
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": secret_arns,
                }
            )
        outside = sorted(
            v
            for v in application.args.secrets.values()
            if v.startswith("/") and not v.startswith(self.parameter_prefix + "/")
        )
        if outside:
            # `validate` refuses these first (see leanstack.config); the host may read its own stack's only.
            raise ValueError(f"app.secrets: {outside[0]} is outside {self.parameter_prefix}/, which the host may read")
        return statements

    def _store_database_location(self, database: Database) -> aws.ssm.Parameter:
        """Where the database is, for the host to read at each use (contract.database_parameter):
        a recovery's new endpoint and secret reach the host here, not through its user data."""
        return aws.ssm.Parameter(
            self.child_name("database-location"),
            name=contract.database_parameter(self.stack),
            type="String",
            value=pulumi.Output.json_dumps(
                {"host": database.address, "port": database.port, "secret_arn": database.secret_arn}
            ),
            description="Where the database is (host, port, secret ARN); read by the host at each use",
            tags=self.tags,
            opts=self.child_opts(),
        )

    # ------------------------------------------------------------------ files too large for user data

    def _create_host_files_bucket(self) -> tuple[aws.s3.Bucket, list[aws.s3.BucketObjectv2]]:
        bucket = aws.s3.Bucket(
            self.child_name("files"),
            bucket_prefix=f"{stack_prefix(self.stack)}-host-files-",
            # Only leanstack's own files live here; they are rebuilt from the repo on every `pulumi up`.
            force_destroy=True,
            tags=self.tags,
            opts=self.child_opts(),
        )
        # Every `pulumi up` that changes a file leaves its old version behind: keep it a month.
        replaced_files = aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-replaced-files",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=30
            ),
        )
        lock_down_bucket(self, bucket, self.child_opts, prefix="files-", lifecycle_rules=[replaced_files])
        uploads = [
            aws.s3.BucketObjectv2(
                self.child_name(f"file-{Path(f.path).name}"),
                bucket=bucket.id,
                key=f.key,
                content=f.content,
                content_type="text/plain",
                server_side_encryption="AES256",
                tags=self.tags,
                opts=self.child_opts(),
            )
            for f in self._fetched
        ]
        return bucket, uploads

    # ------------------------------------------------------------------ network

    def _create_security_group(
        self, network: Network, cloudflare_ipv4: pulumi.Input[Sequence[str]]
    ) -> aws.ec2.SecurityGroup:
        # With the CDN proxying, only Cloudflare reaches the origin; without it (a debugging
        # setting), 443 is open to everyone and nginx stops asking for Cloudflare's client cert.
        # Scaled out, the load balancer is the origin and the hosts admit it alone. The group's
        # name and description stay: a new description would replace the group.
        sources = cloudflare_ipv4 if self.cdn_proxied else ["0.0.0.0/0"]
        https = aws.ec2.SecurityGroupIngressArgs(
            description="HTTPS from Cloudflare" if self.cdn_proxied else "HTTPS from anywhere (CDN off)",
            protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_blocks=sources,
        )
        if self.group is not None:
            https = aws.ec2.SecurityGroupIngressArgs(
                description="HTTPS from the load balancer only",
                protocol="tcp",
                from_port=443,
                to_port=443,
                security_groups=[self.group.security_group_id],
            )
        return aws.ec2.SecurityGroup(
            self.child_name("sg"),
            name=f"{stack_prefix(self.stack)}-host",
            description="HTTPS from Cloudflare only; no SSH (SSM Session Manager instead)",
            vpc_id=network.vpc_id,
            ingress=[https],
            # Outbound stays open: the host reaches SSM, S3, CloudWatch, the package mirrors
            # and whatever APIs the app calls, with no NAT gateway to pay for.
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    description="All outbound",
                    protocol="-1",
                    from_port=0,
                    to_port=0,
                    cidr_blocks=["0.0.0.0/0"],
                )
            ],
            tags=self.named_tags(host_name(self.stack)),
            opts=self.child_opts(),
        )

    # ------------------------------------------------------------------ the instance

    def _render_user_data(
        self,
        ranges: pulumi.Output[cloudflare.GetIpRangesResult],
        database: Database | None,
        backups: BackupBucket | None,
        files_bucket: aws.s3.Bucket,
        application: App | None,
        jobs: bool = True,
        behind: pulumi.Input[Sequence[str]] | None = None,
    ) -> pulumi.Output[str]:
        """The host's cloud-init; `jobs=False` leaves the backup and restore-drill timers unarmed.

        `behind`: the load balancer's networks, when the host is behind it (scale mode).
        """
        backup_settings: pulumi.Output[BackupSettings | None] = pulumi.Output.from_input(None)
        if database is not None and backups is not None:
            replica = self.storage.replica_name if self.storage is not None else ""
            files_sql = self.storage.args.drill_files_sql if self.storage is not None else ""
            # Where the database is (endpoint, secret) is read on the host from its SSM parameter,
            # never rendered here: a restored instance must not change the user data (the host).
            backup_settings = pulumi.Output.all(backups.bucket_name, replica).apply(
                lambda v: BackupSettings(
                    bucket=v[0],
                    bucket_region=backups.region,
                    prefix=backups.prefix,
                    database_name=database.database_name,
                    database_host="",
                    database_port=0,
                    database_user=database.username,
                    database_secret_arn="",
                    database_parameter=contract.database_parameter(self.stack),
                    region=self.region,
                    drill_target=self.backup_jobs.drill_target,
                    drill_database_url=self.backup_jobs.drill_database_url,
                    drill_starts_app=self.backup_jobs.drill_starts_app,
                    verify_sql=self.backup_jobs.verify_sql,
                    files_bucket=v[1] if files_sql else "",
                    files_sql=files_sql,
                    backup_calendar=self.backup_jobs.backup_calendar,
                    drill_calendar=self.backup_jobs.drill_calendar,
                    metrics_namespace=self.metrics_namespace,
                    stack=self.stack,
                    behind_load_balancer=behind is not None,
                )
            )
        app_settings: pulumi.Output[AppSettings | None] = pulumi.Output.from_input(None)
        if application is not None:
            app_settings = self._app_settings(application, database, runs_jobs=jobs)
        resolved = pulumi.Output.all(
            ranges.ipv4_cidrs, ranges.ipv6_cidrs, backup_settings, files_bucket.bucket, app_settings, behind
        ).apply(
            lambda v: _Resolved(
                ipv4=v[0], ipv6=v[1], backup=v[2], host_files_bucket=v[3], app=v[4], load_balancer_cidrs=v[5]
            )
        )
        return resolved.apply(lambda r: self._user_data(r, jobs=jobs))

    def _app_settings(
        self, application: App, database: Database | None, runs_jobs: bool
    ) -> pulumi.Output[AppSettings | None]:
        """The app's host files: where its config is in SSM, never the config itself (no host replacement)."""
        a = application.args
        db: pulumi.Output[AppDatabase | None] = pulumi.Output.from_input(None)
        if database is not None:
            # The endpoint and secret are read at each start from the database's SSM parameter.
            db = pulumi.Output.from_input(
                AppDatabase(
                    host="",
                    port=0,
                    name=database.database_name,
                    user=database.username,
                    secret_arn="",
                    parameter=contract.database_parameter(self.stack),
                )
            )
        identity: pulumi.Output[tuple[str, dict[str, str]]] = pulumi.Output.from_input(("", {}))
        if self.storage is not None:
            identity = pulumi.Output.all(self.storage.app_role_arn, self.storage.bucket_name).apply(
                lambda v: (v[0], {"UPLOADS_BUCKET": v[1], "UPLOADS_BUCKET_REGION": self.region})
            )
        return pulumi.Output.all(application.image, db, identity).apply(
            lambda v: AppSettings(
                stack=self.stack,
                region=self.region,
                image=v[0],
                port=self.app.port,
                health_path=self.app.health_path,
                database=v[1],
                registry_secret_arn=a.registry_secret_arn,
                health_timeout_seconds=a.health_timeout_seconds,
                releases_parameter=application.releases_parameter,
                log_group=application.log_group_name,
                parameters_path=application.parameters_path,
                runs_jobs=runs_jobs,
                metrics_namespace=self.metrics_namespace,
                app_role_arn=v[2][0],
                stack_values=v[2][1],
            )
        )

    def _user_data(self, resolved: _Resolved, jobs: bool = True) -> str:
        params = HostParams(
            stack=self.stack,
            region=self.region,
            hostnames=self.hostnames,
            app_port=self.app.port,
            health_path=self.app.health_path,
            cdn_proxied=self.cdn_proxied,
            cloudflare_ipv4_cidrs=tuple(resolved.ipv4),
            cloudflare_ipv6_cidrs=tuple(resolved.ipv6),
            behind_load_balancer=resolved.load_balancer_cidrs is not None,
            load_balancer_cidrs=tuple(resolved.load_balancer_cidrs or ()),
            hsts_max_age_seconds=self.args.hsts_max_age_seconds,
            max_body_mb=self.args.max_body_mb,
            tls_parameter_prefix=f"{self.parameter_prefix}/tls",
            access_log_group=contract.access_log_group(self.stack),  # created in __init__
            metrics_namespace=self.metrics_namespace,
            backup=resolved.backup,
        )
        return self._boot.user_data(
            params,
            backup=resolved.backup,
            app=resolved.app,
            files_bucket=resolved.host_files_bucket,
            jobs=jobs,
            seal=self._seal,
        )

    def _create_instance(
        self,
        network: Network,
        security_group: aws.ec2.SecurityGroup,
        profile: aws.iam.InstanceProfile,
        user_data: pulumi.Output[str],
        depends_on: list[pulumi.Resource],
    ) -> aws.ec2.Instance:
        return aws.ec2.Instance(
            self.child_name("instance"),
            ami=self._ami(),
            instance_type=self.args.instance_type,
            subnet_id=network.public_subnet_ids[0],
            vpc_security_group_ids=[security_group.id],
            iam_instance_profile=profile.name,
            # No key pair: there is no SSH. Shell access is SSM Session Manager.
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_tokens="required", http_endpoint="enabled", http_put_response_hop_limit=1
            ),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_type="gp3",
                volume_size=self.args.root_volume_gb,
                encrypted=True,
                delete_on_termination=True,
            ),
            user_data_base64=user_data,
            # cloud-init runs once per instance: a changed user data only takes effect on a new host.
            user_data_replace_on_change=True,
            monitoring=False,
            tags=self.named_tags(host_name(self.stack)),
            volume_tags=self.tags,
            opts=self.child_opts(depends_on=depends_on),
        )

    def _ami(self) -> pulumi.Input[str]:
        """The pinned AMI, or the current Amazon Linux 2023 arm64 one."""
        return (
            self.args.ami_id
            or aws.ec2.get_ami_output(
                most_recent=True,
                owners=["amazon"],
                filters=[
                    aws.ec2.GetAmiFilterArgs(name="name", values=[AL2023_ARM64]),
                    aws.ec2.GetAmiFilterArgs(name="architecture", values=["arm64"]),
                ],
                opts=pulumi.InvokeOutputOptions(parent=self),
            ).id
        )

    # ------------------------------------------------------------------ alarms

    def _alarm(self, suffix: str, description: str, **kwargs: Any) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            self.child_name(suffix),
            name=f"{stack_prefix(self.stack)}-{suffix}",
            alarm_description=description,
            tags=self.tags,
            opts=self.child_opts(),
            **kwargs,
        )

    def _paging_alarm(self, suffix: str, description: str, **kwargs: Any) -> aws.cloudwatch.MetricAlarm:
        """An alarm that notifies the page topic when it fires and again when it clears."""
        return self._alarm(suffix, description, alarm_actions=[self.topic_arn], ok_actions=[self.topic_arn], **kwargs)

    def _ticket_alarm(self, suffix: str, description: str, **kwargs: Any) -> aws.cloudwatch.MetricAlarm:
        """An alarm that notifies the ticket topic when it fires and again when it clears."""
        topic = self.ticket_topic_arn
        return self._alarm(suffix, description, alarm_actions=[topic], ok_actions=[topic], **kwargs)

    def _create_host_alarms(self, instance: aws.ec2.Instance) -> None:
        self._alarm(
            "recover",
            "AWS's hardware under the host failed its status check: EC2 moves the host to healthy "
            "hardware (same IP, same disk). Nothing to do unless still-broken follows.",
            namespace="AWS/EC2",
            metric_name="StatusCheckFailed_System",
            dimensions={"InstanceId": instance.id},
            statistic="Maximum",
            period=60,
            evaluation_periods=2,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            alarm_actions=[pulumi.Output.concat("arn:aws:automate:", self.region, ":ec2:recover")],
        )
        self._paging_alarm(
            "still-broken",
            "Site down for users: the host has failed a status check for 15 minutes and automatic "
            "recovery did not fix it. First check: EC2 console > the host > Status checks and System log; "
            "if needed, replace the instance as the runbook says. Runbook: #host-still-broken",
            namespace="AWS/EC2",
            metric_name="StatusCheckFailed",
            dimensions={"InstanceId": instance.id},
            statistic="Maximum",
            period=300,
            evaluation_periods=3,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
        )

    def _create_error_rate_alarm(self) -> None:
        """Errors up: the share of user requests answered with a 5xx, from nginx's access log."""
        t = self.thresholds
        # Health checks are left out of both counts: they are the site-down alarm's job, and
        # Route 53's checkers (some 16 requests a minute) would otherwise dilute the share.
        user_request = f'$.uri != "{self.app.health_path}"'
        names = access_log_metrics(self.stack)
        metrics = {
            "errors": (names["errors"], f"{{ ($.status >= 500) && ({user_request}) }}"),
            "requests": (names["requests"], f"{{ ($.status > 0) && ({user_request}) }}"),
        }
        for query_id, (metric_name, pattern) in metrics.items():
            aws.cloudwatch.LogMetricFilter(
                self.child_name(f"{query_id}-filter"),
                name=f"{stack_prefix(self.stack)}-{query_id}",
                log_group_name=self.access_log_group.name,
                pattern=pattern,
                metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                    # The metric name carries the stack: filters cannot add a constant dimension.
                    name=metric_name,
                    namespace=self.metrics_namespace,
                    value="1",
                    unit="Count",
                ),
                opts=self.child_opts(),
            )

        def metric(query_id: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return count_query(query_id, self.metrics_namespace, metrics[query_id][0])

        self._paging_alarm(
            "error-rate",
            f"Errors up for users: over {t.error_rate_percent}% of requests got a 5xx from the site for 5 minutes "
            f"(counted in minutes with at least {t.min_requests_per_minute} requests). First check: the app's own "
            "log on the host (SSM session) and the newest 5xx lines in CloudWatch Logs "
            f"{contract.access_log_group(self.stack)}; if a deploy just went out, roll it back. Runbook: #error-rate",
            **error_share_alarm(
                metric("errors"),
                metric("requests"),
                label="Share of user requests answered with a 5xx (%)",
                min_requests_per_minute=t.min_requests_per_minute,
                threshold_percent=t.error_rate_percent,
            ),
        )

    def _create_latency_alarm(self) -> None:
        """Slow for users: the 95th percentile of response time, from nginx's log or the load balancer."""
        limit_ms = self.thresholds.latency_p95_ms
        source: dict[str, Any]
        # Scaled out, hosts ship the same log, so the filter stays (growing deletes nothing); the alarm then
        # reads the load balancer, which also counts time spent between it and the host. nginx logs
        # request_time (seconds, millisecond resolution) as a JSON number on every line; the filter
        # publishes each user request's value, so CloudWatch can take a percentile of them.
        aws.cloudwatch.LogMetricFilter(
            self.child_name("latency-filter"),
            name=f"{stack_prefix(self.stack)}-latency",
            log_group_name=self.access_log_group.name,
            pattern=f'{{ ($.request_time >= 0) && ($.uri != "{self.app.health_path}") }}',
            metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                name=latency_metric_name(self.stack),
                namespace=self.metrics_namespace,
                value="$.request_time",
                unit="Seconds",
            ),
            opts=self.child_opts(),
        )
        if self.group is None:
            source = {"namespace": self.metrics_namespace, "metric_name": latency_metric_name(self.stack)}
            where = f"nginx's request_time in /leanstack/{self.stack}/nginx/access"
        else:
            source = {
                "namespace": "AWS/ApplicationELB",
                "metric_name": "TargetResponseTime",
                "dimensions": {"LoadBalancer": self.group.load_balancer_arn_suffix},
            }
            where = "the load balancer's TargetResponseTime"
        self._paging_alarm(
            "latency",
            f"Slow for users: the 95th percentile of response time has been over {limit_ms} ms for 5 minutes "
            f"({where}). First check: the dashboard leanstack-{self.stack} (database CPU and connections next to "
            "it), the slow-query log in CloudWatch Logs, and whether a deploy just went out. Runbook: #latency",
            **source,
            extended_statistic="p95",
            period=60,
            evaluation_periods=5,
            datapoints_to_alarm=5,
            comparison_operator="GreaterThanThreshold",
            threshold=limit_ms / 1000,
            # A quiet minute has no percentile worth paging on; no data is not slowness either.
            evaluate_low_sample_count_percentiles="ignore",
            treat_missing_data="notBreaching",
        )

    def _create_job_failed_alarm(self) -> None:
        # Each run of an app.jobs job publishes JobFailure 0 or 1 (leanstack-app job); any 1 files one ticket.
        self._ticket_alarm(
            "job-failed",
            "A scheduled job (app.jobs) failed: whatever it does (reports, cleanups, billing) did not happen. "
            "First check: `python -m leanstack logs <stack> --filter job-` and the per-job JobFailure metric; "
            "rerun with `sudo leanstack-app job NAME` on the jobs host. Runbook: #job-failed",
            namespace=self.metrics_namespace,
            metric_name="JobFailure",
            dimensions={"Stack": self.stack},
            statistic="Maximum",
            period=300,
            evaluation_periods=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            # No run in the period is not a failure (jobs run hourly or daily).
            treat_missing_data="notBreaching",
        )

    def _create_crash_loop_alarm(self) -> None:
        # A ticket, not a page: the site serves, and with the cache on noeviction the queued jobs wait for the
        # fix instead of being lost; a worker crashing for ten minutes is a working-hours bug, not an outage.
        self._ticket_alarm(
            "worker-crash-loop",
            "Data waits: a worker (app.processes) keeps exiting with an error, so queued jobs (emails, exports, "
            "webhooks) are not processed; the web app still serves. First check: `python -m leanstack logs <stack> "
            "--filter worker-` and the per-process ProcessRestarts metric; a bad deploy: roll it back. "
            "Runbook: #worker-crash-loop",
            namespace=self.metrics_namespace,
            metric_name=PROCESS_RESTARTS_METRIC,
            dimensions={"Stack": self.stack},
            statistic="Sum",
            period=300,
            # 3 failed exits in each of two 5-minute periods: a loop, not one unlucky crash.
            evaluation_periods=2,
            datapoints_to_alarm=2,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=3,
            treat_missing_data="notBreaching",
        )

    def _create_backup_alarms(self) -> None:
        dimensions = {"Stack": self.stack}
        # N hourly periods (26 by default) with no successful backup, missing data counting as
        # breaching: a dead host or a broken timer alarms as surely as a failing backup.
        hours = self.thresholds.backup_stale_hours
        self._paging_alarm(
            "backup-stale",
            f"Data at risk: no successful off-site backup in {hours} hours, so a disaster now would lose more "
            "than the recovery point allows. First check: `systemctl status leanstack-backup` on the host (SSM "
            "session) and its journal. Runbook: #backup-stale",
            namespace=self.metrics_namespace,
            metric_name="BackupSuccess",
            dimensions=dimensions,
            statistic="Sum",
            period=3600,
            evaluation_periods=hours,
            datapoints_to_alarm=hours,
            comparison_operator="LessThanThreshold",
            threshold=1,
            treat_missing_data="breaching",
        )
        # A CloudWatch alarm cannot look back 35 days, so each daily backup run publishes the
        # age of the newest successful drill report, and this alarm watches that number.
        self._ticket_alarm(
            "restore-drill-stale",
            "Data at risk: no successful restore drill in 35 days, so nobody knows the backups restore. "
            "First check: `sudo journalctl -u leanstack-restore-drill -n 50 --no-pager` on the host; run "
            "`sudo systemctl start leanstack-restore-drill`. Runbook: #restore-drill-stale",
            namespace=self.metrics_namespace,
            metric_name="RestoreDrillAgeDays",
            dimensions=dimensions,
            statistic="Maximum",
            period=86400,
            evaluation_periods=1,
            comparison_operator="GreaterThanThreshold",
            threshold=35,
            treat_missing_data="breaching",
        )
        self._alarm(
            "restore-drill-failed",
            "Data at risk: the last restore drill failed, so the newest backup may not restore. First "
            "check: `sudo journalctl -u leanstack-restore-drill -n 50 --no-pager` on the host for the one-line reason. "
            "Runbook: #restore-drill-failed",
            namespace=self.metrics_namespace,
            metric_name="RestoreDrillFailure",
            dimensions=dimensions,
            statistic="Sum",
            period=86400,
            evaluation_periods=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            treat_missing_data="notBreaching",
            alarm_actions=[self.ticket_topic_arn],
        )

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
  from templates under `host/` (`components.host_boot_files` uploads them and hands over values):
  nginx as a TLS reverse proxy to the app on 127.0.0.1:<app.port> requiring Cloudflare's
  origin-pull client certificate, the CloudWatch agent shipping nginx's JSON access log, and the
  backup and restore-drill timers;
- the origin certificate and key as SSM SecureString parameters, which the host fetches at
  boot with its role (user data is readable by anything on the host, so no secret goes there);
- an instance role allowed exactly what the host does (`components.host_identity`), scoped to
  the stack and with no AWS-managed policy (AmazonSSMManagedInstanceCore reads every parameter of
  the account, CloudWatchAgentServerPolicy publishes in any namespace): Session Manager and Run
  Command channels, parameters under /leanstack/<stack>/ only, streams in log groups under
  /leanstack/<stack>/, metrics in the namespace Leanstack/<stack> only (`host_agent_statements`),
  the database's RDS-managed secret, writing and reading backups (never deleting them).
  SecureStrings stay on the account's aws/ssm key: with reads scoped to the stack's path, a
  per-stack KMS key (billed monthly) would only add a second lock against the account's own
  administrators, who can change its key policy (see the README's security section);
- alarms (`components.host_alarms`): automatic recovery when AWS's system status check fails, a
  page when the host stays broken, "errors up" (the share of user requests answered with a 5xx,
  from two metric filters on nginx's access log and metric math, above `alerts.errorRatePercent`
  for 5 minutes, counted only in minutes with `alerts.minRequestsPerMinute` requests), "slow for
  users", and the backup alarms ("backup stale", "restore drill stale", "restore drill failed").

Cost: billed are one instance of `instance_type` (on demand), its gp3 root volume, a public IPv4
address, the standard alarms, the error-rate alarm (metric math over two metrics, billed as two
alarm metrics), the custom metrics published by the log filters, and CloudWatch Logs ingestion
and storage (usage-based); priced per region in `python -m leanstack plan`.

The backup alarms count missing data as breaching, so after the host is replaced they may e-mail
once until its first backup (run `sudo systemctl start leanstack-backup` on the jobs host).

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

Children, reachable as attributes and changeable before creation with `transform` (a mapping of
child key to a function that gets the child's keyword arguments, `opts` included, and may change
them): `instance` and `elastic_ip` (None when scaled out), `role`, `security_group`,
`files_bucket`, `access_log_group`; also `profile` and `group` (the HostGroup, None on one host).

Example:
    host = ProxyHost(
        "host", ProxyHostArgs(), stack="prod", region="us-east-1",
        site=HostSite(hostnames=("example.com",), app=AppArgs(port=3000),
                      backup_jobs=BackupJobs(backup_calendar="*-*-* 02:00:00")),
        dependencies=HostDependencies(network=net, certificate=cert, alarm_topic_arn=alerts.topic_arn,
                                      database=db, backups=backups),
        transform={"instance": lambda args: args["tags"].update(Team="web")},
    )
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare

from leanstack.components.base import LeanComponent, Transforms
from leanstack.components.host_alarms import HostAlarms, access_log_metrics
from leanstack.components.host_boot_files import (
    HostUserData,
    create_host_files_bucket,
    seal_job,
    store_database_location,
    store_origin_tls,
)
from leanstack.components.host_group import GroupDependencies, HostGroup, HostLaunch
from leanstack.components.host_identity import (
    create_host_role,
    host_agent_statements,
    host_role_name,
    host_role_statements,
)
from leanstack.components.host_inputs import HostDependencies, HostSite
from leanstack.config import ProxyHostArgs
from leanstack.config.naming import stack_prefix
from leanstack.host.agent import contract
from leanstack.host.boot import host_boot

__all__ = [
    "HostDependencies",
    "HostSite",
    "ProxyHost",
    "ProxyHostArgs",
    "access_log_metrics",
    "host_agent_statements",
    "host_name",
    "host_role_name",
    "metrics_namespace",
]

AL2023_ARM64 = "al2023-ami-2023.*-kernel-*-arm64"


def metrics_namespace(stack: str) -> str:
    """The CloudWatch namespace of the stack's own metrics (backups, drills, disk, the access-log filters)."""
    return contract.metrics_namespace(stack)


def host_name(stack: str) -> str:
    """The Name tag of every host of the stack (single or scaled out): SSM targets hosts by it."""
    return f"{stack_prefix(stack)}-host"


class ProxyHost(LeanComponent):
    TRANSFORMABLE = ("instance", "elastic_ip", "role", "security_group", "files_bucket", "access_log_group")
    # The single host's instance and Elastic IP; None when scaled out (see `group`).
    instance: aws.ec2.Instance | None
    elastic_ip: aws.ec2.Eip | None
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
        *,
        stack: str,
        region: str,
        site: HostSite,
        dependencies: HostDependencies,
        transform: Transforms | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts, transform)
        self.args, self.app, self.stack, self.region = args, site.app, stack, region
        self.site, self.dependencies = site, dependencies
        self.hostnames = tuple(site.hostnames)
        self.metrics_namespace = metrics_namespace(stack)
        deps = dependencies
        ranges = cloudflare.get_ip_ranges_output(opts=pulumi.InvokeOutputOptions(parent=self))
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        tls_parameters = store_origin_tls(self, stack, deps.certificate)
        seal = seal_job(deps, site.backup_jobs)
        # What the host boots from, assembled in host/boot.py; this component only uploads and hands it over.
        boot = deps.boot or host_boot(
            with_backups=deps.backups is not None and deps.database is not None,
            with_app=deps.application is not None,
        )
        self.files_bucket, uploads = create_host_files_bucket(self, stack, boot.fetched)
        statements = host_role_statements(stack, region, account, self.files_bucket.arn, deps, seal)
        self.role, self.profile = create_host_role(self, stack, statements)
        self.group = self._create_group(ranges) if site.hosts is not None and site.hosts.scaled else None
        self.security_group = self._create_security_group(ranges.ipv4_cidrs)
        boot_after = self._boot_prerequisites([*tls_parameters, *uploads, self.role])
        user_data = HostUserData(stack, region, args, site, deps, boot, seal, self.files_bucket, ranges)
        if self.group is None:
            self.instance = self._create_instance(user_data.render(), boot_after)
            self.elastic_ip = self._create_elastic_ip(self.instance)
            self.instance_id, self.public_ip = self.instance.id, self.elastic_ip.public_ip
            self.origin = self.elastic_ip.public_ip
        else:
            self._launch_group(user_data, boot_after)
            self.instance = self.elastic_ip = None
            self.instance_id = self.public_ip = None
            self.origin = self.group.origin
        self._create_alarms()

        self.security_group_id = self.security_group.id
        self.role_arn = self.role.arn
        self.register_outputs({"origin": self.origin, "role_arn": self.role_arn})

    # ------------------------------------------------------------------ steps

    def _create_group(self, ranges: pulumi.Output[cloudflare.GetIpRangesResult]) -> HostGroup:
        """Scaled out: the load balancer in front of the hosts (launched once the user data is known)."""
        assert self.site.hosts is not None
        return HostGroup(
            self.child_name("group"),
            self.site.hosts,
            stack=self.stack,
            dependencies=GroupDependencies(
                network=self.dependencies.network,
                certificate=self.dependencies.certificate,
                cloudflare_ipv4=ranges.ipv4_cidrs,
                files_bucket=self.files_bucket.bucket,
                alarm_topic_arn=self.dependencies.alarm_topic_arn,
            ),
            health_path=self.app.health_path,
            cdn_proxied=self.site.cdn_proxied,
            thresholds=self.site.thresholds,
            opts=self.child_opts(),
        )

    def _boot_prerequisites(self, created: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """What a host needs before it boots: its parameters, files and role, the app config, the database location."""
        boot_after = list(created)
        if self.dependencies.application is not None:
            boot_after.append(self.dependencies.application.config_parameter)  # read by the first container start
        if self.dependencies.database is not None:
            # Read by the tools at each use.
            boot_after.append(store_database_location(self, self.stack, self.dependencies.database))
        return boot_after

    def _launch_group(self, user_data: HostUserData, boot_after: list[pulumi.Resource]) -> None:
        # The same cloud-init on every host, but only the jobs host arms the backup timers. Both
        # run nginx behind the load balancer, whose addresses come from the VPC's CIDR blocks.
        assert self.group is not None
        behind = self.dependencies.network.vpc_cidr_blocks
        jobs_user_data = user_data.render(behind=behind)
        web_user_data = user_data.render(jobs=False, behind=behind)
        self.group.launch(
            HostLaunch(
                ami=self._ami(),
                instance_type=self.args.instance_type,
                root_volume_gb=self.args.root_volume_gb,
                instance_profile_name=self.profile.name,
                security_group_id=self.security_group.id,
                user_data=web_user_data,
                jobs_user_data=jobs_user_data,
                depends_on=tuple(boot_after),
            )
        )

    def _create_alarms(self) -> None:
        """The access log and the alarms of `components.host_alarms` this host's parts call for."""
        deps = self.dependencies
        alarms = HostAlarms(self, self.stack, self.region, self.site, deps.alarm_topic_arn, deps.ticket_topic)
        self.access_log_group = alarms.create_access_log()
        if self.instance is not None:
            alarms.create_instance_alarms(self.instance)
        alarms.create_error_rate_alarm(self.access_log_group)
        alarms.create_latency_alarm(
            self.access_log_group, self.group.load_balancer_arn_suffix if self.group is not None else None
        )
        application = deps.application
        if application is not None and application.args.jobs:
            alarms.create_job_failed_alarm()
        if application is not None and application.args.processes:
            alarms.create_crash_loop_alarm()
        if deps.backups is not None:
            alarms.create_backup_alarms()

    # ------------------------------------------------------------------ network

    def _create_security_group(self, cloudflare_ipv4: pulumi.Input[Sequence[str]]) -> aws.ec2.SecurityGroup:
        # With the CDN proxying, only Cloudflare reaches the origin; without it (a debugging
        # setting), 443 is open to everyone and nginx stops asking for Cloudflare's client cert.
        # Scaled out, the load balancer is the origin and the hosts admit it alone. The group's
        # name and description stay: a new description would replace the group.
        proxied = self.site.cdn_proxied
        https = aws.ec2.SecurityGroupIngressArgs(
            description="HTTPS from Cloudflare" if proxied else "HTTPS from anywhere (CDN off)",
            protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_blocks=cloudflare_ipv4 if proxied else ["0.0.0.0/0"],
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
            **self.transformed(
                "security_group",
                dict(
                    name=f"{stack_prefix(self.stack)}-host",
                    description="HTTPS from Cloudflare only; no SSH (SSM Session Manager instead)",
                    vpc_id=self.dependencies.network.vpc_id,
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
                ),
            ),
        )

    # ------------------------------------------------------------------ the instance

    def _create_instance(self, user_data: pulumi.Output[str], depends_on: list[pulumi.Resource]) -> aws.ec2.Instance:
        return aws.ec2.Instance(
            self.child_name("instance"),
            **self.transformed(
                "instance",
                dict(
                    ami=self._ami(),
                    instance_type=self.args.instance_type,
                    subnet_id=self.dependencies.network.public_subnet_ids[0],
                    vpc_security_group_ids=[self.security_group.id],
                    iam_instance_profile=self.profile.name,
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
                ),
            ),
        )

    def _create_elastic_ip(self, instance: aws.ec2.Instance) -> aws.ec2.Eip:
        return aws.ec2.Eip(
            self.child_name("ip"),
            **self.transformed(
                "elastic_ip",
                dict(domain="vpc", instance=instance.id, tags=self.named_tags(host_name(self.stack)),
                     opts=self.child_opts()),
            ),
        )  # fmt: skip

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

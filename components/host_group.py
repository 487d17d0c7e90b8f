"""HostGroup: the proxy hosts scaled out, behind an Application Load Balancer.

What ProxyHost becomes when one host is no longer enough (`hosts.count` > 1 or
`hosts.autoscale`). ProxyHost keeps its building blocks (instance role and profile, the
host security group, the cloud-init user data, the origin TLS parameters, the access-log
group and its alarms) and hands them to this component, which builds, in two steps:

`HostGroup(...)`, the front:
- an Application Load Balancer in the two public subnets, listening on 443 only, with the
  Cloudflare origin certificate imported into ACM (Cloudflare's "strict" mode trusts it);
- its security group admitting 443 only from Cloudflare's ranges (from anywhere only when
  the CDN is off, the same documented exception as the single host);
- with the CDN proxying, Authenticated Origin Pulls at the load balancer: mutual TLS in
  "verify" mode against a trust store holding Cloudflare's origin-pull CA, so a request that
  bypasses Cloudflare is refused at the handshake, as nginx refuses it on a single host;
- a target group over HTTPS:443 whose health check asks the app's health path.

`launch(HostLaunch(...))`, the hosts:
- a launch template per member kind with the same AMI, instance type, IMDSv2, encrypted gp3
  root volume, instance profile and user data as the single host, except that nginx runs in
  its behind-the-load-balancer mode (ProxyHost renders it: no client certificate or SNI
  asked, the client address believed from the VPC only); hosts get a public IPv4
  address for their way out (there is no NAT gateway) and no Elastic IP, and their security
  group admits 443 only from the load balancer's;
- a "web" Auto Scaling group (count - 1 hosts, or autoscale min - 1 .. max - 1 with CPU target
  tracking) and a "jobs" group of exactly one host, both in the target group. The jobs host
  is the only one whose user data enables the backup and restore-drill timers, so jobs that
  must run once run once; its instance refresh terminates before it launches, so two jobs
  hosts never overlap, while the web group launches the new host before it drops the old;
- alarms replacing the single host's instance-status alarms: "unhealthy targets" (a host
  failing the health check for 15 minutes, which the group did not replace) and "load
  balancer errors" (the share of requests the load balancer itself answers with a 5xx: no
  healthy host, a host refusing the connection or timing out). The app's own 5xx still
  reach nginx's access log on every host and its error-rate alarm.

Cost: billed are the load balancer (hourly, plus its capacity units), its two public IPv4
addresses, and per host one instance of the host's type, its gp3 root volume and a public IPv4
address; the single host's Elastic IP goes. Target group, listener, trust store, launch
templates and the imported certificate are free. Priced per region in `python -m leanstack plan`;
`python -m leanstack diff` shows what growing from one host adds.

Replacement: a new AMI, instance type or user data makes a new launch template version and
an instance refresh replaces the hosts one at a time (no downtime with two or more hosts).
Nothing here holds data; the load balancer's DNS name changes only if it is replaced, and
Cloudflare follows it (`origin` resolves once the hosts pass their health checks).

Growing from one host: the host's security group switches to "from the load balancer only"
as soon as the load balancer's group exists, while Cloudflare still points at the Elastic IP
until the new hosts are healthy: expect a few minutes of errors, so grow in a quiet hour.
Shrinking back is the same in reverse (the new single host boots before DNS moves to it).

Children, reachable as attributes: `security_group`, `target_group`, `load_balancer`, and once
launched `web_group` and `jobs_group`.

Example:
    group = HostGroup("host-group", HostsArgs(count=2), stack="prod",
                      dependencies=GroupDependencies(network=net, certificate=cert, cloudflare_ipv4=ranges,
                                                     files_bucket=bucket.bucket, alarm_topic_arn=alerts.topic_arn),
                      health_path="/healthz")
    group.launch(HostLaunch(ami=ami, instance_type="t4g.small", root_volume_gb=20,
                            instance_profile_name=profile.name, security_group_id=host_sg.id,
                            user_data=web_user_data, jobs_user_data=jobs_user_data))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from leanstack.components.alarms import metric_alarm
from leanstack.components.base import LeanComponent
from leanstack.components.error_share import count_query, error_share_alarm
from leanstack.components.network import Network
from leanstack.components.origin_certificate import OriginCertificate
from leanstack.components.providers import default_tags
from leanstack.config import AlertThresholds, HostsArgs
from leanstack.config.naming import stack_prefix
from leanstack.host.render import ORIGIN_PULL_CA_PEM

__all__ = ["JOBS_ROLE", "WEB_ROLE", "GroupDependencies", "HostGroup", "HostLaunch", "HostsArgs"]

# The `Role` tag on each host: which member kind it is.
WEB_ROLE = "web"
JOBS_ROLE = "jobs"
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# Longer than nginx's 60 s proxy timeout: a host leaving the group finishes what it serves.
DEREGISTRATION_DELAY_SECONDS = 70
# Time a new host gets to boot, run cloud-init and pass its first health checks.
HEALTH_CHECK_GRACE_SECONDS = 300
CPU_TARGET_PERCENT = 60
UNHEALTHY_MINUTES = 15


@dataclass(frozen=True)
class GroupDependencies:
    """What the load balancer stands on: the network, the origin certificate, Cloudflare's ranges, a bucket, a topic."""

    network: Network
    certificate: OriginCertificate
    # Who may reach the load balancer on 443 while the CDN proxies (Cloudflare's published IPv4 ranges).
    cloudflare_ipv4: pulumi.Input[Sequence[str]]
    # A bucket of the stack's for Cloudflare's origin-pull CA bundle, which the load balancer's trust store reads.
    files_bucket: pulumi.Input[str]
    # Pages: unhealthy targets, load balancer errors.
    alarm_topic_arn: pulumi.Input[str]


@dataclass(frozen=True)
class HostLaunch:
    """What every host boots with: the ProxyHost's building blocks."""

    ami: pulumi.Input[str]
    instance_type: str
    root_volume_gb: int
    instance_profile_name: pulumi.Input[str]
    # The hosts' security group; it must admit 443 from `HostGroup.security_group_id` only.
    security_group_id: pulumi.Input[str]
    # Base64 cloud-init for the web hosts (no timers) and for the one jobs host (with them).
    user_data: pulumi.Input[str]
    jobs_user_data: pulumi.Input[str]
    # What must exist before a host boots (the parameters and files cloud-init fetches, the role).
    depends_on: tuple[pulumi.Resource, ...] = ()


class HostGroup(LeanComponent):
    load_balancer_dns_name: pulumi.Output[str]
    # The load balancer's DNS name once `launch` has its hosts healthy behind it: what Cloudflare
    # should point at, so DNS moves only when the hosts serve.
    origin: pulumi.Output[str]
    load_balancer_arn_suffix: pulumi.Output[str]
    # The load balancer's security group: the one source the hosts admit.
    security_group_id: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    web_group_name: pulumi.Output[str]
    jobs_group_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: HostsArgs,
        *,
        stack: str,
        dependencies: GroupDependencies,
        health_path: str,
        cdn_proxied: bool = True,
        thresholds: AlertThresholds | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts)
        if not args.scaled:
            raise ValueError("HostGroup needs hosts.count > 1 or hosts.autoscale; one host is a ProxyHost")
        self.args, self.stack, self.network = args, stack, dependencies.network
        self.cdn_proxied = cdn_proxied
        self.thresholds = thresholds or AlertThresholds()
        self.topic_arn = dependencies.alarm_topic_arn
        self.security_group = self._create_security_group(dependencies.cloudflare_ipv4)
        self.target_group = self._create_target_group(health_path)
        self.load_balancer = self._create_load_balancer()
        self._create_listener(dependencies.certificate, dependencies.files_bucket)
        self._create_load_balancer_alarm()
        self.web_group: aws.autoscaling.Group | None = None
        self.jobs_group: aws.autoscaling.Group | None = None

        self.security_group_id = self.security_group.id
        self.target_group_arn = self.target_group.arn
        self.load_balancer_dns_name = self.load_balancer.dns_name
        self.load_balancer_arn_suffix = self.load_balancer.arn_suffix
        self.web_group_name = self.jobs_group_name = pulumi.Output.from_input("")
        self.origin = self.load_balancer_dns_name

    def _create_load_balancer(self) -> aws.lb.LoadBalancer:
        return aws.lb.LoadBalancer(
            self.child_name("lb"),
            load_balancer_type="application",
            internal=False,
            security_groups=[self.security_group.id],
            subnets=self.network.public_subnet_ids,
            # Requests with header names the ALB cannot parse never reach nginx.
            drop_invalid_header_fields=True,
            # The default, pinned: with the CDN off, nginx takes the client's address from the last
            # X-Forwarded-For entry, the one the load balancer appends ("preserve" would leave the
            # client's own header, "remove" nothing). With the CDN on it uses CF-Connecting-IP.
            xff_header_processing_mode="append",
            # Below nginx's 65 s keepalive, so the ALB never reuses a connection nginx just closed.
            idle_timeout=60,
            tags=self.named_tags(f"{stack_prefix(self.stack)}-hosts"),
            opts=self.child_opts(),
        )

    # ------------------------------------------------------------------ the front

    def _create_security_group(self, cloudflare_ipv4: pulumi.Input[Sequence[str]]) -> aws.ec2.SecurityGroup:
        sources = cloudflare_ipv4 if self.cdn_proxied else ["0.0.0.0/0"]
        # No inline egress: the one way out, 443 to the hosts' group, is a rule added by `launch`.
        return aws.ec2.SecurityGroup(
            self.child_name("lb-sg"),
            name=f"{stack_prefix(self.stack)}-lb",
            description="Load balancer: HTTPS from Cloudflare only; out only to the hosts",
            vpc_id=self.network.vpc_id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description="HTTPS from Cloudflare" if self.cdn_proxied else "HTTPS from anywhere (CDN off)",
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=sources,
                )
            ],
            tags=self.named_tags(f"{stack_prefix(self.stack)}-lb"),
            opts=self.child_opts(),
        )

    def _create_target_group(self, health_path: str) -> aws.lb.TargetGroup:
        return aws.lb.TargetGroup(
            self.child_name("targets"),
            # nginx on each host terminates TLS again with the origin certificate; the ALB does not
            # check a target's certificate, so the one the host already has serves.
            port=443,
            protocol="HTTPS",
            target_type="instance",
            vpc_id=self.network.vpc_id,
            deregistration_delay=DEREGISTRATION_DELAY_SECONDS,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                protocol="HTTPS",
                port="traffic-port",
                path=health_path,
                matcher="200",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags=self.tags,
            opts=self.child_opts(),
        )

    def _create_listener(self, certificate: OriginCertificate, files_bucket: pulumi.Input[str]) -> None:
        imported = aws.acm.Certificate(
            self.child_name("cert"),
            certificate_body=certificate.certificate_pem,
            private_key=certificate.private_key_pem,
            tags=self.tags,
            opts=self.child_opts(),
        )
        mutual_tls = None
        if self.cdn_proxied:
            # Authenticated Origin Pulls at the load balancer: only Cloudflare's client certificate gets in.
            bundle = aws.s3.BucketObjectv2(
                self.child_name("origin-pull-ca"),
                bucket=files_bucket,
                key="trust/cloudflare-origin-pull-ca.pem",
                content=ORIGIN_PULL_CA_PEM,
                content_type="application/x-pem-file",
                server_side_encryption="AES256",
                tags=self.tags,
                opts=self.child_opts(),
            )
            trust_store = aws.lb.TrustStore(
                self.child_name("origin-pulls"),
                ca_certificates_bundle_s3_bucket=bundle.bucket,
                ca_certificates_bundle_s3_key=bundle.key,
                tags=self.tags,
                opts=self.child_opts(),
            )
            mutual_tls = aws.lb.ListenerMutualAuthenticationArgs(mode="verify", trust_store_arn=trust_store.arn)
        aws.lb.Listener(
            self.child_name("https"),
            load_balancer_arn=self.load_balancer.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=imported.arn,
            mutual_authentication=mutual_tls,
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=self.target_group.arn)],
            tags=self.tags,
            opts=self.child_opts(),
        )

    # ------------------------------------------------------------------ the hosts

    def launch(self, launch: HostLaunch) -> None:
        """The hosts: one launch template and Auto Scaling group per member kind, and their alarm."""
        aws.vpc.SecurityGroupEgressRule(
            self.child_name("to-hosts"),
            security_group_id=self.security_group.id,
            referenced_security_group_id=launch.security_group_id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS to the hosts only",
            tags=self.tags,
            opts=self.child_opts(),
        )
        self.web_group = web = self._create_group(WEB_ROLE, launch, launch.user_data)
        self.jobs_group = jobs = self._create_group(JOBS_ROLE, launch, launch.jobs_user_data)
        self.web_group_name = web.name
        self.jobs_group_name = jobs.name
        self.origin = pulumi.Output.all(self.load_balancer.dns_name, web.name, jobs.name).apply(lambda v: str(v[0]))
        self._create_unhealthy_alarm()
        self.register_outputs(
            {
                "load_balancer_dns_name": self.load_balancer_dns_name,
                "web_group_name": self.web_group_name,
                "jobs_group_name": self.jobs_group_name,
            }
        )

    def _create_launch_template(
        self, role: str, launch: HostLaunch, user_data: pulumi.Input[str]
    ) -> aws.ec2.LaunchTemplate:
        host_tags = {**default_tags(self.stack), **self.named_tags(f"{stack_prefix(self.stack)}-host"), "Role": role}
        return aws.ec2.LaunchTemplate(
            self.child_name(f"{role}-template"),
            name_prefix=f"{stack_prefix(self.stack)}-{role}-",
            description=f"leanstack {self.stack} {role} host: nginx in front of the app",
            image_id=launch.ami,
            instance_type=launch.instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(name=launch.instance_profile_name),
            # No key pair: there is no SSH. Shell access is SSM Session Manager.
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_tokens="required", http_endpoint="enabled", http_put_response_hop_limit=1
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_type="gp3",
                        volume_size=launch.root_volume_gb,
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            network_interfaces=[
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                    device_index=0,
                    # The way out to SSM, S3 and the package mirrors without a NAT gateway. Nothing
                    # comes in by it: the security group admits the load balancer only.
                    associate_public_ip_address="true",
                    security_groups=[launch.security_group_id],
                    delete_on_termination="true",
                )
            ],
            user_data=user_data,
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=host_tags)
                for kind in ("instance", "volume")
            ],
            # New hosts always boot the newest version: the group follows the template's latest version.
            update_default_version=True,
            tags=self.tags,
            opts=self.child_opts(),
        )

    def _create_group(self, role: str, launch: HostLaunch, user_data: pulumi.Input[str]) -> aws.autoscaling.Group:
        template = self._create_launch_template(role, launch, user_data)
        desired: int | None
        if role == JOBS_ROLE:
            low = high = desired = 1
            # Terminate, then launch: never two hosts running the timers at once.
            healthy = (0, 100)
        else:
            autoscale = self.args.autoscale
            low, high = (autoscale.min - 1, autoscale.max - 1) if autoscale.max else (self.args.count - 1,) * 2
            desired = None if autoscale.max else self.args.count - 1
            # Launch, then terminate: the web hosts keep their full count during a refresh.
            healthy = (100, 200)
        group = aws.autoscaling.Group(
            self.child_name(role),
            name_prefix=f"{stack_prefix(self.stack)}-{role}-",
            min_size=low,
            max_size=high,
            # Autoscaled: no desired capacity here, or every `pulumi up` would undo the scaling policy.
            desired_capacity=desired,
            vpc_zone_identifiers=self.network.public_subnet_ids,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            target_group_arns=[self.target_group.arn],
            # The load balancer's health check decides: a host whose app does not answer is replaced.
            health_check_type="ELB",
            health_check_grace_period=HEALTH_CHECK_GRACE_SECONDS,
            # `pulumi up` waits until this many hosts pass the health check, so nothing that follows
            # (Cloudflare's DNS) points at the load balancer before it has hosts to send users to.
            wait_for_elb_capacity=low,
            instance_maintenance_policy=aws.autoscaling.GroupInstanceMaintenancePolicyArgs(
                min_healthy_percentage=healthy[0], max_healthy_percentage=healthy[1]
            ),
            # A new launch template version (AMI, type, user data) replaces the hosts one at a time.
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling",
                preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                    min_healthy_percentage=healthy[0],
                    max_healthy_percentage=healthy[1],
                    instance_warmup=str(HEALTH_CHECK_GRACE_SECONDS),
                ),
            ),
            tags=[
                aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=False)
                for key, value in {**self.named_tags(f"{stack_prefix(self.stack)}-{role}"), "Role": role}.items()
            ],
            opts=self.child_opts(depends_on=list(launch.depends_on)),
        )
        if role == WEB_ROLE and self.args.autoscale.max:
            self._create_cpu_policy(group)
        return group

    def _create_cpu_policy(self, group: aws.autoscaling.Group) -> aws.autoscaling.Policy:
        """Autoscaled: the web group tracks its average CPU."""
        return aws.autoscaling.Policy(
            self.child_name("web-cpu"),
            autoscaling_group_name=group.name,
            policy_type="TargetTrackingScaling",
            target_tracking_configuration=aws.autoscaling.PolicyTargetTrackingConfigurationArgs(
                predefined_metric_specification=aws.autoscaling.PolicyTargetTrackingConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="ASGAverageCPUUtilization"
                ),
                target_value=CPU_TARGET_PERCENT,
            ),
            opts=self.child_opts(),
        )

    # ------------------------------------------------------------------ alarms

    def _alarm(self, suffix: str, description: str, **metric: Any) -> None:
        metric_alarm(
            self, suffix, description, name=f"{stack_prefix(self.stack)}-{suffix}", notify=self.topic_arn, **metric
        )

    def _create_unhealthy_alarm(self) -> None:
        self._alarm(
            "unhealthy-targets",
            f"Less capacity for users: a host has failed the load balancer's health check for {UNHEALTHY_MINUTES} "
            "minutes and the Auto Scaling group has not replaced it. First check: EC2 console > Target groups > "
            "Targets (the reason per host), then the host's app and nginx over SSM. Runbook: #unhealthy-targets",
            namespace="AWS/ApplicationELB",
            metric_name="UnHealthyHostCount",
            dimensions={
                "TargetGroup": self.target_group.arn_suffix,
                "LoadBalancer": self.load_balancer.arn_suffix,
            },
            statistic="Maximum",
            period=60,
            evaluation_periods=UNHEALTHY_MINUTES,
            datapoints_to_alarm=UNHEALTHY_MINUTES,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            treat_missing_data="notBreaching",
        )

    def _create_load_balancer_alarm(self) -> None:
        t = self.thresholds

        def metric(query_id: str, metric_name: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return count_query(
                query_id, "AWS/ApplicationELB", metric_name, {"LoadBalancer": self.load_balancer.arn_suffix}
            )

        self._alarm(
            "load-balancer-errors",
            f"Errors up for users: over {t.error_rate_percent}% of requests got a 5xx from the load balancer itself "
            f"for 5 minutes (counted in minutes with at least {t.min_requests_per_minute} requests): no healthy "
            "host, or hosts refusing or timing out. First check: the target group's healthy host count and the "
            "hosts' nginx. Runbook: #load-balancer-errors",
            **error_share_alarm(
                metric("errors", "HTTPCode_ELB_5XX_Count"),
                metric("requests", "RequestCount"),
                label="Share of requests answered with a 5xx by the load balancer (%)",
                min_requests_per_minute=t.min_requests_per_minute,
                threshold_percent=t.error_rate_percent,
            ),
        )

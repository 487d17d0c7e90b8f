"""UptimeCheck: "is the site up?" asked the way users ask it, from outside, through the CDN.

Builds a Route 53 health check that requests `https://<first hostname><health path>` on port
443 every 30 seconds from Route 53's checkers around the world (so through Cloudflare, the
path real users take: DNS, CDN, TLS, nginx and the app all have to work), and a CloudWatch
alarm that pages when the check has been failing for `site_down_minutes` minutes in a row.

Route 53 publishes health-check metrics only in us-east-1, so the alarm lives there: with
the stack's provider when the stack is in us-east-1, otherwise with the Alerts component's
us-east-1 provider and its us-east-1 topic (which has the same email subscribed).

Cost: billed are one health check on a non-AWS endpoint (Cloudflare) with its HTTPS option
(Route 53 prices optional features on non-AWS endpoints) and one alarm; priced in
`python -m leanstack plan`. The 10-second "fast" interval would be billed as one more option and
tells a small team nothing the 30-second one does not.

Replacement: changing the hostname, path or interval replaces the health check (and so the
alarm's dimension); history in CloudWatch starts again. Nothing stateful.

Example:
    UptimeCheck("uptime", UptimeCheckArgs(hostname="example.com", health_path="/healthz"),
                stack="prod", topic_arn=alerts.global_topic_arn, provider=alerts.global_provider)
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from leanstack.components.alarms import metric_alarm
from leanstack.components.base import LeanComponent
from leanstack.config import UptimeCheckArgs
from leanstack.config.naming import stack_prefix

# Standard interval (30 s) and three failures: a checker marks the site down after ~90 s,
# and Route 53 reports it unhealthy once most checkers agree.
REQUEST_INTERVAL_SECONDS = 30
FAILURE_THRESHOLD = 3


class UptimeCheck(LeanComponent):
    health_check_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: UptimeCheckArgs,
        *,
        stack: str,
        topic_arn: pulumi.Input[str],
        provider: aws.Provider | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts)
        self.args, self.stack = args, stack
        self.url = f"https://{args.hostname}{args.health_path}"
        # In us-east-1 when a provider is given: Route 53's health check metrics live only there.
        self._extra = {"provider": provider} if provider is not None else {}
        self.check = self._create_check()
        self._create_site_down_alarm(topic_arn, in_us_east_1=provider is not None)
        self.health_check_id = self.check.id
        self.register_outputs({"health_check_id": self.health_check_id})

    def _create_check(self) -> aws.route53.HealthCheck:
        return aws.route53.HealthCheck(
            self.child_name("check"),
            type="HTTPS",
            fqdn=self.args.hostname,
            port=443,
            resource_path=self.args.health_path,
            # SNI is required: Cloudflare serves many sites on the same addresses.
            enable_sni=True,
            request_interval=REQUEST_INTERVAL_SECONDS,
            failure_threshold=FAILURE_THRESHOLD,
            measure_latency=False,
            tags=self.named_tags(f"{stack_prefix(self.stack)}-site"),
            opts=self.child_opts(**self._extra),
        )

    def _create_site_down_alarm(self, topic_arn: pulumi.Input[str], in_us_east_1: bool) -> None:
        us_east_1 = " (this alarm lives in us-east-1, where Route 53 metrics are, and emails the same address)"
        metric_alarm(
            self,
            "site-down",
            (
                f"Site down for users: {self.url} has failed from Route 53's checkers around the world for "
                f"{self.args.site_down_minutes} minutes. First check: open the URL yourself; a Cloudflare error page "
                "means the origin is unreachable (host, nginx, security group), a 502/504 from nginx means the app "
                "is down (on the host via SSM: `sudo leanstack-app status`, then "
                f"`sudo journalctl -u 'leanstack-app@*' -n 50 --no-pager`){us_east_1 if in_us_east_1 else ''}. "
                "Runbook: #site-down"
            ),
            name=f"{stack_prefix(self.stack)}-site-down",
            notify=topic_arn,
            namespace="AWS/Route53",
            metric_name="HealthCheckStatus",
            dimensions={"HealthCheckId": self.check.id},
            statistic="Minimum",
            period=60,
            evaluation_periods=self.args.site_down_minutes,
            datapoints_to_alarm=self.args.site_down_minutes,
            comparison_operator="LessThanThreshold",
            threshold=1,
            # No data from Route 53 means the check itself is gone: say so rather than stay quiet.
            treat_missing_data="breaching",
            opts=self.child_opts(**self._extra),
        )

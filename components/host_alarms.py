"""The host's watch: nginx's access log in CloudWatch, the metrics filtered from it, and its alarms.

Builders of ProxyHost's alarm children (parented to the ProxyHost), each made with the one alarm
helper (`components.alarms.metric_alarm`): the instance's status (single host only), errors up and
slow for users (from the access log, or the load balancer scaled out), failed jobs, crash-looping
workers and the backup alarms. They stay with the ProxyHost whether it runs one host or a group,
so growing and shrinking keeps their URNs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from leanstack.components.alarms import metric_alarm
from leanstack.components.base import LeanComponent
from leanstack.components.error_share import count_query, error_share_alarm
from leanstack.components.host_inputs import HostSite
from leanstack.config.naming import stack_prefix
from leanstack.host.agent import contract

__all__ = ["HostAlarms", "access_log_metrics"]


def access_log_metrics(stack: str) -> dict[str, str]:
    """The metrics the access log's filters publish, by role: 5xx answers, user requests, response time.

    Each name carries the stack: a metric filter cannot add a constant dimension.
    """
    return {
        "errors": f"Http5xxResponses-{stack}",
        "requests": f"HttpRequests-{stack}",
        "latency": f"RequestTime-{stack}",
    }


@dataclass(frozen=True)
class HostAlarms:
    """Builds the host's log group, metric filters and alarms as children of `owner`."""

    owner: LeanComponent
    stack: str
    region: str
    site: HostSite
    # Pages (site down, data at risk now) and tickets (working hours).
    page: pulumi.Input[str]
    ticket: pulumi.Input[str]

    @property
    def namespace(self) -> str:
        return contract.metrics_namespace(self.stack)

    def _alarm(self, suffix: str, description: str, **metric: Any) -> aws.cloudwatch.MetricAlarm:
        return metric_alarm(self.owner, suffix, description, name=f"{stack_prefix(self.stack)}-{suffix}", **metric)

    def create_access_log(self) -> aws.cloudwatch.LogGroup:
        """nginx's JSON access log (`access_log_group`, transformable), shipped by the CloudWatch agent."""
        owner = self.owner
        return aws.cloudwatch.LogGroup(
            owner.child_name("access-log"),
            **owner.transformed(
                "access_log_group",
                dict(
                    name=contract.access_log_group(self.stack),
                    # Enough to debug last month's incident; logs are billed per GB stored.
                    retention_in_days=30,
                    tags=owner.tags,
                    opts=owner.child_opts(),
                ),
            ),
        )

    def create_instance_alarms(self, instance: aws.ec2.Instance) -> None:
        """The single host's: EC2 recovers it on a failed system check, and pages when it stays broken."""
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
        self._alarm(
            "still-broken",
            "Site down for users: the host has failed a status check for 15 minutes and automatic "
            "recovery did not fix it. First check: EC2 console > the host > Status checks and System log; "
            "if needed, replace the instance as the runbook says. Runbook: #host-still-broken",
            notify=self.page,
            namespace="AWS/EC2",
            metric_name="StatusCheckFailed",
            dimensions={"InstanceId": instance.id},
            statistic="Maximum",
            period=300,
            evaluation_periods=3,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
        )

    def create_error_rate_alarm(self, access_log: aws.cloudwatch.LogGroup) -> None:
        """Errors up: the share of user requests answered with a 5xx, from nginx's access log."""
        t, owner = self.site.thresholds, self.owner
        # Health checks are left out of both counts: they are the site-down alarm's job, and
        # Route 53's checkers (some 16 requests a minute) would otherwise dilute the share.
        user_request = f'$.uri != "{self.site.app.health_path}"'
        names = access_log_metrics(self.stack)
        metrics = {
            "errors": (names["errors"], f"{{ ($.status >= 500) && ({user_request}) }}"),
            "requests": (names["requests"], f"{{ ($.status > 0) && ({user_request}) }}"),
        }
        for query_id, (metric_name, pattern) in metrics.items():
            aws.cloudwatch.LogMetricFilter(
                owner.child_name(f"{query_id}-filter"),
                name=f"{stack_prefix(self.stack)}-{query_id}",
                log_group_name=access_log.name,
                pattern=pattern,
                metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                    # The metric name carries the stack: filters cannot add a constant dimension.
                    name=metric_name,
                    namespace=self.namespace,
                    value="1",
                    unit="Count",
                ),
                opts=owner.child_opts(),
            )

        def metric(query_id: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return count_query(query_id, self.namespace, metrics[query_id][0])

        self._alarm(
            "error-rate",
            f"Errors up for users: over {t.error_rate_percent}% of requests got a 5xx from the site for 5 minutes "
            f"(counted in minutes with at least {t.min_requests_per_minute} requests). First check: the app's own "
            "log on the host (SSM session) and the newest 5xx lines in CloudWatch Logs "
            f"{contract.access_log_group(self.stack)}; if a deploy just went out, roll it back. Runbook: #error-rate",
            notify=self.page,
            **error_share_alarm(
                metric("errors"),
                metric("requests"),
                label="Share of user requests answered with a 5xx (%)",
                min_requests_per_minute=t.min_requests_per_minute,
                threshold_percent=t.error_rate_percent,
            ),
        )

    def create_latency_alarm(
        self, access_log: aws.cloudwatch.LogGroup, load_balancer_arn_suffix: pulumi.Output[str] | None
    ) -> None:
        """Slow for users: the 95th percentile of response time, from nginx's log or the load balancer."""
        limit_ms = self.site.thresholds.latency_p95_ms
        latency_metric = access_log_metrics(self.stack)["latency"]
        source: dict[str, Any]
        # Scaled out, hosts ship the same log, so the filter stays (growing deletes nothing); the alarm then
        # reads the load balancer, which also counts time spent between it and the host. nginx logs
        # request_time (seconds, millisecond resolution) as a JSON number on every line; the filter
        # publishes each user request's value, so CloudWatch can take a percentile of them.
        aws.cloudwatch.LogMetricFilter(
            self.owner.child_name("latency-filter"),
            name=f"{stack_prefix(self.stack)}-latency",
            log_group_name=access_log.name,
            pattern=f'{{ ($.request_time >= 0) && ($.uri != "{self.site.app.health_path}") }}',
            metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                name=latency_metric,
                namespace=self.namespace,
                value="$.request_time",
                unit="Seconds",
            ),
            opts=self.owner.child_opts(),
        )
        if load_balancer_arn_suffix is None:
            source = {"namespace": self.namespace, "metric_name": latency_metric}
            where = f"nginx's request_time in /leanstack/{self.stack}/nginx/access"
        else:
            source = {
                "namespace": "AWS/ApplicationELB",
                "metric_name": "TargetResponseTime",
                "dimensions": {"LoadBalancer": load_balancer_arn_suffix},
            }
            where = "the load balancer's TargetResponseTime"
        self._alarm(
            "latency",
            f"Slow for users: the 95th percentile of response time has been over {limit_ms} ms for 5 minutes "
            f"({where}). First check: the dashboard leanstack-{self.stack} (database CPU and connections next to "
            "it), the slow-query log in CloudWatch Logs, and whether a deploy just went out. Runbook: #latency",
            notify=self.page,
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

    def create_job_failed_alarm(self) -> None:
        # Each run of an app.jobs job publishes JobFailure 0 or 1 (leanstack-app job); any 1 files one ticket.
        self._alarm(
            "job-failed",
            "A scheduled job (app.jobs) failed: whatever it does (reports, cleanups, billing) did not happen. "
            "First check: `python -m leanstack logs <stack> --filter job-` and the per-job JobFailure metric; "
            "rerun with `sudo leanstack-app job NAME` on the jobs host. Runbook: #job-failed",
            notify=self.ticket,
            namespace=self.namespace,
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

    def create_crash_loop_alarm(self) -> None:
        # A ticket, not a page: the site serves, and with the cache on noeviction the queued jobs wait for the
        # fix instead of being lost; a worker crashing for ten minutes is a working-hours bug, not an outage.
        self._alarm(
            "worker-crash-loop",
            "Data waits: a worker (app.processes) keeps exiting with an error, so queued jobs (emails, exports, "
            "webhooks) are not processed; the web app still serves. First check: `python -m leanstack logs <stack> "
            "--filter worker-` and the per-process ProcessRestarts metric; a bad deploy: roll it back. "
            "Runbook: #worker-crash-loop",
            notify=self.ticket,
            namespace=self.namespace,
            metric_name=contract.PROCESS_RESTARTS_METRIC,
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

    def create_backup_alarms(self) -> None:
        """Backup stale (a page), restore drill stale and restore drill failed (tickets)."""
        dimensions = {"Stack": self.stack}
        # N hourly periods (26 by default) with no successful backup, missing data counting as
        # breaching: a dead host or a broken timer alarms as surely as a failing backup.
        hours = self.site.thresholds.backup_stale_hours
        self._alarm(
            "backup-stale",
            f"Data at risk: no successful off-site backup in {hours} hours, so a disaster now would lose more "
            "than the recovery point allows. First check: `systemctl status leanstack-backup` on the host (SSM "
            "session) and its journal. Runbook: #backup-stale",
            notify=self.page,
            namespace=self.namespace,
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
        self._alarm(
            "restore-drill-stale",
            "Data at risk: no successful restore drill in 35 days, so nobody knows the backups restore. "
            "First check: `sudo journalctl -u leanstack-restore-drill -n 50 --no-pager` on the host; run "
            "`sudo systemctl start leanstack-restore-drill`. Runbook: #restore-drill-stale",
            notify=self.ticket,
            namespace=self.namespace,
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
            namespace=self.namespace,
            metric_name="RestoreDrillFailure",
            dimensions=dimensions,
            statistic="Sum",
            period=86400,
            evaluation_periods=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            treat_missing_data="notBreaching",
            alarm_actions=[self.ticket],
        )

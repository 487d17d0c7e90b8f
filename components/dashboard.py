"""Dashboard: one CloudWatch dashboard per stack, the page to open when an alarm fires.

Builds `leanstack-<stack>` with, top to bottom: user requests and 5xx answers a minute (from
nginx's access log), the 95th percentile of response time (the same source as the latency
alarm: nginx's request time on one host, the load balancer's TargetResponseTime when scaled
out), the database's CPU, connections (with the connections alarm's threshold drawn) and
free storage, the hours since the last good off-site backup and the days since the last good
restore drill, and the app's container starts (a deploy or a restart starts new containers,
each its own log stream: the deploy markers).

Cost: billed monthly per dashboard beyond the account's first three (CloudWatch's free tier
counts dashboards of up to 50 metrics); leanstack prices it as billed (see `python -m leanstack plan`).

Replacement: none that loses anything; the body is rewritten in place on every change.

Example:
    Dashboard("dashboard", DashboardArgs(...), stack="prod", region="eu-west-1")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from leanstack.components.base import LeanComponent
from leanstack.config.naming import stack_prefix

__all__ = ["Dashboard", "DashboardSources"]

# One row of the grid is 24 units wide.
HALF = 12
HEIGHT = 6


@dataclass(frozen=True)
class DashboardSources:
    """Where each widget reads from (names the other components own)."""

    metrics_namespace: str
    requests_metric: str
    errors_metric: str
    latency_metric: str
    database_identifier: pulumi.Input[str]
    connections_threshold: int
    app_log_group: str
    # Scaled out: the load balancer's ARN suffix, whose TargetResponseTime is the p95 source.
    load_balancer_arn_suffix: pulumi.Input[str] | None = None


def _metric_widget(title: str, metrics: list[list[Any]], region: str, *, stat: str = "Sum",
                   annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    properties: dict[str, Any] = {
        "title": title,
        "region": region,
        "view": "timeSeries",
        "stat": stat,
        "period": 60,
        "metrics": metrics,
    }
    if annotations:
        properties["annotations"] = {"horizontal": annotations}
    return {"type": "metric", "width": HALF, "height": HEIGHT, "properties": properties}


def dashboard_body(stack: str, region: str, sources: DashboardSources, database_id: str,
                   load_balancer: str | None) -> str:  # fmt: skip
    """The dashboard's JSON body, once the database's identifier (and load balancer) are known."""
    ns = sources.metrics_namespace
    if load_balancer is None:
        latency = [[ns, sources.latency_metric, {"stat": "p95", "label": "p95 (s), nginx request_time"}]]
    else:
        latency = [
            ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", load_balancer,
             {"stat": "p95", "label": "p95 (s), TargetResponseTime"}],
        ]  # fmt: skip

    def db(metric: str) -> list[list[Any]]:
        return [["AWS/RDS", metric, "DBInstanceIdentifier", database_id]]

    widgets = [
        _metric_widget(
            "User requests and 5xx a minute",
            [[ns, sources.requests_metric, {"label": "requests"}], [ns, sources.errors_metric, {"label": "5xx"}]],
            region,
        ),
        _metric_widget("Response time, 95th percentile (s)", latency, region, stat="p95"),
        _metric_widget("Database CPU (%)", db("CPUUtilization"), region, stat="Maximum"),
        _metric_widget(
            "Database connections",
            db("DatabaseConnections"),
            region,
            stat="Maximum",
            annotations=[{"label": "connections alarm", "value": sources.connections_threshold}],
        ),
        _metric_widget("Database free storage (bytes)", db("FreeStorageSpace"), region, stat="Minimum"),
        _metric_widget(
            "Off-site backups (successes an hour) and restore drill age (days)",
            [
                [ns, "BackupSuccess", "Stack", stack, {"label": "backups", "period": 3600}],
                [
                    ns,
                    "RestoreDrillAgeDays",
                    "Stack",
                    stack,
                    {"label": "drill age (days)", "stat": "Maximum", "period": 86400},
                ],
            ],
            region,
        ),
        {
            "type": "log",
            "width": 24,
            "height": HEIGHT,
            "properties": {
                "title": "Deploys: container starts (each deploy or restart starts new containers, one stream each)",
                "region": region,
                "view": "table",
                "query": f"SOURCE '{sources.app_log_group}' | stats min(@timestamp) as started by @logStream "
                "| sort started desc | limit 20",
            },
        },
    ]
    x = y = 0
    for widget in widgets:
        if x + widget["width"] > 24:
            x, y = 0, y + HEIGHT
        widget["x"], widget["y"] = x, y
        x += widget["width"]
    return json.dumps({"widgets": widgets}, sort_keys=True)


class Dashboard(LeanComponent):
    name: str

    def __init__(
        self,
        name: str,
        sources: DashboardSources,
        *,
        stack: str,
        region: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts)
        self.name = stack_prefix(stack)
        body = pulumi.Output.all(sources.database_identifier, sources.load_balancer_arn_suffix).apply(
            lambda ids: dashboard_body(stack, region, sources, str(ids[0]), None if ids[1] is None else str(ids[1]))
        )
        self.dashboard = aws.cloudwatch.Dashboard(
            self.child_name("dashboard"),
            dashboard_name=self.name,
            dashboard_body=body,
            opts=self.child_opts(),
        )
        self.register_outputs({"name": self.name})

"""The "errors up" alarm shape shared by the single host (nginx's log) and the load balancer.

Both alarm on the share of requests answered with a 5xx, over five one-minute periods, counted
only in minutes with enough requests that one failed request at 3 a.m. does not page anyone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws


def count_query(
    query_id: str, namespace: str, metric_name: str, dimensions: Mapping[str, pulumi.Input[str]] | None = None
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    """A per-minute Sum of one metric, as an input of the share expression."""
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id,
        return_data=False,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=namespace,
            metric_name=metric_name,
            dimensions=dict(dimensions) if dimensions else None,
            period=60,
            stat="Sum",
        ),
    )


def error_share_alarm(
    errors: aws.cloudwatch.MetricAlarmMetricQueryArgs,
    requests: aws.cloudwatch.MetricAlarmMetricQueryArgs,
    *,
    label: str,
    min_requests_per_minute: int,
    threshold_percent: float,
) -> dict[str, Any]:
    """The MetricAlarm arguments: 100 * errors / requests above the threshold for 5 minutes.

    `errors` and `requests` must have the ids "errors" and "requests".
    """
    return {
        "metric_queries": [
            errors,
            requests,
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="share",
                label=label,
                # A minute without 5xx has no error datapoint: FILL makes it 0, not missing.
                expression=f"IF(requests >= {min_requests_per_minute}, 100 * FILL(errors, 0) / requests, 0)",
                return_data=True,
            ),
        ],
        "evaluation_periods": 5,
        "datapoints_to_alarm": 5,
        "comparison_operator": "GreaterThanThreshold",
        "threshold": threshold_percent,
        # No traffic is not an error; the site-down check covers a silent site.
        "treat_missing_data": "notBreaching",
    }

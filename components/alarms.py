"""The one way a leanstack component makes a CloudWatch alarm: named, described, tagged, routed.

Every component's alarms (the host's, the host group's, the database's, the uptime check's, the
uploads' and the AWS Backup restore test's) are this one call with their metric: the name AWS shows,
the description that tells whoever is paged what broke and what to check first, the component's
tags, and who hears of it.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from leanstack.components.base import LeanComponent

__all__ = ["metric_alarm"]


def metric_alarm(
    owner: LeanComponent,
    suffix: str,
    description: str,
    *,
    name: str,
    notify: pulumi.Input[str] | None = None,
    opts: pulumi.ResourceOptions | None = None,
    **metric: Any,
) -> aws.cloudwatch.MetricAlarm:
    """An alarm child of `owner` (`<owner>-<suffix>`) called `name` in AWS.

    With `notify`, the topic hears when it fires and again when it clears; without it, pass
    `alarm_actions` (and `ok_actions`) in `metric` yourself (an EC2 recover action, a ticket with no
    all-clear). `metric` is the rest of MetricAlarm's arguments: what it watches and when it fires.
    """
    routing: dict[str, Any] = {} if notify is None else {"alarm_actions": [notify], "ok_actions": [notify]}
    return aws.cloudwatch.MetricAlarm(
        owner.child_name(suffix),
        name=name,
        alarm_description=description,
        tags=owner.tags,
        opts=opts or owner.child_opts(),
        **routing,
        **metric,
    )

"""Alerts: the stack's one place for alarms.

Builds one SNS topic and an email subscription to it. Every alarm in the stack notifies
this topic, so there is one address to watch and one switch to mute.

The topic is not encrypted with KMS on purpose: CloudWatch alarms cannot publish to a
topic encrypted with the AWS-managed SNS key, a customer-managed key costs $1/month plus
a key policy to get right, and alarm messages carry alarm names and descriptions, not data.

Cost: $0/month at a small team's alarm volume (SNS email: first 1,000 free, then $2 per 100,000).

Example:
    alerts = Alerts("alerts", AlertsArgs(email="ops@example.com"), stack="prod")
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.base import LeanComponent


@dataclass(frozen=True)
class AlertsArgs:
    # The address that receives every alarm; AWS emails it a confirmation link first.
    email: str


class Alerts(LeanComponent):
    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AlertsArgs, *, stack: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        topic = aws.sns.Topic(
            self.child_name("topic"),
            name=f"leanstack-{stack}-alerts",
            tags=self.tags,
            opts=self.child_opts(),
        )
        aws.sns.TopicSubscription(
            self.child_name("email"),
            topic=topic.arn,
            protocol="email",
            endpoint=args.email,
            opts=self.child_opts(),
        )
        self.topic_arn = topic.arn
        self.register_outputs({"topic_arn": self.topic_arn})

"""Alerts: the stack's one place for alarms.

Builds one SNS topic and an email subscription to it. Every alarm in the stack notifies
this topic, so there is one address to watch and one switch to mute.

One exception, forced by AWS: Route 53 publishes health-check metrics only in us-east-1, and
a CloudWatch alarm can only notify a topic in its own region. When the stack lives elsewhere
and something asks for `global_topic_arn` (the site-down alarm of an UptimeCheck), this
component builds a second topic in us-east-1 (through its own provider) with the same email
subscribed, so that alarm still reaches the same inbox; nothing asks, nothing is built. In a
us-east-1 stack it is the one topic.

The topics are not encrypted with KMS on purpose: CloudWatch alarms cannot publish to a
topic encrypted with the AWS-managed SNS key, a customer-managed key costs $1/month plus
a key policy to get right, and alarm messages carry alarm names and descriptions, not data.

Cost: $0/month at a small team's alarm volume (SNS email: first 1,000 free, then $2 per 100,000).

Replacement: changing the stack's region replaces the topics (and AWS emails a new
confirmation link); changing the email replaces the subscription.

Example:
    alerts = Alerts("alerts", AlertsArgs(email="ops@example.com"), stack="prod", region="eu-west-1")
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from leanstack.components.base import LeanComponent
from leanstack.components.providers import aws_provider
from leanstack.config import AlertsArgs
from leanstack.config.naming import stack_prefix

# Where Route 53 publishes its health-check metrics, and so where their alarms must live.
GLOBAL_METRICS_REGION = "us-east-1"


class Alerts(LeanComponent):
    topic_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: AlertsArgs,
        *,
        stack: str,
        region: str = GLOBAL_METRICS_REGION,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts)
        self.email = args.email
        self.region = region
        self.stack = stack
        self.topic_arn = self._topic("", f"{stack_prefix(stack)}-alerts", None)
        # The us-east-1 topic and its provider, made on first use (see global_topic_arn).
        self._global: tuple[aws.Provider | None, pulumi.Output[str]] | None = None
        if region == GLOBAL_METRICS_REGION:
            self._global = (None, self.topic_arn)
        self.register_outputs({"topic_arn": self.topic_arn})

    @property
    def global_topic_arn(self) -> pulumi.Output[str]:
        """The topic an alarm in us-east-1 notifies; built (with its provider) the first time it is asked for."""
        return self._global_topic()[1]

    @property
    def global_provider(self) -> aws.Provider | None:
        """The provider for resources that must live in us-east-1 (None: the stack's own provider)."""
        return self._global_topic()[0]

    def _global_topic(self) -> tuple[aws.Provider | None, pulumi.Output[str]]:
        if self._global is None:
            provider = aws_provider(
                self.child_name(GLOBAL_METRICS_REGION),
                region=GLOBAL_METRICS_REGION,
                stack=self.stack,
                opts=self.child_opts(),
            )
            arn = self._topic(
                f"{GLOBAL_METRICS_REGION}-", f"{stack_prefix(self.stack)}-alerts-{GLOBAL_METRICS_REGION}", provider
            )
            self._global = (provider, arn)
        return self._global

    def _topic(self, prefix: str, topic_name: str, provider: aws.Provider | None) -> pulumi.Output[str]:
        def opts() -> pulumi.ResourceOptions:
            return self.child_opts(provider=provider) if provider is not None else self.child_opts()

        topic = aws.sns.Topic(self.child_name(f"{prefix}topic"), name=topic_name, tags=self.tags, opts=opts())
        aws.sns.TopicSubscription(
            self.child_name(f"{prefix}email"),
            topic=topic.arn,
            protocol="email",
            endpoint=self.email,
            opts=opts(),
        )
        return topic.arn

"""Alerts: the stack's one place for alarms, split into pages and tickets.

Builds two SNS topics, each with an email subscription. The page topic
(`leanstack-<stack>-alerts`, `topic_arn`) carries what needs someone now: site down, error
rate, latency, database storage low, connections near the class's limit, backup failed, the
host still broken. The ticket topic (`leanstack-<stack>-tickets`, `ticket_topic_arn`) carries
what can wait for working hours: the restore drill stale or failed, a failed job, files at
risk, a crash-looping worker (the budget emails the ticket address itself). Without
`ticket_email`, both reach `email`. With `slack`, an AWS Chatbot channel configuration
subscribes a Slack channel to the page topic (and a second configuration to the us-east-1
topic once that exists); Chatbot is free, and its API lives in a few
regions only, so the configuration is managed in us-west-2 (`CHATBOT_REGION`) whatever the
stack's region. The page topic keeps the name the one topic had, so an existing stack keeps
its confirmed subscription.

One exception, forced by AWS: Route 53 publishes health-check metrics only in us-east-1, and
a CloudWatch alarm can only notify a topic in its own region. When the stack lives elsewhere
and something asks for `global_topic_arn` (the site-down alarm of an UptimeCheck), this
component builds a second topic in us-east-1 (through its own provider) with the same email
subscribed, so that alarm still reaches the same inbox; nothing asks, nothing is built. In a
us-east-1 stack it is the one topic.

The topics are not encrypted with KMS on purpose: CloudWatch alarms cannot publish to a
topic encrypted with the AWS-managed SNS key, a customer-managed key is billed monthly and
needs a key policy to get right, and alarm messages carry alarm names and descriptions, not data.

Cost: nothing at a small team's alarm volume (SNS email notifications are billed only past the
free tier; AWS Chatbot has no charge of its own).

Replacement: changing the stack's region replaces the topics (and AWS emails a new
confirmation link); changing an email replaces its subscription; changing the Slack channel
replaces the Chatbot configuration.

Example:
    alerts = Alerts("alerts", AlertsArgs(email="ops@example.com"), stack="prod", region="eu-west-1")
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from leanstack.components.base import LeanComponent
from leanstack.components.providers import aws_provider
from leanstack.config import AlertsArgs
from leanstack.config.naming import stack_prefix

# Where Route 53 publishes its health-check metrics, and so where their alarms must live.
GLOBAL_METRICS_REGION = "us-east-1"
# AWS Chatbot's API endpoints are in us-east-2, us-west-2, eu-west-1 and ap-southeast-1 only; its
# channel configurations are global, so one fixed region serves every stack.
CHATBOT_REGION = "us-west-2"
# AWS's managed policy for Chatbot's notification-only role: read CloudWatch to render alarm charts.
CHATBOT_NOTIFICATIONS_POLICY = "arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess"


class Alerts(LeanComponent):
    # The page topic (needs someone now); `ticket_topic_arn`: what can wait for working hours.
    topic_arn: pulumi.Output[str]
    ticket_topic_arn: pulumi.Output[str]

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
        self.ticket_topic_arn = self._topic(
            "ticket-", f"{stack_prefix(stack)}-tickets", None, email=args.ticket_email or args.email
        )
        self._slack_args: AlertsArgs | None = None
        self._chatbot_role: aws.iam.Role | None = None
        if args.slack.enabled:
            self._slack_args = args
            self._slack_channel("", [self.topic_arn], args)
        self.register_outputs({"topic_arn": self.topic_arn, "ticket_topic_arn": self.ticket_topic_arn})

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
            if self._slack_args is not None:
                # Site-down pages reach Slack too: the us-east-1 topic gets its own channel configuration.
                self._slack_channel(f"-{GLOBAL_METRICS_REGION}", [arn], self._slack_args)
            self._global = (provider, arn)
        return self._global

    def _topic(
        self, prefix: str, topic_name: str, provider: aws.Provider | None, *, email: str | None = None
    ) -> pulumi.Output[str]:
        def opts() -> pulumi.ResourceOptions:
            return self.child_opts(provider=provider) if provider is not None else self.child_opts()

        topic = aws.sns.Topic(self.child_name(f"{prefix}topic"), name=topic_name, tags=self.tags, opts=opts())
        aws.sns.TopicSubscription(
            self.child_name(f"{prefix}email"),
            topic=topic.arn,
            protocol="email",
            endpoint=email or self.email,
            opts=opts(),
        )
        return topic.arn

    def _slack_channel(self, suffix: str, topics: list[pulumi.Output[str]], args: AlertsArgs) -> None:
        """Pages to Slack: a Chatbot channel configuration subscribed to `topics` (the role is made once)."""
        if self._chatbot_role is None:
            self._chatbot_role = aws.iam.Role(
                self.child_name("chatbot"),
                name=f"{stack_prefix(self.stack)}-chatbot",
                assume_role_policy=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "chatbot.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                ),
                tags=self.tags,
                opts=self.child_opts(),
            )
            aws.iam.RolePolicyAttachment(
                self.child_name("chatbot-read"),
                role=self._chatbot_role.name,
                policy_arn=CHATBOT_NOTIFICATIONS_POLICY,
                opts=self.child_opts(),
            )
        aws.chatbot.SlackChannelConfiguration(
            self.child_name(f"slack{suffix}"),
            configuration_name=f"{stack_prefix(self.stack)}-pages{suffix}",
            iam_role_arn=self._chatbot_role.arn,
            slack_team_id=args.slack.workspace_id,
            slack_channel_id=args.slack.channel_id,
            sns_topic_arns=topics,
            # Channel members cannot run commands through the role: it only posts the pages.
            guardrail_policy_arns=[CHATBOT_NOTIFICATIONS_POLICY],
            region=CHATBOT_REGION,
            tags=self.tags,
            opts=self.child_opts(),
        )

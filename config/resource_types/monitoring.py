"""Monitoring: log groups, alarms, the dashboard, events, budgets, notifications and health checks."""

from __future__ import annotations

from typing import Any

from leanstack.config.resource_types.model import (
    ALARM,
    MOCK_ACCOUNT,
    MONITORING,
    Facts,
    MockCall,
    ResourceType,
    names,
)


def _sns_topic(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    return None, {"arn": f"arn:aws:sns:{call.region}:{MOCK_ACCOUNT}:{call.inputs.get('name', call.name)}"}


CLOUDWATCH_LOG_GROUP = ResourceType(
    "aws:cloudwatch/logGroup:LogGroup",
    (MONITORING,),
    facts=Facts(
        "log group",
        "CloudWatch Logs: name is ForceNew; retention changes in place (0 = never expire).",
        replaces=names(),
        holds_data="its log events",
        keep_data="export the log events to S3 first (`aws logs create-export-task`) if they are still needed",
        retention=("retentionInDays",),
    ),
    price="log_group",
)

CLOUDWATCH_LOG_METRIC_FILTER = ResourceType(
    "aws:cloudwatch/logMetricFilter:LogMetricFilter",
    (MONITORING,),
    facts=Facts(
        "log metric filter",
        "CloudWatch Logs: name and log group are ForceNew.",
        replaces=frozenset({"name", "logGroupName"}),
    ),
    free="no charge (its metric: see the custom-metrics assumption)",
)

CLOUDWATCH_METRIC_ALARM = ResourceType(
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    (MONITORING, ALARM),
    facts=Facts("alarm", "CloudWatch: name is ForceNew; thresholds change in place.", replaces=frozenset({"name"})),
    price="metric_alarm",
    key_inputs=("metricName", "comparisonOperator", "threshold", "period"),
)

CLOUDWATCH_COMPOSITE_ALARM = ResourceType(
    "aws:cloudwatch/compositeAlarm:CompositeAlarm",
    (MONITORING, ALARM),
    facts=Facts(
        "composite alarm",
        "CloudWatch: name is ForceNew; the rule changes in place.",
        replaces=frozenset({"alarmName"}),
    ),
    price="composite_alarm",
)

SNS_TOPIC_POLICY = ResourceType(
    "aws:sns/topicPolicy:TopicPolicy",
    (MONITORING,),
    facts=Facts(
        "SNS topic policy",
        "SNS: the topic ARN is ForceNew; the policy document changes in place (deleting it restores SNS's "
        "default policy).",
        replaces=frozenset({"arn"}),
    ),
    free="no charge",
)

CLOUDWATCH_DASHBOARD = ResourceType(
    "aws:cloudwatch/dashboard:Dashboard",
    (MONITORING,),
    facts=Facts(
        "dashboard",
        "CloudWatch: dashboardName is ForceNew; the body is replaced in place (it holds no data, only views).",
        replaces=frozenset({"dashboardName"}),
    ),
    price="dashboard",
)

CHATBOT_SLACK_CHANNEL_CONFIGURATION = ResourceType(
    "aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration",
    (MONITORING,),
    facts=Facts(
        "Slack channel (AWS Chatbot)",
        "AWS Chatbot: configuration name is ForceNew; the channel, topics and role change in place.",
        replaces=frozenset({"configurationName"}),
    ),
    free="no charge (AWS Chatbot bills nothing itself)",
)

CLOUDWATCH_EVENT_RULE = ResourceType(
    "aws:cloudwatch/eventRule:EventRule",
    (MONITORING,),
    facts=Facts("EventBridge rule", "EventBridge: name and bus are ForceNew.", replaces=names("eventBusName")),
    free="no charge for rules on AWS service events",
)

CLOUDWATCH_EVENT_TARGET = ResourceType(
    "aws:cloudwatch/eventTarget:EventTarget",
    (MONITORING,),
    facts=Facts(
        "EventBridge target",
        "EventBridge: rule, target id and bus are ForceNew.",
        replaces=frozenset({"rule", "targetId", "eventBusName"}),
    ),
    free="no charge (SSM Run Command on EC2 is free)",
)

BUDGETS_BUDGET = ResourceType(
    "aws:budgets/budget:Budget",
    (MONITORING,),
    facts=Facts(
        "budget",
        "AWS Budgets: name and account are ForceNew; the limit and notifications change in place (its spend "
        "history is AWS's, not the budget's).",
        replaces=names("accountId"),
    ),
    price="budget",
)

SNS_TOPIC = ResourceType(
    "aws:sns/topic:Topic",
    (MONITORING,),
    facts=Facts("SNS topic", "SNS: name is ForceNew (subscribers must confirm again).", replaces=names("fifoTopic")),
    free="no charge below 1M publishes a month",
    mock=_sns_topic,
)

SNS_TOPIC_SUBSCRIPTION = ResourceType(
    "aws:sns/topicSubscription:TopicSubscription",
    (MONITORING,),
    facts=Facts(
        "SNS subscription",
        "SNS: topic, protocol and endpoint are ForceNew; an email subscription must be confirmed again.",
        replaces=frozenset({"topic", "protocol", "endpoint"}),
    ),
    price="sns_subscription",
    key_inputs=("protocol", "endpoint"),
)

ROUTE53_HEALTH_CHECK = ResourceType(
    "aws:route53/healthCheck:HealthCheck",
    (MONITORING,),
    facts=Facts(
        "health check", "Route 53: type and reference are ForceNew.", replaces=frozenset({"type", "referenceName"})
    ),
    price="health_check",
    key_inputs=("type", "fqdn", "resourcePath", "requestInterval"),
)

CLOUDWATCH_LOG_RESOURCE_POLICY = ResourceType(
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy",
    (MONITORING,),
    free="no charge",
)

ENTRIES = (
    CLOUDWATCH_LOG_GROUP,
    CLOUDWATCH_LOG_METRIC_FILTER,
    CLOUDWATCH_METRIC_ALARM,
    CLOUDWATCH_COMPOSITE_ALARM,
    SNS_TOPIC_POLICY,
    CLOUDWATCH_DASHBOARD,
    CHATBOT_SLACK_CHANNEL_CONFIGURATION,
    CLOUDWATCH_EVENT_RULE,
    CLOUDWATCH_EVENT_TARGET,
    BUDGETS_BUDGET,
    SNS_TOPIC,
    SNS_TOPIC_SUBSCRIPTION,
    ROUTE53_HEALTH_CHECK,
    CLOUDWATCH_LOG_RESOURCE_POLICY,
)

"""`leanstack:alerts`: when the alarms page, who gets pages and tickets, and the site-down check."""

from __future__ import annotations

from dataclasses import dataclass

from leanstack.config.fields import (
    EMAIL_ALLOWED,
    EMAIL_RE,
    HOSTNAME_ALLOWED,
    HOSTNAME_RE,
    URL_PATH_ALLOWED,
    URL_PATH_RE,
    Validated,
    setting,
)

TICKET_EMAIL_ALLOWED = "an email address such as tickets@example.com, or empty"


@dataclass(frozen=True)
class SlackArgs(Validated):
    """A Slack channel that receives the page topic through AWS Chatbot; both ids or neither."""

    workspace_id: str = setting(
        "",
        doc="The Slack workspace (team) id, as the AWS Chatbot console shows it after authorising it, such as "
        "T0123ABCDE.",
        pattern=r"(T[A-Z0-9]{8,11})?",
        allowed="a Slack workspace id such as T0123ABCDE (T and 8-11 upper-case letters or digits), or empty",
    )
    channel_id: str = setting(
        "",
        doc="The Slack channel id (channel details > About, at the bottom), such as C0123ABCDEF.",
        pattern=r"([CG][A-Z0-9]{8,11})?",
        allowed="a Slack channel id such as C0123ABCDEF (C or G and 8-11 upper-case letters or digits), or empty",
    )

    def section_problem(self) -> tuple[str, str] | None:
        if bool(self.workspace_id) != bool(self.channel_id):
            missing = "channel_id" if self.workspace_id else "workspace_id"
            return (missing, "missing; alerts.slack needs both workspaceId and channelId, or neither")
        return None

    @property
    def enabled(self) -> bool:
        return bool(self.workspace_id)


@dataclass(frozen=True)
class AlertThresholds(Validated):
    """When the alarms page: on user pain and data at risk only, never on a busy server."""

    error_rate_percent: int = setting(
        5,
        doc="Page when more than this percent of user requests get a 5xx for 5 minutes in a row.",
        min=1,
        max=50,
    )
    min_requests_per_minute: int = setting(
        10,
        doc="The 5xx share only counts in minutes with at least this many user requests (health checks "
        "excluded), so one failed request at 3 a.m. does not page.",
        min=1,
        max=100000,
    )
    site_down_minutes: int = setting(
        3,
        doc="Page when the site-down health check (through the CDN) has failed for this many minutes.",
        min=1,
        max=30,
    )
    database_free_storage_percent: int = setting(
        10,
        doc="Page when the database's free storage falls below this percent of its allocated size.",
        min=5,
        max=50,
    )
    backup_stale_hours: int = setting(
        26,
        doc="Page when no off-site backup has succeeded for this many hours (more than the backup interval).",
        min=2,
        max=168,
    )
    latency_p95_ms: int = setting(
        1000,
        doc="Page when the 95th percentile of user requests' response time (nginx's request time on one host, the "
        "load balancer's TargetResponseTime when scaled out; health checks excluded) stays above this many "
        "milliseconds for 5 minutes. Minutes with too few requests to make a percentile do not count.",
        min=50,
        max=60000,
    )
    database_connections_percent: int = setting(
        80,
        doc="Page when the database's connections stay above this percent of its class's max_connections (RDS's "
        "default LEAST(DBInstanceClassMemory/9531392, 5000), estimated from the class's memory) for 5 minutes.",
        min=50,
        max=95,
    )
    ticket_email: str = setting(
        "",
        doc="Address for tickets: alarms that can wait for working hours (restore drill stale or failed, the "
        "budget, a failed job, files at risk, a crash-looping worker). Empty: alertEmail gets both pages and tickets.",
        pattern=f"({EMAIL_RE})?",
        allowed=TICKET_EMAIL_ALLOWED,
    )
    slack: SlackArgs = setting(
        SlackArgs(),
        doc="Post pages to a Slack channel through AWS Chatbot (the workspace must be authorised in the Chatbot "
        "console once): {workspaceId, channelId}. Empty: email only.",
    )


# The Args of the Alerts component, which the program fills in from alertEmail and this section.
@dataclass(frozen=True)
class AlertsArgs(Validated):
    """Who the page and ticket topics reach."""

    email: str = setting(
        doc="The address that receives pages (and tickets, without ticket_email); AWS emails it a confirmation "
        "link first.",
        pattern=EMAIL_RE,
        allowed=EMAIL_ALLOWED,
    )
    ticket_email: str = setting(
        "",
        doc="The address that receives tickets; empty: email.",
        pattern=f"({EMAIL_RE})?",
        allowed=TICKET_EMAIL_ALLOWED,
    )
    slack: SlackArgs = setting(SlackArgs(), doc="A Slack channel the page topic posts to through AWS Chatbot.")


# The Args of the UptimeCheck component, which the program fills in from the hostnames, app and this section.
@dataclass(frozen=True)
class UptimeCheckArgs(Validated):
    """The site-down check, asked from outside through the CDN."""

    hostname: str = setting(
        doc="The hostname the check calls over HTTPS.", pattern=HOSTNAME_RE, allowed=HOSTNAME_ALLOWED
    )
    health_path: str = setting(
        "/healthz",
        doc="Path the check calls; the app answers 200 when healthy.",
        pattern=URL_PATH_RE,
        allowed=URL_PATH_ALLOWED,
    )
    site_down_minutes: int = setting(
        3, doc="Minutes the check must fail in a row before anyone is paged.", min=1, max=30
    )

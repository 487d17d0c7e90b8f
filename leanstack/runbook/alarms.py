"""The alarm sections of the recovery sheet: a heading per runbook anchor, and the deeper steps of each.

Alarm sections are keyed by the anchor each alarm's description links to ("Runbook: #site-down"); an
alarm whose anchor has no section here is an error, so the descriptions and this sheet cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from leanstack.config import StackConfig
from leanstack.mocks import Resource, StackRun
from leanstack.runbook.environment import render_yaml
from leanstack.runbook.facts import (
    ALARM,
    RunbookError,
    github_anchor,
    recovery_facts,
)

ANCHOR_RE = re.compile(r"Runbook: #([a-z0-9-]+)")

# The heading of each alarm section, keyed by the anchor the alarms' descriptions link to.
ALARM_HEADINGS: dict[str, str] = {
    "site-down": "Site down",
    "error-rate": "Error rate",
    "host-still-broken": "Host still broken",
    "unhealthy-targets": "Unhealthy targets",
    "load-balancer-errors": "Load balancer errors",
    "latency": "Latency",
    "database-connections-high": "Database connections high",
    "rds-restore-test-failed": "RDS restore test failed",
    "worker-crash-loop": "Worker crash loop",
    "database-storage-low": "Database storage low",
    "backup-stale": "Backup stale",
    "restore-drill-stale": "Restore drill stale",
    "restore-drill-failed": "Restore drill failed",
    "job-failed": "Job failed",
    "files-at-risk": "Files at risk",
}


def alarm_steps(run: StackRun, config: StackConfig) -> dict[str, list[str]]:
    """Deeper steps per alarm section, after the alarm's own description (what users feel, first check).

    Every command is pinned to the stack and region; every step on a host says how to open the session.
    The steps are written in templates/alarm_steps.yaml.j2.
    """
    steps: dict[str, list[str]] = render_yaml("alarm_steps.yaml.j2", f=recovery_facts(run, config), config=config)
    return steps


def alarm_anchor(alarm: Resource) -> str | None:
    match = ANCHOR_RE.search(str(alarm.inputs.get("alarmDescription", "")))
    return match.group(1) if match else None


def sorted_alarms(run: StackRun) -> list[Resource]:
    return sorted(run.of_type(ALARM), key=lambda r: str(r.inputs.get("name", r.name)))


@dataclass(frozen=True)
class AlarmEntry:
    """One alarm as its section lists it: its name, region and own description (what users feel, first check)."""

    name: str
    region: str
    description: str


@dataclass(frozen=True)
class AlarmSection:
    heading: str
    alarms: tuple[AlarmEntry, ...]
    steps: tuple[str, ...]


@dataclass(frozen=True)
class AlarmSheet:
    """What the alarms part of the sheet states: where pages and tickets go, every alarm by section."""

    tickets: str  # the email tickets go to
    other_regions: tuple[str, ...]  # regions other than the stack's that hold an alarm
    summary: tuple[tuple[str, str, str], ...]  # (link to its section, name, region) per alarm
    sections: tuple[AlarmSection, ...]
    automatic: tuple[tuple[str, str], ...]  # (name, description) of the alarms that act rather than email


def alarm_sheet(run: StackRun, config: StackConfig) -> AlarmSheet:
    """The alarms grouped by the section their description links to; raises RunbookError on a missing section."""
    alarms = sorted_alarms(run)
    sections: dict[str, list[Resource]] = {}
    automatic: list[Resource] = []
    for alarm in alarms:
        anchor = alarm_anchor(alarm)
        if anchor is None:
            automatic.append(alarm)
            continue
        if anchor not in ALARM_HEADINGS:
            raise RunbookError(f"alarm {alarm.inputs.get('name')} links to #{anchor}, which this runbook lacks")
        sections.setdefault(anchor, []).append(alarm)
    summary = tuple(
        (f"[{ALARM_HEADINGS[a]}](#{a})", f"`{alarm.inputs.get('name')}`", alarm.region)
        for a, grouped in sections.items()
        for alarm in grouped
    )
    every_steps = alarm_steps(run, config)
    ordered = []
    for anchor, heading in ALARM_HEADINGS.items():
        if anchor not in sections:
            continue
        if github_anchor(heading) != anchor:
            raise RunbookError(f"heading {heading!r} does not produce the anchor #{anchor}")
        entries = tuple(
            AlarmEntry(
                str(alarm.inputs.get("name")),
                alarm.region,
                ANCHOR_RE.sub("", str(alarm.inputs.get("alarmDescription", ""))).strip(),
            )
            for alarm in sections[anchor]
        )
        ordered.append(AlarmSection(heading, entries, tuple(every_steps[anchor])))
    return AlarmSheet(
        tickets=config.alerts.ticket_email or config.alert_email,
        other_regions=tuple(sorted({a.region for a in alarms if a.region and a.region != config.region})),
        summary=summary,
        sections=tuple(ordered),
        automatic=tuple((str(a.inputs.get("name")), str(a.inputs.get("alarmDescription", ""))) for a in automatic),
    )

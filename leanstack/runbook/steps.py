"""The pieces of a recovery branch: numbered steps, the branch itself, and the steps several branches share.

A branch's prose and commands live in templates/branches/<name>.yaml.j2: YAML rendered with the stack's facts,
prose folded (`>-`), commands literal (`|-`), loaded here into a Branch of Steps (an unknown key is an error).
`- session: ONLY` stands for the step that opens the SSM session on the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leanstack.config import StackConfig
from leanstack.runbook.environment import render_yaml
from leanstack.runbook.facts import (
    BEFORE_PULUMI,
    EC2_INSTANCE,
    RDS_INSTANCE,
    S3_BUCKET,
    RecoveryFacts,
    github_anchor,
)


@dataclass(frozen=True)
class Step:
    """One numbered step: what and why, where it runs, its commands, and how to check it worked.

    `only` marks a conditional step ("when you copy rows back"): it is rendered first, in bold, so
    nobody runs a step of the path they did not take. `opens_session` marks the step that opens the
    SSM session every following step on the host runs in.
    """

    text: str
    where: str = ""
    commands: tuple[str, ...] = ()
    check: str = ""
    check_commands: tuple[str, ...] = ()
    # What the step's `pulumi preview` must (not) look like, as diff lines: "fine" or "STOP".
    preview: tuple[str, ...] = ()
    only: str = ""
    opens_session: bool = False


@dataclass(frozen=True)
class Branch:
    """One answer to "what is gone?": symptoms, what is lost, numbered steps, how to undo the switch.

    `keeps` names what the undo needs (a side table, the old instance): no step drops one of them
    unless it is marked conditional on being sure.
    """

    heading: str
    symptoms: str
    loses: str
    steps: tuple[Step, ...]
    undo: tuple[str, ...] = ()
    keeps: tuple[str, ...] = ()

    @property
    def anchor(self) -> str:
        return github_anchor(self.heading)


def preview_line(sign: str, type_: str, name: str, operation: str, note: str) -> str:
    """One line of an expected preview, in the columns `pulumi preview` prints (sign, type, name, operation)."""
    return f"{sign:<2}{type_ + ' ':<31}{name + ' ':<20}{operation + ' ':<10}{note}"


def host_previews(f: RecoveryFacts, sign: str, operation: str, note: str) -> tuple[str, ...]:
    """A new host: it is created or replaced, what names it is updated, and the data is never touched."""
    return (
        preview_line(sign, EC2_INSTANCE, "host-instance", operation, note),
        *(preview_line("~", t, n, "update", "fine: names the new host") for t, n in f.host_dependents),
        preview_line("+-", RDS_INSTANCE, "database-instance", "replace", "STOP: never for a host"),
        preview_line("-", S3_BUCKET, "...", "delete", "STOP: never for a host"),
    )


def health_check(f: RecoveryFacts) -> tuple[str, ...]:
    return (f"curl -sS -o /dev/null -w '%{{http_code}}\\n' {f.site_health_url}   # 200",)


def shell_step(f: RecoveryFacts, only: str = "") -> Step:
    """The step that opens the SSM session on the host the following steps *on the host* run in."""
    session: dict[str, Any] = render_yaml("branches/session_step.yaml.j2", f=f)
    return _step({**session, "only": only}, f)


# How a step that runs `pulumi` points to what it needs first.
BEFORE_PULUMI_LINK = f"first, once per shell: [{BEFORE_PULUMI}](#{github_anchor(BEFORE_PULUMI)})"


def closing_steps(f: RecoveryFacts, config: StackConfig, regions: tuple[str, ...] = ()) -> tuple[Step, ...]:
    """Every branch ends here: no alarm of the stack left firing, and the owner told."""
    regions = regions or f.alarm_regions
    closing: list[dict[str, Any]] = render_yaml("branches/closing_steps.yaml.j2", f=f, config=config, regions=regions)
    return tuple(_step(item, f) for item in closing)


def load_branch(template: str, f: RecoveryFacts, config: StackConfig, **values: Any) -> Branch:
    """The branch written in templates/branches/<template>, with the stack's facts filled in."""
    data = render_yaml(
        f"branches/{template}",
        f=f,
        config=config,
        s=f" --stack {config.stack}",
        health=health_check(f),
        BEFORE_PULUMI_LINK=BEFORE_PULUMI_LINK,
        host_previews=lambda sign, operation, note: host_previews(f, sign, operation, note),
        **values,
    )
    return Branch(
        str(data["heading"]),
        str(data["symptoms"]),
        str(data["loses"]),
        tuple(_step(item, f) for item in data["steps"]),
        undo=tuple(data.get("undo", ())),
        keeps=tuple(data.get("keeps", ())),
    )


def _step(item: dict[str, Any], f: RecoveryFacts) -> Step:
    if "session" in item:
        return shell_step(f, only=str(item["session"]))
    fields: dict[str, Any] = {key: tuple(value) if isinstance(value, list) else value for key, value in item.items()}
    return Step(**fields)

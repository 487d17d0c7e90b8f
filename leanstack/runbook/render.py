"""The recovery sheet as Markdown: the facts of the stack put into the templates of templates/, section by section.

Each template renders one section exactly as it appears in the sheet, ending with a blank line; the sheet
is the sections one after the other.
"""

from __future__ import annotations

from pathlib import Path

from leanstack.config import StackConfig, load_stack_config
from leanstack.mocks import StackRun, read_stack_config, run_program
from leanstack.runbook.alarms import alarm_sheet
from leanstack.runbook.branches import BRANCH_NAMES, recovery_branches
from leanstack.runbook.environment import render_template
from leanstack.runbook.facts import DRILL_TARGETS, RecoveryFacts, recovery_facts
from leanstack.runbook.sections import (
    backup_every,
    backup_folder,
    credential_places,
    has_cache_token,
    host_target,
    job_rows,
    people_rows,
    pulumi_login,
    service_rows,
    stateful_rows,
)
from leanstack.runbook.steps import Branch, health_check


class UnknownBranchError(ValueError):
    """`--branch` named no branch of the sheet."""


def runbook_markdown(run: StackRun, config: StackConfig, branch: str | None = None) -> str:
    """The recovery sheet for a run of the program and the config it ran with.

    With `branch` (one of BRANCH_NAMES): the title, the triage, what `pulumi` needs (when the branch runs it)
    and that branch only, a page to print on its own.
    """
    if branch is not None and branch not in BRANCH_NAMES:
        raise UnknownBranchError(f"--branch: got {branch!r}; expected one of {', '.join(BRANCH_NAMES)}")
    f = recovery_facts(run, config)
    branches = recovery_branches(run, config)
    common = {"config": config, "f": f}
    sites = ", ".join(f"https://{h}" for h in config.hostnames)
    parts = [
        render_template("header.md.j2", branch=branch, sites=sites, **common),
        render_template("triage.md.j2", triage_rows=_triage_rows(branches), health=health_check(f), **common),
        # Always there: the triage's own text points to it, and most branches need it.
        render_template("before_pulumi.md.j2", login=pulumi_login(config), **common),
        *(render_template("branch.md.j2", branch=b) for b in branches if branch is None or b.anchor == branch),
    ]
    if branch is None:
        parts += _reference_sections(run, config, f)
    return "".join(parts).rstrip("\n") + "\n"


def _triage_rows(branches: list[Branch]) -> list[list[str]]:
    """Per branch: what you see, what is gone, what is lost, and the link to its steps."""
    return [[b.symptoms, b.heading, b.loses, f"[{b.heading}](#{b.anchor})"] for b in branches]


def _reference_sections(run: StackRun, config: StackConfig, f: RecoveryFacts) -> list[str]:
    """What follows the branches in the whole sheet: people, services, targets, backups, operations, alarms."""
    common = {"config": config, "f": f}
    return [
        render_template("people.md.j2", rows=people_rows(config), credentials=credential_places(config), **common),
        render_template("services.md.j2", rows=service_rows(run, config), **common),
        render_template("targets.md.j2", every=backup_every(config), **common),
        render_template(
            "backups.md.j2",
            folder=backup_folder(config, f.database_name),
            drill_target=DRILL_TARGETS[config.backup.drill_target],
            **common,
        ),
        render_template("rollback.md.j2", **common),
        render_template("app_operations.md.j2", jobs=job_rows(config), **common),
        render_template("alarms.md.j2", alarms=alarm_sheet(run, config), **common),
        render_template("stateful.md.j2", rows=stateful_rows(run), **common),
        render_template("access.md.j2", host_target=host_target(config), cache_token=has_cache_token(run), **common),
    ]


def render_runbook(stack: str, repo: Path | None = None, branch: str | None = None) -> str:
    """The recovery sheet of <repo>/stacks/Pulumi.<stack>.yaml (default: this repository's), or one branch of it.

    Raises StackFileError/ConfigError on a bad stack file, UnknownBranchError on a branch it lacks (before
    running the program).
    """
    if branch is not None and branch not in BRANCH_NAMES:
        raise UnknownBranchError(f"--branch: got {branch!r}; expected one of {', '.join(BRANCH_NAMES)}")
    raw = read_stack_config(stack, repo)
    config = load_stack_config(raw, stack)
    return runbook_markdown(run_program(stack, raw), config, branch)

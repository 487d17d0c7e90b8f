"""The recovery sheet: one Markdown page per stack, generated from the program and its config.

`render_runbook(stack)` runs the real program offline (`leanstack.mocks`) with
stacks/Pulumi.<stack>.yaml and writes down what someone woken at 3 a.m. needs: what runs
where, what it costs and who owns it, the recovery targets and how the stack meets them,
where the backups are and the exact commands to restore them, how to roll back an
infrastructure change, what every alarm means and what to check first, who can get in and
where the secrets live. `runbook_markdown(run, config)` does the same for a run already made.

The output is deterministic (no timestamps, sorted) and never contains a secret value: it
names where secrets live, never what they are. Commands use `pulumi stack output <name>`
rather than pasted values, so the sheet stays right after a host is replaced.

The package, by concern: `facts` (what the sheet states, computed from the resources and the
config), `steps` and `branches` (the recovery branches as typed steps, whose commands the tests
run, loaded from templates/branches/*.yaml.j2), `alarms` (a section per runbook anchor the alarms
link to), `sections` (the facts of the reference sections), `environment` (the Jinja environment)
and `render` (the facts put into the Markdown templates of templates/, section by section).
"""

from leanstack.runbook.alarms import ALARM_HEADINGS, alarm_anchor, alarm_steps
from leanstack.runbook.branches import BRANCH_NAMES, recovery_branches
from leanstack.runbook.facts import (
    BEFORE_PULUMI,
    HOST,
    LAPTOP,
    STATEFUL_TYPES,
    RecoveryFacts,
    RunbookError,
    github_anchor,
    recovery_facts,
)
from leanstack.runbook.render import UnknownBranchError, render_runbook, runbook_markdown
from leanstack.runbook.steps import Branch, Step

__all__ = [
    "ALARM_HEADINGS",
    "BEFORE_PULUMI",
    "BRANCH_NAMES",
    "HOST",
    "LAPTOP",
    "STATEFUL_TYPES",
    "Branch",
    "RecoveryFacts",
    "RunbookError",
    "Step",
    "UnknownBranchError",
    "alarm_anchor",
    "alarm_steps",
    "github_anchor",
    "recovery_branches",
    "recovery_facts",
    "render_runbook",
    "runbook_markdown",
]

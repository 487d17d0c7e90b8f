"""`leanstack diff BASE [HEAD]`: what a change does to every stack, risk first.

BASE and HEAD are git revisions or saved JSON plans (`plan --format json`); HEAD defaults
to the working tree. A git revision is materialized with `git archive` in a temporary
directory and planned there with the revision's own program, components and stack files:
all stacks of one side in one process forked after loading the providers once, the two sides in
parallel. Two saved plans must be plans of one stack and of this format version.

Resources are matched by URN, then by the aliases a resource carries (a rename with an alias
is no change). For each stack the diff lists what is added, removed and changed, every
changed value in full: JSON documents (IAM and bucket policies, event patterns) as the
statements, actions and keys added or removed; user data decoded (base64, gzip, the
cloud-config and each file it writes) as a unified diff; long text as the lines that differ
with context.

Risk comes first, in plain words, in these kinds: a mandatory policy rule newly failing, data
loss, refused by AWS, downtime, exposure, weaker safety, orphaned. Each says what will happen
and what to do instead. What a property change does to a resource type (replace, stop/start,
reboot, nothing) is read from `leanstack.resource_facts`, the one table of those facts.

Nothing here imports Pulumi: the diff of two saved plans takes a fraction of a second.

The modules, in the order a diff runs: `sides` (what BASE and HEAD are, each stack planned, with
`plan_stacks` the one planning routine), `match` (which resource is which, what changed on it,
what a replacement drags along), `findings` (the risk kinds and what a resource is and holds),
`replacements` and `safeguards` (the risks filed), `compare` (one stack's plans, then every stack),
`values` and `render` (changed values made readable; text, markdown and JSON).
"""

from __future__ import annotations

from leanstack.diff.compare import diff_plans, diff_sources
from leanstack.diff.findings import (
    DATA_LOSS,
    DOWNTIME,
    EXPOSURE,
    ORPHANED,
    POLICY,
    REFUSED,
    RISK_ORDER,
    WEAKER,
    holds_data,
)
from leanstack.diff.render import RENDERERS, render_json, render_markdown, render_text
from leanstack.diff.sides import DiffError, Source, load_plan_file, plan_sides_forked
from leanstack.diff.values import decode_user_data, json_changes, render_change, user_data_changes

__all__ = [
    "DATA_LOSS",
    "DOWNTIME",
    "EXPOSURE",
    "ORPHANED",
    "POLICY",
    "REFUSED",
    "RENDERERS",
    "RISK_ORDER",
    "WEAKER",
    "DiffError",
    "Source",
    "decode_user_data",
    "diff_plans",
    "diff_sources",
    "holds_data",
    "json_changes",
    "load_plan_file",
    "plan_sides_forked",
    "render_change",
    "render_json",
    "render_markdown",
    "render_text",
    "user_data_changes",
]

"""leanstack's guardrails as plain functions: what the policy pack enforces, runnable anywhere.

Nothing here imports Pulumi or pulumi_policy. A rule sees the stack as a `StackView`, a list
of `Subject`s (type, name, inputs, `protect`, region and the resources each property refers
to), and returns `Violation`s whose message names the resource and the fix. Two adapters
build that view: `leanstack.policy_check` from a recorded offline run (`leanstack.mocks`), for the
test suite and the plan, and `policy.crossguard` from what Pulumi CrossGuard hands a policy
pack during `pulumi preview --policy-pack policy`.

Values a preview cannot know yet (an ARN of a bucket not created) arrive as `UNKNOWN`; a
rule never guesses about them: it passes, and CrossGuard checks again during `pulumi up`,
when the inputs are known.

"Production": a stack named prod, production or prod-*, or whose database has Pulumi
`protect` (the same idea as `leanstack.config.is_production`, seen from the resources;
RDS deletion protection is not used to recognise it, since the rule requires it). "Dev",
where one day of RDS backups is allowed: a stack named dev or dev-*.

One module per area, each declaring its rules beside their checks: `network` (exposure),
`encryption`, `host` (instance metadata), `buckets` (S3), `backups` (the backup bucket),
`database` (RDS backups and protection), `iam` (identity); `view` holds what every rule stands
on and `resource_types` the type tokens and families. `RULES` below is the pack, in the order
the plan and CrossGuard report it.
"""

from __future__ import annotations

from collections.abc import Sequence

from leanstack.policy.rules.backups import (
    BACKUP_BUCKET_CONDITIONAL_WRITES,
    BACKUP_BUCKET_KEEPS_NONCURRENT_VERSIONS,
    BACKUP_BUCKET_OBJECT_LOCK,
    BACKUP_BUCKET_OFF_SITE,
)
from leanstack.policy.rules.buckets import (
    S3_ABORTS_INCOMPLETE_UPLOADS,
    S3_ENCRYPTED,
    S3_PUBLIC_ACCESS_BLOCKED,
    S3_TLS_ONLY,
    S3_VERSIONED,
)
from leanstack.policy.rules.database import (
    RDS_BACKUP_RETENTION,
    RDS_PRODUCTION_KEEPS_AUTOMATED_BACKUPS,
    RDS_PRODUCTION_PROTECTION,
)
from leanstack.policy.rules.encryption import CACHE_ENCRYPTED, EBS_ENCRYPTED, RDS_STORAGE_ENCRYPTED
from leanstack.policy.rules.host import IMDSV2_REQUIRED
from leanstack.policy.rules.iam import HOST_CANNOT_DELETE_BACKUPS, HOST_READS_OWN_PARAMETERS, NO_STAR_IAM
from leanstack.policy.rules.network import DATABASE_NOT_PUBLIC, NO_SSH, NO_WORLD_INGRESS
from leanstack.policy.rules.resource_types import RDS
from leanstack.policy.rules.view import UNKNOWN, Rule, StackView, Subject, Violation, link_by_value

RULES: tuple[Rule, ...] = (
    DATABASE_NOT_PUBLIC,
    RDS_STORAGE_ENCRYPTED,
    CACHE_ENCRYPTED,
    EBS_ENCRYPTED,
    IMDSV2_REQUIRED,
    NO_SSH,
    NO_WORLD_INGRESS,
    S3_PUBLIC_ACCESS_BLOCKED,
    S3_TLS_ONLY,
    S3_VERSIONED,
    S3_ENCRYPTED,
    S3_ABORTS_INCOMPLETE_UPLOADS,
    BACKUP_BUCKET_OFF_SITE,
    BACKUP_BUCKET_OBJECT_LOCK,
    BACKUP_BUCKET_CONDITIONAL_WRITES,
    BACKUP_BUCKET_KEEPS_NONCURRENT_VERSIONS,
    RDS_BACKUP_RETENTION,
    RDS_PRODUCTION_PROTECTION,
    RDS_PRODUCTION_KEEPS_AUTOMATED_BACKUPS,
    NO_STAR_IAM,
    HOST_READS_OWN_PARAMETERS,
    HOST_CANNOT_DELETE_BACKUPS,
)


def evaluate(view: StackView, rules: Sequence[Rule] = RULES) -> dict[str, list[Violation]]:
    """Every rule's violations (an empty list: the rule passed), in rule order."""
    return {rule.name: rule.evaluate(view) for rule in rules}


__all__ = ["RDS", "RULES", "UNKNOWN", "Rule", "StackView", "Subject", "Violation", "evaluate", "link_by_value"]

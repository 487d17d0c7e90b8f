"""The backup bucket: off-site, locked, never overwritten, its old versions kept as long as the current."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from leanstack.policy.rules.buckets import attached, buckets, lifecycle_rules, nested
from leanstack.policy.rules.resource_types import BUCKET_POLICY, OBJECT_LOCK, RDS, RDS_CLUSTER
from leanstack.policy.rules.view import Rule, StackView, Subject, as_list, known, matches, statements


def backup_buckets(view: StackView) -> list[Subject]:
    found = []
    for bucket in buckets(view):
        names = " ".join(str(bucket.get(k) or "") for k in ("bucket", "bucketPrefix")) + " " + bucket.name
        if bucket.component == "BackupBucket" or "backup" in names.lower():
            found.append(bucket)
    return found


def _data_regions(view: StackView) -> set[str]:
    """The stack's region and the regions its databases live in: where backups must not be."""
    return {view.region} | {r.region for r in view.of_type(RDS, RDS_CLUSTER) if r.region}


def _backup_off_site(view: StackView) -> Iterator[tuple[Subject, str]]:
    regions = {r for r in _data_regions(view) if r}
    for bucket in backup_buckets(view):
        if bucket.region and bucket.region in regions:
            yield (
                bucket,
                (
                    f"{bucket.name} keeps backups in {bucket.region}, the stack's own region; a regional outage takes "
                    "both: give the bucket its own provider in another region (leanstack:backup.region)"
                ),
            )


def _backup_locked(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in backup_buckets(view):
        enabled = bucket.get("objectLockEnabled")
        inline = bucket.get("objectLockConfiguration")
        if isinstance(inline, Mapping) and inline.get("objectLockEnabled") == "Enabled":
            enabled = True
        if known(enabled) and enabled is not True:
            yield (
                bucket,
                (
                    f"{bucket.name} has no Object Lock, so one leaked key can delete every backup; create it with "
                    "object_lock_enabled=True (only possible at creation: a new bucket)"
                ),
            )
            continue
        locks = attached(view, bucket, OBJECT_LOCK)
        retention = [
            lock.get("rule", {}).get("defaultRetention") for lock in locks if isinstance(lock.get("rule"), Mapping)
        ]
        if not any(r for r in retention):
            yield bucket, f"{bucket.name} has Object Lock but no default retention; add a BucketObjectLockConfiguration"


def _backup_policy_denies_overwrites(policy_value: Any) -> bool | None:
    """Whether a bucket policy denies everyone a PutObject without If-None-Match (None: not known yet)."""
    if not known(policy_value):
        return None
    for s in statements(policy_value):
        condition = s.get("Condition")
        if (
            s.get("Effect") != "Deny"
            or s.get("Principal") not in ("*", {"AWS": "*"})
            or not isinstance(condition, Mapping)
        ):
            continue
        if not matches(as_list(s.get("Action")), ["s3:PutObject"]):
            continue
        null = condition.get("Null") or {}
        creation = condition.get("Bool") or {}
        if set(condition) - {"Null", "Bool"} or not isinstance(null, Mapping) or not isinstance(creation, Mapping):
            continue
        if str(null.get("s3:if-none-match")).lower() != "true" or set(null) != {"s3:if-none-match"}:
            continue
        # The documented exemption of the multipart steps, and nothing narrower.
        if (
            set(creation) - {"s3:ObjectCreationOperation"}
            or str(creation.get("s3:ObjectCreationOperation", "true")).lower() != "true"
        ):
            continue
        return True
    return False


def _backup_conditional_writes(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in backup_buckets(view):
        policies = attached(view, bucket, (BUCKET_POLICY,))
        verdicts = [_backup_policy_denies_overwrites(p.get("policy")) for p in policies]
        if None in verdicts or True in verdicts:
            continue
        yield (
            bucket,
            f"{bucket.name} lets anyone with s3:PutObject write a new version over a backup; add a bucket policy "
            'statement denying "*" s3:PutObject when s3:if-none-match is null and s3:ObjectCreationOperation is true',
        )


def _backup_keeps_noncurrent_versions(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in backup_buckets(view):
        rules = lifecycle_rules(view, bucket)
        if rules is None:
            continue
        current = [nested(r, "expiration", "days") for r in rules]
        noncurrent = [nested(r, "noncurrentVersionExpiration", "noncurrentDays") for r in rules]
        if not all(known(d) for d in current + noncurrent):
            continue
        longest = max((d for d in current if isinstance(d, int | float)), default=0)
        short = [d for d in noncurrent if isinstance(d, int | float) and d < longest]
        if short:
            yield (
                bucket,
                f"{bucket.name} deletes a noncurrent backup version after {min(short):g} day(s) but keeps current "
                f"ones {longest:g}: an overwrite or a stray delete becomes a real delete; set noncurrent_days >= "
                f"{longest:g}",
            )


BACKUP_BUCKET_OFF_SITE = Rule(
    "backup-bucket-off-site",
    "The backup bucket lives in a region other than the stack's (and its database's).",
    check_stack=_backup_off_site,
)
BACKUP_BUCKET_OBJECT_LOCK = Rule(
    "backup-bucket-object-lock",
    "The backup bucket has Object Lock with a default retention.",
    check_stack=_backup_locked,
)
BACKUP_BUCKET_CONDITIONAL_WRITES = Rule(
    "backup-bucket-conditional-writes",
    "Nobody can write over a backup: the bucket policy denies s3:PutObject without If-None-Match.",
    check_stack=_backup_conditional_writes,
)
BACKUP_BUCKET_KEEPS_NONCURRENT_VERSIONS = Rule(
    "backup-bucket-keeps-noncurrent-versions",
    "The backup bucket keeps a noncurrent version at least as long as a current one.",
    check_stack=_backup_keeps_noncurrent_versions,
)

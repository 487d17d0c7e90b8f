"""S3 buckets: public access blocked, TLS only, versioned, encrypted, incomplete uploads aborted."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from leanstack.policy.rules.resource_types import (
    BUCKET,
    BUCKET_ENCRYPTION,
    BUCKET_LIFECYCLE,
    BUCKET_POLICY,
    BUCKET_V2,
    BUCKET_VERSIONING,
    PUBLIC_ACCESS_BLOCK,
)
from leanstack.policy.rules.view import UNKNOWN, Rule, StackView, Subject, as_list, known, statements

# An incomplete multipart upload is billed until aborted: a lifecycle must abort it within this.
MAX_INCOMPLETE_UPLOAD_DAYS = 7


def buckets(view: StackView) -> list[Subject]:
    return view.of_type(BUCKET, BUCKET_V2)


def attached(view: StackView, bucket: Subject, types: Sequence[str]) -> list[Subject]:
    return view.referring(bucket, types, "bucket")


def _s3_public_access_blocked(view: StackView) -> Iterator[tuple[Subject, str]]:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket in buckets(view):
        blocks = attached(view, bucket, (PUBLIC_ACCESS_BLOCK,))
        if not any(all(b.get(f) is True or not known(b.get(f)) for f in flags) for b in blocks):
            yield (
                bucket,
                f"{bucket.name} does not block public access; add a BucketPublicAccessBlock with all four flags",
            )


def _denies_non_tls(policy: Subject) -> bool | None:
    """True/False, or None when the policy cannot be read yet."""
    if not known(policy.get("policy")):
        return None
    for s in statements(policy.get("policy")):
        condition = s.get("Condition", {})
        secure = condition.get("Bool", {}).get("aws:SecureTransport") if isinstance(condition, dict) else None
        if s.get("Effect") == "Deny" and s.get("Principal") in ("*", {"AWS": "*"}) and str(secure).lower() == "false":
            return True
    return False


def _s3_tls_only(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in buckets(view):
        verdicts = [_denies_non_tls(p) for p in attached(view, bucket, (BUCKET_POLICY,))]
        if None in verdicts or True in verdicts:
            continue
        yield (
            bucket,
            f"{bucket.name} accepts plain-HTTP requests; add a bucket policy denying aws:SecureTransport=false",
        )


def _s3_versioned(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in buckets(view):
        inline = bucket.get("versioning")
        if isinstance(inline, Mapping) and inline.get("enabled") is True:
            continue
        configs = attached(view, bucket, BUCKET_VERSIONING)
        statuses = [c.get("versioningConfiguration", {}).get("status") for c in configs]
        if any(s == "Enabled" or not known(s) for s in statuses):
            continue
        yield bucket, f"{bucket.name} is not versioned; add a BucketVersioning with status Enabled"


def _s3_encrypted(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in buckets(view):
        if bucket.get("serverSideEncryptionConfiguration") or attached(view, bucket, BUCKET_ENCRYPTION):
            continue
        yield (
            bucket,
            (
                f"{bucket.name} has no default encryption configured; add a BucketServerSideEncryptionConfiguration "
                "(AES256 or aws:kms)"
            ),
        )


def lifecycle_rules(view: StackView, bucket: Subject) -> list[Mapping[str, Any]] | None:
    """The bucket's enabled lifecycle rules, in one shape; None when a lifecycle is not known yet."""
    found: list[Mapping[str, Any]] = []
    for lifecycle in attached(view, bucket, BUCKET_LIFECYCLE):
        rules = lifecycle.get("rules")
        if not known(rules):
            return None
        found += [r for r in as_list(rules) if isinstance(r, Mapping) and r.get("status", "Enabled") == "Enabled"]
    for rule in as_list(bucket.get("lifecycleRules")):  # the inline form of aws.s3.Bucket
        if isinstance(rule, Mapping) and rule.get("enabled", True) is True:
            found.append(
                {
                    "filter": {"prefix": rule.get("prefix", "")},
                    "abortIncompleteMultipartUpload": {
                        "daysAfterInitiation": rule.get("abortIncompleteMultipartUploadDays")
                    },
                    "expiration": rule.get("expiration") or {},
                    "noncurrentVersionExpiration": {
                        "noncurrentDays": (rule.get("noncurrentVersionExpiration") or {}).get("days")
                    },
                }
            )
    return found


def nested(rule: Mapping[str, Any], block: str, key: str) -> Any:
    """rule[block][key]: None when absent, UNKNOWN when either is not known yet."""
    inner = rule.get(block)
    if not known(inner):
        return UNKNOWN
    return inner.get(key) if isinstance(inner, Mapping) else None


def _rule_prefix(rule: Mapping[str, Any]) -> Any:
    """The prefix a lifecycle rule applies to ("" for the whole bucket); UNKNOWN or None when unclear."""
    flt = rule.get("filter")
    if flt is None:
        return rule.get("prefix", "")
    if not isinstance(flt, Mapping):
        return flt if not known(flt) else None
    if flt.get("tag") or flt.get("and") or flt.get("objectSizeGreaterThan") or flt.get("objectSizeLessThan"):
        return None  # narrower than a prefix: does not cover every upload
    return flt.get("prefix", "") or ""


def _s3_aborts_incomplete_uploads(view: StackView) -> Iterator[tuple[Subject, str]]:
    for bucket in buckets(view):
        rules = lifecycle_rules(view, bucket)
        if rules is None:
            continue
        days = [
            nested(r, "abortIncompleteMultipartUpload", "daysAfterInitiation")
            for r in rules
            if _rule_prefix(r) == "" or not known(_rule_prefix(r))
        ]
        if any(not known(d) or (isinstance(d, int | float) and 0 < d <= MAX_INCOMPLETE_UPLOAD_DAYS) for d in days):
            continue
        what = "has no lifecycle" if not rules else "has a lifecycle that never aborts incomplete uploads bucket-wide"
        yield (
            bucket,
            f"{bucket.name} {what}: an unfinished multipart upload is billed forever; add a lifecycle rule with an "
            f"empty prefix and abort_incomplete_multipart_upload within {MAX_INCOMPLETE_UPLOAD_DAYS} days",
        )


S3_PUBLIC_ACCESS_BLOCKED = Rule(
    "s3-public-access-blocked", "Every S3 bucket blocks all public access.", check_stack=_s3_public_access_blocked
)
S3_TLS_ONLY = Rule(
    "s3-tls-only", "Every S3 bucket's policy denies requests not made over TLS.", check_stack=_s3_tls_only
)
S3_VERSIONED = Rule("s3-versioned", "Every S3 bucket is versioned.", check_stack=_s3_versioned)
S3_ENCRYPTED = Rule("s3-encrypted", "Every S3 bucket has default server-side encryption.", check_stack=_s3_encrypted)
S3_ABORTS_INCOMPLETE_UPLOADS = Rule(
    "s3-aborts-incomplete-uploads",
    f"Every S3 bucket has a lifecycle that aborts incomplete multipart uploads within "
    f"{MAX_INCOMPLETE_UPLOAD_DAYS} days, bucket-wide.",
    check_stack=_s3_aborts_incomplete_uploads,
)

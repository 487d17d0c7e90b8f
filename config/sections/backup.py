"""`leanstack:backup`: the off-site backup bucket, the backup and drill schedules, the recovery key."""

from __future__ import annotations

import base64
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

from leanstack.config.fields import (
    AWS_REGIONS,
    REGION_ALLOWED,
    REGION_RE,
    Validated,
    calendar_problem,
    check_region,
    setting,
    shown,
)

# An RSA key this size seals for as long as backups are kept (recovery-key new makes 4096).
RECOVERY_KEY_MIN_BITS = 3072


def _check_recovery_key(value: Any) -> str | None:
    """None when `value` is empty or an RSA public key of at least RECOVERY_KEY_MIN_BITS bits."""
    if not value:
        return None
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(str(value), validate=True))
    except ValueError:
        return "the base64 line printed by python -m leanstack recovery-key new (this is not a public key)"
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < RECOVERY_KEY_MIN_BITS:
        return f"an RSA public key of at least {RECOVERY_KEY_MIN_BITS} bits (python -m leanstack recovery-key new)"
    return None


def _drill_url_problem(url: str) -> str | None:
    """What is wrong with a drill server URL (a maintenance database URL without a password), or None."""
    parts = urllib.parse.urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if (
        parts.scheme not in ("postgres", "postgresql")
        or not parts.hostname
        or not parts.path.strip("/")
        or not port_ok
        or any(c.isspace() or ord(c) < 32 for c in url)
    ):
        return "expected a URL such as postgresql://drill@db.internal:5432/postgres (scheme, host, database name)"
    if parts.password is not None:
        return "expected no password in it: stack config is not secret (the value is not shown here)"
    return None


@dataclass(frozen=True)
class BackupBucketArgs(Validated):
    """The off-site backup bucket, in a second region (optionally a second account)."""

    region: str = setting(
        doc="Region of the backup bucket; must differ from the stack's region. Changing it replaces the bucket.",
        pattern=REGION_RE,
        allowed=REGION_ALLOWED,
        check=check_region,
        choices=AWS_REGIONS,
    )
    bucket_name: str = setting(
        "",
        doc="Bucket name; empty means leanstack-<stack>-backups-<suffix>. Changing it replaces the bucket.",
        pattern=r"([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?",
        allowed="3-63 lower-case letters, digits, '.' and '-'",
    )
    prefix: str = setting(
        "postgres",
        doc="Key prefix of the backups; each stack's host writes under <prefix>/<stack>/ only.",
        pattern=r"[a-z0-9][a-z0-9/_-]{0,62}",
        allowed="lower-case letters, digits, '/', '_' and '-'",
    )
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = setting(
        "COMPLIANCE",
        doc="COMPLIANCE: nobody, root included, can delete a backup before its lock expires. GOVERNANCE: "
        "privileged users can.",
    )
    object_lock_days: int = setting(30, doc="Days each backup object is locked against deletion.", min=1, max=3650)
    glacier_after_days: int = setting(
        30,
        doc="Move backups to Glacier Instant Retrieval after this many days; 0 keeps them in Standard.",
        min=0,
        max=3650,
    )
    expire_after_days: int = setting(
        365,
        doc="Backups expire this many days after they are written; an expired, overwritten or deleted version "
        "is kept as many days again before S3 removes it.",
        min=2,
        max=3650,
    )
    profile: str = setting(
        "",
        doc="AWS CLI profile of a second account for the bucket (isolates backups from the main account).",
        pattern=r"[A-Za-z0-9_.-]*",
        allowed="a profile name",
    )
    role_arn: str = setting(
        "",
        doc="IAM role to assume in a second account for the bucket.",
        pattern=r"(arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+)?",
        allowed="an IAM role ARN such as arn:aws:iam::123456789012:role/leanstack-backups",
    )
    backup_calendar: str = setting(
        "*-*-* 03:30:00",
        doc="When the host runs leanstack-backup (systemd OnCalendar, UTC unless it names a timezone).",
        check=calendar_problem,
    )
    drill_calendar: str = setting(
        "*-*-01 05:00:00",
        doc="When the host runs leanstack-restore-drill (systemd OnCalendar, UTC unless it names a timezone).",
        check=calendar_problem,
    )
    drill_target: Literal["local", "instance", "url"] = setting(
        "local",
        doc="Where the restore drill restores: local, a throw-away PostgreSQL of the database's major version on "
        "the host (needs no space on, nor even the presence of, the production instance); instance, a marked "
        "scratch database on the RDS instance (needs free storage there the size of the database); url, the "
        "server in drillDatabaseUrl.",
    )
    drill_database_url: str = setting(
        "",
        doc="Only with drillTarget: url. A maintenance database on the drill's server, without a password, "
        "such as postgresql://drill@db.internal:5432/postgres.",
    )
    drill_starts_app: bool = setting(
        False,
        doc="With drillTarget: local. After the restore, the drill starts the serving release's image against the "
        "scratch database on an isolated network (LEANSTACK_DRILL=1) and requires its health path to answer 200 "
        "within app.healthTimeoutSeconds.",
    )
    recovery_public_key: str = setting(
        "",
        doc="The recovery key's public half, the one base64 line `python -m leanstack recovery-key new` prints "
        "(its private half stays in the owner's password manager). Set: the host seals the app's SSM parameters "
        "and Secrets Manager secrets to it daily into sealed-secrets/<stack>/ of this bucket; "
        "`python -m leanstack secrets restore STACK --from-backup` opens them. Empty: no sealed copy.",
        pattern=r"[A-Za-z0-9+/=]*",
        allowed="the base64 line printed by python -m leanstack recovery-key new",
        check=_check_recovery_key,
    )
    existing_bucket: str = setting(
        "",
        doc="Recovery stacks only (python -m leanstack recover init): the name of the region-down stack's backup "
        "bucket, used as it is (its lock, policy and lifecycle stay untouched; nothing is created for it). This "
        "stack writes its own dumps there under <backup.prefix>/<stack>/ and restores the old stack's with "
        "leanstack-restore --from-stack OLD, so backup.region may equal aws:region.",
        pattern=r"([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?",
        allowed="3-63 lower-case letters, digits, '.' and '-'",
    )
    verify_sql: str = setting(
        "",
        doc="SQL the drill runs against the restored database, such as SELECT count(*) > 0 FROM users; every row's "
        "first column must be true. Empty: only row counts are compared with the backup's manifest.",
        pattern=r"[^\x00]{0,4000}",
        allowed="SQL text of at most 4000 characters",
    )

    def section_problem(self) -> tuple[str, str] | None:
        """The first rule across this section's own fields that fails: (field, message), or None."""
        if self.existing_bucket and (self.profile or self.role_arn):
            # The bucket policy there admits the region-down stack's host role only, by ARN.
            field = "profile" if self.profile else "role_arn"
            return (field, "given with backup.existingBucket; a recovery stack uses the bucket from this account only")
        if self.profile and self.role_arn:
            return ("role_arn", "give either backup.profile or backup.roleArn, not both")
        if self.expire_after_days <= self.object_lock_days:
            return (
                "expire_after_days",
                f"got {self.expire_after_days}; expected more than backup.objectLockDays "
                f"({self.object_lock_days}), or expired backups stay locked and billed",
            )
        if self.drill_target == "url" and not self.drill_database_url:
            return (
                "drill_database_url",
                "missing; drillTarget is url, so expected the drill server's URL such as "
                "postgresql://drill@db.internal:5432/postgres",
            )
        if self.drill_database_url and (problem := _drill_url_problem(self.drill_database_url)):
            # Never echoed: a mistyped URL may carry a password.
            return ("drill_database_url", f"not a usable URL; {problem}")
        if self.drill_starts_app and self.drill_target != "local":
            return (
                "drill_starts_app",
                f"got true with drillTarget {shown(self.drill_target)}; expected drillTarget: local (the app the "
                "drill starts reaches only the host's throw-away PostgreSQL)",
            )
        if self.drill_database_url and self.drill_target != "url":
            return (
                "drill_database_url",
                f"got a URL with drillTarget {shown(self.drill_target)}; expected it only with drillTarget: url",
            )
        if self.glacier_after_days and self.expire_after_days < self.glacier_after_days + 90:
            return (
                "glacier_after_days",
                f"got {self.glacier_after_days}; Glacier Instant Retrieval bills 90 days minimum, so expected "
                f"expireAfterDays ({self.expire_after_days}) >= glacierAfterDays + 90, or 0 to skip Glacier",
            )
        return None

"""`leanstack:storage`: the uploads bucket, its off-site replica and the app's own role, off by default."""

from __future__ import annotations

from dataclasses import dataclass

from leanstack.config.fields import Validated, setting


@dataclass(frozen=True)
class StorageArgs(Validated):
    """File storage for the app's uploads, off by default: off means no resources at all."""

    enabled: bool = setting(
        False,
        doc="Create the uploads bucket (in the stack's region), its replica in backup.region (versioned, Object "
        "Lock as backup.objectLockMode/objectLockDays) and the app's own AWS role, which may use the uploads "
        "bucket and nothing else.",
    )
    cors_origins: tuple[str, ...] = setting(
        (),
        doc="Origins allowed to upload straight from the browser (presigned PUT/POST), such as "
        "https://example.com. Empty: no CORS rule, uploads go through the app.",
        pattern=r"https://[a-z0-9.-]+(:[0-9]{1,5})?",
        allowed="an https origin without a path, such as https://example.com",
    )
    keep_deleted_days: int = setting(
        30,
        doc="Days the uploads bucket keeps an overwritten or deleted file's old version (the replica keeps "
        "them backup.expireAfterDays).",
        min=1,
        max=3650,
    )
    drill_files_sql: str = setting(
        "",
        doc="SQL the restore drill runs against the restored database, returning the object keys it references "
        "(first column), such as SELECT key FROM uploads; the drill checks a sample of them exists in the "
        "replica. Empty: no files check.",
        pattern=r"[^\x00]{0,4000}",
        allowed="SQL text of at most 4000 characters",
    )
    existing_replica: str = setting(
        "",
        doc="Recovery stacks only (python -m leanstack recover init): the name of the region-down stack's replica "
        "bucket, used as this stack's replica as it is; nothing is created or changed on it. Empty: a new replica.",
        pattern=r"([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?",
        allowed="3-63 lower-case letters, digits, '.' and '-'",
    )

    def section_problem(self) -> tuple[str, str] | None:
        """The first rule across this section's own fields that fails: (field, message), or None."""
        if not self.enabled and self.existing_replica:
            return ("existing_replica", "given with storage off; expected storage.enabled: true")
        if not self.enabled and (self.cors_origins or self.drill_files_sql):
            field = "cors_origins" if self.cors_origins else "drill_files_sql"
            return (field, "given with storage off; expected storage.enabled: true")
        return None

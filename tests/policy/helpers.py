"""What the policy tests (and the tests that evaluate the host role elsewhere) share."""

from __future__ import annotations

from leanstack.mocks import StackRun

# Each rule, and exactly the resources of the unsafe program it must flag.
EXPECTED_IN_UNSAFE: dict[str, set[str]] = {
    "database-not-public": {"db-publicly-accessible", "db-open-security-group"},
    "rds-storage-encrypted": {"db-unencrypted"},
    "cache-encrypted": {"cache-unencrypted"},
    "ebs-encrypted": {"host-unencrypted-disk"},
    "imdsv2-required": {"host-imdsv1"},
    "no-ssh": {"sg-ssh-from-office"},
    "no-world-ingress": {"sg-postgres-from-world", "sg-https-from-world-behind-cdn"},
    "s3-public-access-blocked": {"bucket-wide-open", "backup-bucket-same-region-unlocked"},
    "s3-tls-only": {"bucket-wide-open", "backup-bucket-same-region-unlocked"},
    "s3-versioned": {"bucket-wide-open", "backup-bucket-same-region-unlocked"},
    "s3-encrypted": {"bucket-wide-open", "backup-bucket-same-region-unlocked"},
    # The backup bucket's lifecycle aborts uploads under its prefix only; the open bucket has none.
    "s3-aborts-incomplete-uploads": {"bucket-wide-open", "backup-bucket-same-region-unlocked"},
    "backup-bucket-conditional-writes": {"backup-bucket-same-region-unlocked"},
    "backup-bucket-keeps-noncurrent-versions": {"backup-bucket-same-region-unlocked"},
    "backup-bucket-off-site": {"backup-bucket-same-region-unlocked"},
    "backup-bucket-object-lock": {"backup-bucket-same-region-unlocked"},
    "rds-backup-retention": {"db-one-day-retention"},
    "rds-production-protection": {"db-protected-but-deletable"},
    "rds-production-keeps-automated-backups": {"db-protected-but-deletable"},
    "no-star-iam": {"admin-everything"},
    "host-cannot-delete-backups": {"host-may-delete-backups", "admin-everything"},
    "host-reads-own-parameters": {"host-ssm-managed-core", "admin-everything"},
}


ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


def host_role_documents(run: StackRun) -> list[str]:
    role = run.named("host-role")
    attached = [a for a in run.of_type(ATTACHMENT) if a.inputs["role"] in (role.id, role.inputs["name"])]
    assert attached == [], "an AWS-managed policy on the host role is not evaluated here; it must not be there"
    documents = [
        p.inputs["policy"] for p in run.of_type(ROLE_POLICY) if p.inputs["role"] in (role.id, role.inputs["name"])
    ]
    assert documents, "the host role has no policy"
    return documents

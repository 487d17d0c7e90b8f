"""AWS Backup: the vault, its lock and notifications, the plan and the restore tests."""

from __future__ import annotations

from leanstack.config.resource_types.model import BACKUP, Facts, ResourceType, names

BACKUP_VAULT = ResourceType(
    "aws:backup/vault:Vault",
    (BACKUP,),
    facts=Facts(
        "backup vault",
        "AWS Backup: name (and region) are ForceNew; a vault holding recovery points cannot be deleted, and a "
        "locked one keeps them until their retention ends.",
        replaces=names(),
        holds_data="its recovery points (RDS snapshots)",
        keep_data="keep the old vault until its recovery points expire; AWS refuses to delete a non-empty vault",
    ),
    free="no charge (its recovery points: see the backup plan)",
)

BACKUP_VAULT_LOCK_CONFIGURATION = ResourceType(
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
    (BACKUP,),
    facts=Facts(
        "backup vault lock",
        "AWS Backup: the vault name is ForceNew; in COMPLIANCE mode, once changeableForDays pass, nobody can "
        "change or remove the lock.",
        replaces=frozenset({"backupVaultName"}),
        retention=("minRetentionDays",),
    ),
    free="no charge",
)

BACKUP_VAULT_NOTIFICATIONS = ResourceType(
    "aws:backup/vaultNotifications:VaultNotifications",
    (BACKUP,),
    facts=Facts(
        "backup vault notifications",
        "AWS Backup: the vault name is ForceNew; topic and events change in place.",
        replaces=frozenset({"backupVaultName"}),
    ),
    free="no charge (SNS deliveries: see the subscriptions)",
)

BACKUP_PLAN = ResourceType(
    "aws:backup/plan:Plan",
    (BACKUP,),
    facts=Facts(
        "backup plan",
        "AWS Backup: rules, schedules and lifecycles change in place (existing recovery points keep their own "
        "retention).",
    ),
    price="backup_plan",
)

BACKUP_SELECTION = ResourceType(
    "aws:backup/selection:Selection",
    (BACKUP,),
    facts=Facts(
        "backup selection",
        "AWS Backup: every argument of a selection is ForceNew (a new selection replaces it; backups are unaffected).",
        replaces=frozenset({"name", "planId", "iamRoleArn", "resources"}),
    ),
    free="no charge",
)

BACKUP_RESTORE_TESTING_PLAN = ResourceType(
    "aws:backup/restoreTestingPlan:RestoreTestingPlan",
    (BACKUP,),
    facts=Facts(
        "restore testing plan",
        "AWS Backup: name is ForceNew; schedule and recovery point selection change in place.",
        replaces=frozenset({"name"}),
    ),
    free="no charge (each test: see the restore testing selection)",
)

BACKUP_RESTORE_TESTING_SELECTION = ResourceType(
    "aws:backup/restoreTestingSelection:RestoreTestingSelection",
    (BACKUP,),
    facts=Facts(
        "restore testing selection",
        "AWS Backup: name, plan and resource type are ForceNew; the rest changes in place.",
        replaces=frozenset({"name", "restoreTestingPlanName", "protectedResourceType"}),
    ),
    price="restore_test",
)

ENTRIES = (
    BACKUP_VAULT,
    BACKUP_VAULT_LOCK_CONFIGURATION,
    BACKUP_VAULT_NOTIFICATIONS,
    BACKUP_PLAN,
    BACKUP_SELECTION,
    BACKUP_RESTORE_TESTING_PLAN,
    BACKUP_RESTORE_TESTING_SELECTION,
)

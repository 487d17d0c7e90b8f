"""The region-down branch: rebuild the stack as its recovery stack in the backup region, from the off-site copies."""

from __future__ import annotations

from leanstack.config import StackConfig
from leanstack.config.naming import stack_prefix
from leanstack.host.agent.contract import stack_backup_prefix
from leanstack.recover import recovery_stack
from leanstack.runbook.facts import HOST, LAPTOP, NO_PASSWORD_MANAGER, RESTORE_COMMAND, RecoveryFacts
from leanstack.runbook.steps import BEFORE_PULUMI_LINK, Branch, Step, health_check


def region_down(f: RecoveryFacts, config: StackConfig) -> Branch:
    """The stack's region impaired: wait for it, or bring up the recovery stack beside the backups."""
    b, old, rec = config.backup, config.stack, recovery_stack(config.stack)
    keyed, files = bool(b.recovery_public_key), config.storage.enabled
    steps = (
        *_decide_and_prepare(f, config),
        *((_secrets_from_sealed_copy(f, config),) if keyed else ()),
        _build_recovery_stack(f, config),
        *(() if keyed else (_secrets_by_hand(f, config),)),
        _image(f, config),
        *((_copy_files(f, config),) if files else ()),
        *_restore_data(f, config),
    )
    return Branch(
        "Region down",
        f"The AWS Health Dashboard shows {f.region} impaired: the host and the database do not answer.",
        "Nothing if you wait for the region; everything since the newest off-site backup if you rebuild in "
        f"{b.region}. Times below are estimates, not measurements: about 2 h in all for a small database.",
        steps,
        undo=(
            f"When {f.region} is back, `{old}` still holds its old data and, without its DNS records, "
            f"serves nobody: decide which to keep, copy the rows written to `{rec}` meanwhile, then move the "
            f"records back the same way (delete them, `pulumi state delete --stack {rec} 'URN'`, `pulumi up --stack "
            f"{old}`). `pulumi destroy --stack {rec}` leaves the backup bucket and replica: they "
            "were never its resources.",
        ),
    )


def _recovery_host_filter(rec: str) -> str:
    """The `--filters` that find the recovery stack's host by its Name tag."""
    return f"Name=tag:Name,Values={stack_prefix(rec)}-host"


def _decide_and_prepare(f: RecoveryFacts, config: StackConfig) -> tuple[Step, ...]:
    """The owner's decision, the newest dump, the recovery stack's file, and the site's DNS records freed."""
    b, old, rec = config.backup, config.stack, recovery_stack(config.stack)
    folder = f"s3://$BUCKET/{stack_backup_prefix(b.prefix, old)}/{f.database_name}"
    hostnames = ", ".join(config.hostnames)
    replica = " --replica-bucket REPLICA" if config.storage.enabled else ""
    return (
        Step(
            "The owner decides: wait for the region (the database and its automated backups come back with it) "
            f"or bring up the recovery stack `{rec}` in {b.region}, beside the backups, losing what was written "
            "since the newest one. Compare AWS's estimate with the RTO "
            f"({config.recovery.rto_minutes or 'not set'} minutes). *Estimate: 10 min.*",
            check="the decision and who made it are in the incident notes.",
        ),
        Step(
            "Find the backup bucket and check its newest dump (BUCKET below). *Estimate: 5 min.*",
            LAPTOP,
            tuple(f.find_bucket),
            check="one manifest is listed; its name is the newest dump's time (what you will lose since):",
            check_commands=(
                f'aws s3 ls "{folder}/" --region {b.region}{f.bucket_profile} | grep manifest.json | tail -1',
            ),
        ),
        Step(
            f"Write stacks/Pulumi.{rec}.yaml: this stack's file in {b.region}, reusing the backup bucket"
            + (" and the uploads replica (REPLICA: output uploadsReplicaBucket)" if config.storage.enabled else "")
            + (" as they are" if config.storage.enabled else " as it is")
            + " (nothing is created or changed on them), with the app's secret references moved to "
            f"{b.region}. *Estimate: 5 min.*",
            LAPTOP,
            (f"python -m leanstack recover init {old} --backup-bucket $BUCKET{replica}",),
            check=f"`validate` says stacks/Pulumi.{rec}.yaml is valid:",
            check_commands=(f"python -m leanstack validate {rec}",),
        ),
        Step(
            f"Free the site's DNS records ({hostnames}): the recovery stack's Cdn creates the same records, "
            "pointed at its new host, and Cloudflare refuses a second record of a name. Delete them in the "
            f"Cloudflare dashboard, then drop them from `{old}`'s state (kept outside {f.region}, as this stack "
            "requires), so it never recreates them when its region returns. Each URN in single quotes: it "
            "contains `$`. Visitors get Cloudflare errors until the recovery stack is up; the site is down "
            f"already ({BEFORE_PULUMI_LINK}). *Estimate: 10 min.*",
            LAPTOP,
            (f"pulumi state delete --stack {old} 'URN'   # for each URN the check lists",),
            check="run again, this lists no URN:",
            check_commands=(f"pulumi stack --stack {old} --show-urns | grep DnsRecord",),
        ),
    )


def _secrets_from_sealed_copy(f: RecoveryFacts, config: StackConfig) -> Step:
    """The app's config and secrets, from the copy sealed with the recovery key."""
    b, old, rec = config.backup, config.stack, recovery_stack(config.stack)
    return Step(
        "Before `pulumi up`: put the app's config and secrets back from their sealed copy, as the recovery "
        f"stack's. `--into {rec}` writes `{old}`'s own values (never the ones Pulumi writes) under "
        f"/leanstack/{rec}/ in {b.region}, with every reference inside moved there, creates the Secrets "
        f"Manager secrets in {b.region} and writes their new ARNs into stacks/Pulumi.{rec}.yaml (which the "
        "new host's role is granted). Paste the recovery key's private half when asked (from "
        f"{config.recovery.credentials.recovery_key or 'the password manager'}: it is read from the "
        "terminal, never written to a file; an encrypted PEM file made with `openssl pkey -aes256` works "
        "too, with `--key-file`, asking its passphrase); the restore lists what it writes and asks before "
        f"writing. It also prints the release `{old}` last ran (TAG below). *Estimate: 15 min.*",
        LAPTOP,
        (
            f"python -m leanstack secrets restore {old} --from-backup --bucket $BUCKET "
            f"--bucket-region {b.region} --region {b.region} --into {rec}",
        ),
        check=f"the app's parameters are under /leanstack/{rec}/ and the stack file's secret ARNs name {b.region}:",
        check_commands=(
            f"aws ssm get-parameters-by-path --region {b.region} --path /leanstack/{rec}/ --recursive "
            "--query 'Parameters[].Name' --output text",
            f"grep -o 'arn:aws:secretsmanager:[^\"]*' stacks/Pulumi.{rec}.yaml",
        ),
    )


def _build_recovery_stack(f: RecoveryFacts, config: StackConfig) -> Step:
    """A new host, an empty database and registry, the DNS records: `pulumi up`."""
    b, rec = config.backup, recovery_stack(config.stack)
    rec_host = _recovery_host_filter(rec)
    return Step(
        "Build the recovery stack: a new host, an empty database, an empty image registry"
        + (", a new uploads bucket" if config.storage.enabled else "")
        + f" and the DNS records ({BEFORE_PULUMI_LINK}). *Estimate: 25 min (the database dominates).*",
        LAPTOP,
        (f"pulumi stack init --stack {rec}", f"pulumi up --stack {rec}"),
        preview=(
            "+ ...                           every resource      create    fine: a new stack",
            "~ ...                           ...                 update    STOP: a new stack updates nothing",
            "- ...                           ...                 delete    STOP: a new stack deletes nothing",
        ),
        check="`pulumi up` ends without an error and the new host runs:",
        check_commands=(
            f"aws ec2 describe-instances --region {b.region} --filters {rec_host} "
            "--query 'Reservations[].Instances[].[InstanceId,State.Name]' --output text",
        ),
    )


def _secrets_by_hand(f: RecoveryFacts, config: StackConfig) -> Step:
    """No recovery key: the app's config and secrets set again by hand."""
    b, rec = config.backup, recovery_stack(config.stack)
    kept = config.recovery.credentials.password_manager or NO_PASSWORD_MANAGER
    return Step(
        "This stack has no recovery key (`backup.recoveryPublicKey` is empty), so there is no sealed copy of "
        f"the app's config and secrets: they were in {f.region} only. Set each again by hand under the "
        f"recovery stack, from where the team keeps them ({kept}). *Estimate: 15 min, plus the hunt for "
        "each value.*",
        LAPTOP,
        (
            f"python -m leanstack config {rec} set NAME=VALUE --region {b.region}   # each plain value",
            f"python -m leanstack config {rec} set NAME --secret --region {b.region}   # each secret, from stdin",
        ),
        check="every variable the app needs is listed (secrets by reference only):",
        check_commands=(f"python -m leanstack config {rec} list --region {b.region}",),
    )


def _image(f: RecoveryFacts, config: StackConfig) -> Step:
    """The app's image rebuilt into the recovery stack's registry, then deployed."""
    b, old, rec = config.backup, config.stack, recovery_stack(config.stack)
    repository = f"{stack_prefix(rec)}-app"
    return Step(
        f"Put the app's image into the recovery stack's registry ({repository} in {b.region}: it starts "
        f"empty, and `{old}`'s is in {f.region}): build the release `{old}` last ran from its commit (TAG: "
        + (
            "the 12-character tag the restore printed, or the last app-deploy run's"
            if b.recovery_public_key
            else "the 12-character tag of the last app-deploy run"
        )
        + ") and push it, then deploy it. "
        "A rebuild, not the same bytes: what the build pulls (base image, packages) may have moved on since. "
        "*Estimate: 15 min.*",
        LAPTOP,
        (
            'git checkout "$TAG"',
            f"REPOSITORY=$(aws ecr describe-repositories --region {b.region} --repository-names {repository} "
            "--query 'repositories[0].repositoryUri' --output text)",
            f"aws ecr get-login-password --region {b.region} | docker login --username AWS --password-stdin "
            '"${REPOSITORY%%/*}"',
            'docker buildx build --platform linux/arm64 --provenance=false --push --tag "$REPOSITORY:$TAG" app',
            f'python -m leanstack deploy {rec} "$TAG" --all-hosts --region {b.region}',
        ),
        check=f"the image is in {b.region} and the recovery stack's history has it as succeeded:",
        check_commands=(
            f"aws ecr describe-images --region {b.region} --repository-name {repository} --image-ids "
            "imageTag=\"$TAG\" --query 'imageDetails[0].imageDigest' --output text",
            f"python -m leanstack releases {rec} --region {b.region}",
        ),
    )


def _copy_files(f: RecoveryFacts, config: StackConfig) -> Step:
    """The uploaded files copied back from the replica."""
    b, old, rec = config.backup, config.stack, recovery_stack(config.stack)
    return Step(
        "Copy the uploaded files back: the recovery stack's uploads bucket starts empty, the replica "
        f"(REPLICA, in {b.region}) has every file. `aws s3 sync` copies the current version of each file "
        "as a new object (new version ids and dates; the replica keeps its older versions), and brings "
        f"back files deleted in `{old}` since delete markers were never replicated. The new bucket "
        "replicates the copies into the replica again, as new versions: its storage grows by the files' "
        "size until backup.expireAfterDays ages those out. *Estimate: 5 min, plus about 1 min per GB.*",
        LAPTOP,
        (
            f"UPLOADS=$(pulumi stack output --stack {rec} uploadsBucket)",
            f'aws s3 sync "s3://REPLICA" "s3://$UPLOADS" --source-region {b.region} --region {b.region}',
        ),
        check="both list the same number of files:",
        check_commands=(
            f'aws s3 ls "s3://REPLICA" --recursive --region {b.region} | wc -l',
            f'aws s3 ls "s3://$UPLOADS" --recursive --region {b.region} | wc -l',
        ),
    )


def _restore_data(f: RecoveryFacts, config: StackConfig) -> tuple[Step, ...]:
    """On the recovery stack's host: the old stack's newest dump restored and switched to."""
    b, old, rec = config.backup, config.stack, recovery_stack(config.stack)
    rec_host = _recovery_host_filter(rec)
    return (
        Step(
            f"Open a session on the recovery stack's new host (in {b.region}); the next step runs in it.",
            LAPTOP,
            (
                f"HOST=$(aws ec2 describe-instances --region {b.region} --filters {rec_host} "
                "Name=instance-state-name,Values=running --query 'Reservations[0].Instances[0].InstanceId' "
                "--output text)",
                f'aws ssm start-session --region {b.region} --target "$HOST"',
            ),
            check="the prompt changes to the host's.",
            opens_session=True,
        ),
        Step(
            f"On the new host, restore `{old}`'s newest complete dump from the old bucket (`--from-stack {old}`: "
            "the recovery stack's own dumps are kept apart from it; it runs pg_restore into a new database, "
            "verifying the checksum and the row counts), then switch the app to it with the line it "
            "prints (RESTORED: the name in it). *Estimate: 15 min, plus about 2 min per GB of dump.*",
            HOST,
            (
                f"sudo {RESTORE_COMMAND} --from-stack {old}",
                f"sudo {RESTORE_COMMAND} --swap --use-restored RESTORED",
            ),
            check="the restore ends saying the row counts match, and the site answers 200 through Cloudflare:",
            check_commands=health_check(f),
        ),
    )

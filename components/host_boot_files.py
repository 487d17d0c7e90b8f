"""What a host boots from: its files in S3, its secrets in SSM, and the cloud-init that fetches them.

Builders of ProxyHost's boot children (parented to the ProxyHost) and the renderer of its user data.
`leanstack.host.boot` assembles the files and `leanstack.host.render` renders the templates under
`host/`; this module only uploads them and hands over the values known once resources exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare

from leanstack.components.app import App
from leanstack.components.backup_bucket import BackupBucket
from leanstack.components.base import LeanComponent
from leanstack.components.database import Database
from leanstack.components.host_inputs import HostDependencies, HostSite
from leanstack.components.origin_certificate import OriginCertificate
from leanstack.components.private_bucket import lock_down_bucket
from leanstack.config import ProxyHostArgs
from leanstack.config.naming import stack_prefix
from leanstack.host.agent import contract
from leanstack.host.boot import FetchedFile, HostBoot, SealJob
from leanstack.host.deploy.install import AppDatabase, AppSettings
from leanstack.host.params import BackupJobs, BackupSettings, HostParams

__all__ = [
    "HostUserData",
    "create_host_files_bucket",
    "seal_job",
    "store_database_location",
    "store_origin_tls",
]


def store_origin_tls(owner: LeanComponent, stack: str, certificate: OriginCertificate) -> list[aws.ssm.Parameter]:
    """The origin certificate and key as SecureStrings the host fetches at boot (never in user data)."""
    prefix = f"{contract.parameter_root(stack)}/tls"
    return [
        aws.ssm.Parameter(
            owner.child_name(f"tls-{part}"),
            name=f"{prefix}/origin-{part}",
            type="SecureString",
            value=value,
            description=f"Cloudflare origin {part} for nginx; fetched by the host at boot",
            tags=owner.tags,
            opts=owner.child_opts(),
        )
        for part, value in (("cert", certificate.certificate_pem), ("key", certificate.private_key_pem))
    ]


def store_database_location(owner: LeanComponent, stack: str, database: Database) -> aws.ssm.Parameter:
    """Where the database is, for the host to read at each use (contract.database_parameter):
    a recovery's new endpoint and secret reach the host here, not through its user data."""
    return aws.ssm.Parameter(
        owner.child_name("database-location"),
        name=contract.database_parameter(stack),
        type="String",
        value=pulumi.Output.json_dumps(
            {"host": database.address, "port": database.port, "secret_arn": database.secret_arn}
        ),
        description="Where the database is (host, port, secret ARN); read by the host at each use",
        tags=owner.tags,
        opts=owner.child_opts(),
    )


def create_host_files_bucket(
    owner: LeanComponent, stack: str, fetched: Sequence[FetchedFile]
) -> tuple[aws.s3.Bucket, list[aws.s3.BucketObjectv2]]:
    """The bucket (`files_bucket`, transformable) of the files too large for user data, and their uploads."""
    bucket = aws.s3.Bucket(
        owner.child_name("files"),
        **owner.transformed(
            "files_bucket",
            dict(
                bucket_prefix=f"{stack_prefix(stack)}-host-files-",
                # Only leanstack's own files live here; they are rebuilt from the repo on every `pulumi up`.
                force_destroy=True,
                tags=owner.tags,
                opts=owner.child_opts(),
            ),
        ),
    )
    # Every `pulumi up` that changes a file leaves its old version behind: keep it a month.
    replaced_files = aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="expire-replaced-files",
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=30
        ),
    )
    lock_down_bucket(owner, bucket, owner.child_opts, prefix="files-", lifecycle_rules=[replaced_files])
    uploads = [
        aws.s3.BucketObjectv2(
            owner.child_name(f"file-{Path(f.path).name}"),
            bucket=bucket.id,
            key=f.key,
            content=f.content,
            content_type="text/plain",
            server_side_encryption="AES256",
            tags=owner.tags,
            opts=owner.child_opts(),
        )
        for f in fetched
    ]
    return bucket, uploads


def seal_job(dependencies: HostDependencies, jobs: BackupJobs) -> SealJob | None:
    """The daily sealed copy of the app's config and secrets, when backup.recoveryPublicKey is set."""
    backups, application = dependencies.backups, dependencies.application
    if backups is None or dependencies.database is None or not backups.args.recovery_public_key:
        return None
    secrets = list(application.args.secrets.values()) if application is not None else []
    if application is not None and application.args.registry_secret_arn:
        # The image's pull credentials: without them a recovery cannot pull the app.
        secrets.append(application.args.registry_secret_arn)
    return SealJob(
        public_key=backups.args.recovery_public_key,
        secret_ids=tuple(sorted({v for v in secrets if v.startswith("arn:")})),
        calendar=jobs.backup_calendar,
    )


@dataclass(frozen=True)
class _Resolved:
    """The Output values the user data is rendered from, once known."""

    ipv4: Sequence[str]
    ipv6: Sequence[str]
    backup: BackupSettings | None
    host_files_bucket: str
    app: AppSettings | None
    # The load balancer's networks (the VPC's CIDR blocks) when the host sits behind it; None on a single host.
    load_balancer_cidrs: Sequence[str] | None


@dataclass(frozen=True)
class HostUserData:
    """Renders a host's cloud-init from the stack's settings and the values its dependencies resolve to."""

    stack: str
    region: str
    args: ProxyHostArgs
    site: HostSite
    dependencies: HostDependencies
    boot: HostBoot
    seal: SealJob | None
    files_bucket: aws.s3.Bucket
    ranges: pulumi.Output[cloudflare.GetIpRangesResult]

    def render(self, jobs: bool = True, behind: pulumi.Input[Sequence[str]] | None = None) -> pulumi.Output[str]:
        """The host's cloud-init; `jobs=False` leaves the backup and restore-drill timers unarmed.

        `behind`: the load balancer's networks, when the host is behind it (scale mode).
        """
        database, backups, application = (
            self.dependencies.database,
            self.dependencies.backups,
            self.dependencies.application,
        )
        backup_settings: pulumi.Output[BackupSettings | None] = pulumi.Output.from_input(None)
        if database is not None and backups is not None:
            backup_settings = self._backup_settings(database, backups, behind_load_balancer=behind is not None)
        app_settings: pulumi.Output[AppSettings | None] = pulumi.Output.from_input(None)
        if application is not None:
            app_settings = self._app_settings(application, database, runs_jobs=jobs)
        resolved = pulumi.Output.all(
            self.ranges.ipv4_cidrs,
            self.ranges.ipv6_cidrs,
            backup_settings,
            self.files_bucket.bucket,
            app_settings,
            behind,
        ).apply(
            lambda v: _Resolved(
                ipv4=v[0], ipv6=v[1], backup=v[2], host_files_bucket=v[3], app=v[4], load_balancer_cidrs=v[5]
            )
        )
        return resolved.apply(lambda r: self._user_data(r, jobs=jobs))

    def _backup_settings(
        self, database: Database, backups: BackupBucket, behind_load_balancer: bool
    ) -> pulumi.Output[BackupSettings | None]:
        storage, jobs = self.dependencies.storage, self.site.backup_jobs
        replica = storage.replica_name if storage is not None else ""
        files_sql = storage.args.drill_files_sql if storage is not None else ""
        # Where the database is (endpoint, secret) is read on the host from its SSM parameter,
        # never rendered here: a restored instance must not change the user data (the host).
        return pulumi.Output.all(backups.bucket_name, replica).apply(
            lambda v: BackupSettings(
                bucket=v[0],
                bucket_region=backups.region,
                prefix=backups.prefix,
                database_name=database.database_name,
                database_host="",
                database_port=0,
                database_user=database.username,
                database_secret_arn="",
                database_parameter=contract.database_parameter(self.stack),
                region=self.region,
                drill_target=jobs.drill_target,
                drill_database_url=jobs.drill_database_url,
                drill_starts_app=jobs.drill_starts_app,
                verify_sql=jobs.verify_sql,
                files_bucket=v[1] if files_sql else "",
                files_sql=files_sql,
                backup_calendar=jobs.backup_calendar,
                drill_calendar=jobs.drill_calendar,
                metrics_namespace=contract.metrics_namespace(self.stack),
                stack=self.stack,
                behind_load_balancer=behind_load_balancer,
            )
        )

    def _app_settings(
        self, application: App, database: Database | None, runs_jobs: bool
    ) -> pulumi.Output[AppSettings | None]:
        """The app's host files: where its config is in SSM, never the config itself (no host replacement)."""
        a, app, storage = application.args, self.site.app, self.dependencies.storage
        db: pulumi.Output[AppDatabase | None] = pulumi.Output.from_input(None)
        if database is not None:
            # The endpoint and secret are read at each start from the database's SSM parameter.
            db = pulumi.Output.from_input(
                AppDatabase(
                    host="",
                    port=0,
                    name=database.database_name,
                    user=database.username,
                    secret_arn="",
                    parameter=contract.database_parameter(self.stack),
                )
            )
        identity: pulumi.Output[tuple[str, dict[str, str]]] = pulumi.Output.from_input(("", {}))
        if storage is not None:
            identity = pulumi.Output.all(storage.app_role_arn, storage.bucket_name).apply(
                lambda v: (v[0], {"UPLOADS_BUCKET": v[1], "UPLOADS_BUCKET_REGION": self.region})
            )
        return pulumi.Output.all(application.image, db, identity).apply(
            lambda v: AppSettings(
                stack=self.stack,
                region=self.region,
                image=v[0],
                port=app.port,
                health_path=app.health_path,
                database=v[1],
                registry_secret_arn=a.registry_secret_arn,
                health_timeout_seconds=a.health_timeout_seconds,
                releases_parameter=application.releases_parameter,
                log_group=application.log_group_name,
                parameters_path=application.parameters_path,
                runs_jobs=runs_jobs,
                metrics_namespace=contract.metrics_namespace(self.stack),
                app_role_arn=v[2][0],
                stack_values=v[2][1],
            )
        )

    def _user_data(self, resolved: _Resolved, jobs: bool = True) -> str:
        params = HostParams(
            stack=self.stack,
            region=self.region,
            hostnames=tuple(self.site.hostnames),
            app_port=self.site.app.port,
            health_path=self.site.app.health_path,
            cdn_proxied=self.site.cdn_proxied,
            cloudflare_ipv4_cidrs=tuple(resolved.ipv4),
            cloudflare_ipv6_cidrs=tuple(resolved.ipv6),
            behind_load_balancer=resolved.load_balancer_cidrs is not None,
            load_balancer_cidrs=tuple(resolved.load_balancer_cidrs or ()),
            hsts_max_age_seconds=self.args.hsts_max_age_seconds,
            max_body_mb=self.args.max_body_mb,
            tls_parameter_prefix=f"{contract.parameter_root(self.stack)}/tls",
            access_log_group=contract.access_log_group(self.stack),  # created by ProxyHost
            metrics_namespace=contract.metrics_namespace(self.stack),
            backup=resolved.backup,
        )
        return self.boot.user_data(
            params,
            backup=resolved.backup,
            app=resolved.app,
            files_bucket=resolved.host_files_bucket,
            jobs=jobs,
            seal=self.seal,
        )

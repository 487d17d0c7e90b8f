"""What a host boots from, assembled in one place: the user data, its inline files, the fetch script
and unit, and the files too large for user data that travel through the host-files bucket.

`host_boot(with_backups=..., with_app=...)` returns a `HostBoot`: the fetched files (ProxyHost
uploads them) and `user_data(...)`, which renders the cloud-init document once the stack's
values (bucket names, database address) are known. ProxyHost creates AWS resources and hands
the values over; it assembles no file itself. The agent's modules (host/agent) are the fetched
files, read once (`leanstack.host.shipping.agent_modules`), so the uploaded copy is the one the
host checks, by construction; each command's short entry script is in the user data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from leanstack.host.agent import contract
from leanstack.host.backup.install import BACKUP_PACKAGES, BACKUP_UNITS, backup_host_files
from leanstack.host.backup.seal_install import SEAL_UNITS, seal_host_files
from leanstack.host.credentials.install import CREDENTIALS_UNITS, credentials_host_files
from leanstack.host.deploy.install import APP_PACKAGES, APP_UNITS, AppSettings, app_host_files
from leanstack.host.params import BackupSettings, HostFile, HostParams
from leanstack.host.render import render_user_data
from leanstack.host.shipping import agent_modules

FETCH_SCRIPT_PATH = contract.HOST_FILES_FETCH_SCRIPT_PATH
FETCH_UNIT = contract.HOST_FILES_SERVICE
FETCH_UNIT_TEXT = """[Unit]
Description=leanstack: fetch the host files too large for user data
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/leanstack-fetch-host-files

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class FetchedFile:
    """A host file too large for user data: uploaded to the host-files bucket, fetched at boot."""

    path: str
    key: str
    content: str
    mode: str = "0755"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


def fetch_script(bucket: str, region: str, files: Sequence[FetchedFile]) -> str:
    """A boot-time script that downloads each file and refuses it unless its sha256 matches."""
    lines = [
        "#!/bin/sh",
        "# leanstack: fetch the host files too large for EC2 user data, verifying each sha256.",
        "set -eu",
        "fetch() {",
        "  tmp=$(mktemp)",
        '  aws s3 cp --only-show-errors --region "$REGION" "s3://$BUCKET/$1" "$tmp"',
        '  if ! echo "$2  $tmp" | sha256sum -c --status -; then',
        '    echo "leanstack: $1 does not match its sha256; not installed" >&2',
        '    rm -f "$tmp"',
        "    exit 1",
        "  fi",
        '  install -D -m "$4" -o root -g root "$tmp" "$3"',
        '  rm -f "$tmp"',
        "}",
        f"REGION={region}",
        f"BUCKET={bucket}",
    ]
    lines += [f"fetch {f.key} {f.sha256} {f.path} {f.mode}" for f in files]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SealJob:
    """The daily sealed copy of the app's config and secrets (backup.recoveryPublicKey set)."""

    public_key: str
    # The app's Secrets Manager secrets (never the RDS-managed one); its SSM parameters are read by path.
    secret_ids: tuple[str, ...]
    calendar: str


@dataclass(frozen=True)
class HostBoot:
    """The files a host boots from; `fetched` go to the host-files bucket, the rest into user data."""

    fetched: tuple[FetchedFile, ...]

    def user_data(
        self,
        params: HostParams,
        *,
        backup: BackupSettings | None,
        app: AppSettings | None,
        files_bucket: str,
        jobs: bool = True,
        seal: SealJob | None = None,
    ) -> str:
        """The host's cloud-init; `jobs=False` leaves the backup and restore-drill timers unarmed."""
        files: list[HostFile] = []
        packages: list[str] = []
        units: list[str] = []
        if backup is not None:
            files += backup_host_files(backup)
            packages += BACKUP_PACKAGES
            # The tools are on every host (for a manual run); the timers only where jobs run.
            units += BACKUP_UNITS if jobs else ()
            if seal is not None:
                # Beside the backup: it reads backup.env for the bucket; its timer only where jobs run.
                files += seal_host_files(seal.public_key, seal.secret_ids, seal.calendar)
                units += SEAL_UNITS if jobs else ()
        if app is not None:
            files += app_host_files(app)
            packages += APP_PACKAGES
            if app.app_role_arn:
                # The app's own role, served before the app's units start (they come after it).
                files += credentials_host_files(app.app_role_arn, app.region)
                units += CREDENTIALS_UNITS
            units += APP_UNITS
        if not files:
            return render_user_data(params)
        fetched = {f.path for f in self.fetched}
        inline = [
            *(f for f in files if f.path not in fetched),
            HostFile(FETCH_SCRIPT_PATH, fetch_script(files_bucket, params.region, self.fetched), "0750"),
            HostFile(f"/etc/systemd/system/{FETCH_UNIT}", FETCH_UNIT_TEXT),
        ]
        return render_user_data(
            params,
            extra_files=inline,
            packages=packages,
            # The fetch unit first: runcmd enables units in order, so the tools are in place
            # before their timers and the app's boot unit start.
            enable_units=(FETCH_UNIT, *units),
        )


def host_boot(*, with_backups: bool, with_app: bool) -> HostBoot:
    """The boot files of a host that runs the backups (with a database and a bucket) and/or the app.

    Every such host gets the whole agent (its modules are small, and one set of files is one
    thing to check); which commands it has is the entry scripts and units in its user data.
    """
    if not (with_backups or with_app):
        return HostBoot(())
    return HostBoot(
        tuple(
            FetchedFile(module.path, f"agent/{module.path.rsplit('/', 1)[1]}", module.content, "0644")
            for module in agent_modules()
        )
    )

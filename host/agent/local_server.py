"""The drill's throw-away PostgreSQL on the host: initdb, start and stop in a work directory,
with the free-space check a restore needs."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    List,
    Optional,
)

if TYPE_CHECKING:
    pass

from .backup_settings import Connection, Settings
from .common import ConfigError, Failure, env_value, one_line
from .dumps import Backup
from .postgres import MAINTENANCE_DATABASE, major_version
from .restoring import GIB, SAFE_PATH, restore_space_needed

# ---------------------------------------------------------------------------------------
# The drill's local PostgreSQL

LOCAL_SUPERUSER = "leanstack_drill"
LOCAL_PORT = 5432


def traversable_by_all(path: str) -> bool:
    """Whether every directory up to `path` may be entered by any user (or does not exist yet)."""
    current = os.path.realpath(path)
    while True:
        if os.path.isdir(current) and not os.stat(current).st_mode & 0o001:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


class LocalServer:
    """A throw-away PostgreSQL for the drill, so that it needs neither space on nor the
    presence of the production instance: initdb in a new directory under DRILL_WORK_DIR,
    a unix socket only (no TCP) with a random password, fsync off (its data is thrown
    away), removed by `stop`. As root (a manual `sudo` run) it runs as DRILL_SERVER_USER
    (postgres), because PostgreSQL refuses to run as root."""

    def __init__(self, settings: Settings, work_dir: str) -> None:
        self.settings = settings
        self.work_dir = work_dir
        self.root: Optional[str] = None
        self.account: Optional[pwd.struct_passwd] = None
        self.version = ""

    @property
    def socket_dir(self) -> str:
        assert self.root is not None
        return os.path.join(self.root, "socket")

    def _run(self, argv: List[str], what: str, timeout: float) -> None:
        options: Dict[str, Any] = {}
        if self.account is not None:
            options = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=dict(os.environ, LC_ALL="C"),
                timeout=timeout,
                check=False,
                **options,
            )
        except subprocess.TimeoutExpired:
            raise Failure(f"{what}: timed out after {timeout:.0f} s") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
            raise Failure(f"{what}: {one_line(lines[-1]) if lines else 'exit status %d' % done.returncode}")

    def start(self, backup: Backup) -> Connection:
        if os.geteuid() == 0 and not traversable_by_all(self.work_dir):
            # A `sudo` run: StateDirectory's /var/lib/private is closed to the postgres user.
            self.work_dir = "/var/tmp"
        if not SAFE_PATH.match(self.work_dir):
            raise ConfigError(
                f"DRILL_WORK_DIR {self.work_dir!r} must be an absolute path of letters, digits and ._+@/-"
            )
        os.makedirs(self.work_dir, mode=0o755, exist_ok=True)
        needed, free = restore_space_needed(backup.manifest), shutil.disk_usage(self.work_dir).free
        if free < needed:
            raise Failure(
                f"not enough free disk for a local restore of {backup.dump_key}: {self.work_dir} has "
                f"{free / GIB:.1f} GiB free, the restore needs about {needed / GIB:.1f} GiB; free some space "
                "or set backup.drillTarget to instance"
            )
        postgres = self.settings.program("postgres")
        probe = subprocess.run([postgres, "--version"], capture_output=True, text=True, check=False)
        self.version = probe.stdout.strip()
        local_major = major_version(self.version.split("PostgreSQL)", 1)[-1])
        backup_major = major_version(str(backup.manifest.get("server_version", "")))
        if local_major is None:
            raise Failure(f"cannot tell the local PostgreSQL's version from {self.version!r}")
        if backup_major is not None and local_major < backup_major:
            raise Failure(
                f"the local PostgreSQL is {local_major} but the backup is of PostgreSQL {backup_major}: "
                f"install postgresql{backup_major}-server, or set backup.drillTarget to instance"
            )
        if os.geteuid() == 0:
            user = env_value(self.settings.env, "DRILL_SERVER_USER", "postgres")
            try:
                self.account = pwd.getpwnam(user)
            except KeyError:
                raise Failure(
                    f"running as root, the drill's PostgreSQL must run as {user}, and there is no such user"
                ) from None
        self.root = tempfile.mkdtemp(prefix="leanstack-drill-", dir=self.work_dir)
        password = secrets.token_urlsafe(24)
        password_file = os.path.join(self.root, "password")
        with open(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(password + "\n")
        # Others may reach the socket (the app container in a drill that starts it); the
        # password keeps them out.
        os.mkdir(self.socket_dir, 0o755)
        os.chmod(self.socket_dir, 0o755)
        if self.account is not None:
            for path in (self.root, self.socket_dir, password_file):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        data_dir = os.path.join(self.root, "data")
        self._run(
            [
                self.settings.program("initdb"),
                "--no-sync",
                f"--pgdata={data_dir}",
                f"--username={LOCAL_SUPERUSER}",
                f"--pwfile={password_file}",
                "--auth-local=scram-sha-256",
                "--auth-host=reject",
                "--encoding=UTF8",
                "--locale=C",
            ],
            "initdb of the drill's PostgreSQL failed",
            300,
        )
        os.unlink(password_file)
        options = " ".join(
            [
                "-c listen_addresses=''",
                f"-k {self.socket_dir}",
                f"-p {LOCAL_PORT}",
                # Thrown away afterwards: durability would only slow the restore down.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                # Index builds are most of a restore; fewer checkpoints, at up to 1 GiB of WAL
                # (counted in restore_space_needed).
                "-c maintenance_work_mem=128MB",
                "-c max_wal_size=1GB",
                "-c checkpoint_timeout=30min",
            ]
        )
        self._run(
            [
                self.settings.program("pg_ctl"),
                f"--pgdata={data_dir}",
                f"--log={os.path.join(self.root, 'server.log')}",
                f"--options={options}",
                "--wait",
                "--timeout=120",
                "start",
            ],
            "the drill's PostgreSQL did not start",
            180,
        )
        query = urllib.parse.urlencode({"host": self.socket_dir, "port": str(LOCAL_PORT)})
        url = urllib.parse.urlunsplit(("postgresql", f"{LOCAL_SUPERUSER}@", f"/{MAINTENANCE_DATABASE}", query, ""))
        return Connection(url, password, MAINTENANCE_DATABASE)

    def stop(self, warnings: List[str]) -> None:
        if self.root is None:
            return
        data_dir = os.path.join(self.root, "data")
        if os.path.isdir(data_dir):
            with contextlib.suppress(Failure):
                self._run(
                    [self.settings.program("pg_ctl"), f"--pgdata={data_dir}", "--mode=immediate", "stop"],
                    "stopping the drill's PostgreSQL failed",
                    60,
                )
        try:
            shutil.rmtree(self.root)
        except OSError as error:
            warnings.append(f"cannot remove the drill's PostgreSQL at {self.root}: {error.strerror}")
        self.root = None

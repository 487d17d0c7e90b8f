#!/usr/bin/python3
"""leanstack-backup, leanstack-restore-drill, leanstack-restore: off-site PostgreSQL
backups that restore.

    leanstack-backup                 stream pg_dump to S3, then write the manifest
    leanstack-backup restore-drill   restore the newest complete backup into a scratch
                                     database (by default on a throw-away local
                                     PostgreSQL), check it, drop it
    leanstack-backup restore [--backup STAMP] [--database leanstack_NAME]
                                     restore into a new database on the instance, check
                                     the checksum and row counts, print the next step
    leanstack-backup restore --swap [--backup STAMP] | --swap --use-restored NAME
                                     ... then maintenance page on, rename the databases
                                     (app -> app_before_restore_<time>, restored -> app),
                                     restart the app, check its health path, page off

(leanstack-restore-drill and leanstack-restore are wrappers that run these.)

Runs on Amazon Linux 2023's system Python (3.9) with only the standard library and boto3,
shelling out to pg_dump, pg_restore and psql (and initdb, pg_ctl, postgres for the local
drill). Configuration is by environment; when BACKUP_BUCKET is not set (a `sudo` run keeps
no environment) the tool reads /etc/leanstack/backup.env ($LEANSTACK_BACKUP_ENV) itself:

    DATABASE_URL                postgresql://user:password@host:port/db?sslmode=...; or
    DATABASE_SECRET_ARN         the RDS-managed secret (JSON with username and password),
      + DATABASE_HOST           with DATABASE_PORT (5432), DATABASE_NAME, DATABASE_USER
                                (default: the secret's username), DATABASE_SSLMODE (require)
    DATABASE_MAINTENANCE_NAME   the database the drill and the restore connect to on the
                                instance, never the app's (default: postgres)
    BACKUP_BUCKET, BACKUP_PREFIX
    AWS_REGION                  Secrets Manager and CloudWatch (the stack's region)
    BACKUP_BUCKET_REGION        the bucket's region (default: AWS_REGION)
    AWS_ENDPOINT_URL            honoured by botocore itself from 1.31.57 on, as are
                                AWS_ENDPOINT_URL_S3 etc. (a local S3 for tests)
    DRILL_TARGET                local (default), instance, or url: DRILL_DATABASE_URL, a
                                maintenance connection such as .../postgres
    DRILL_WORK_DIR              where the local drill's PostgreSQL lives (default /var/tmp)
    DRILL_SERVER_USER           who runs it when the drill runs as root (postgres)
    DRILL_STARTS_APP            1: start the serving release against the restored data
                                (local target; DRILL_APP_START replaces `docker run`)
    VERIFY_SQL_FILE             optional SQL run against the restored database; every row's
                                first column must be true, and there must be a row
    FILES_SQL_FILE              optional SQL run against the restored database whose rows'
                                first column are object keys the data references; a random
                                sample (FILES_SAMPLE, default 100) must exist (HeadObject)
      + FILES_BUCKET            in this bucket, the uploads' replica (FILES_BUCKET_REGION,
                                default BACKUP_BUCKET_REGION): a missing one fails the drill
    STACK, METRICS_NAMESPACE    CloudWatch dimension Stack=$STACK in namespace (Leanstack)
    PG_BIN_DIR                  where the PostgreSQL programs are (default: PATH)
    BACKUP_PART_SIZE_MIB        multipart part size, at least 5 (default 16)
    LEANSTACK_LOCK_DIR          lock directory (default: $RUNTIME_DIRECTORY, else /run/<command>)
    LEANSTACK_APP_CONFIG        the app's config (/etc/leanstack/app.json): image, health path
    LEANSTACK_MAINTENANCE,      the commands --swap runs (default: leanstack-maintenance,
      LEANSTACK_APP_RESTART     leanstack-app restart)

Passwords reach the PostgreSQL programs only through PGPASSWORD in their environment:
never argv (visible in ps), never a file. Exit 0 on success (also when another run holds
the lock); otherwise non-zero with exactly one line on stderr.
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import contextlib
import datetime
import fcntl
import functools
import hashlib
import hmac
import json
import os
import pwd
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import (
    IO,
    TYPE_CHECKING,
    AbstractSet,
    Any,
    Callable,
    Deque,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
)

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.literals import StandardUnitType
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

BACKUP_COMMAND = "leanstack-backup"
DRILL_COMMAND = "leanstack-restore-drill"
RESTORE_COMMAND = "leanstack-restore"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
STAMP_PATTERN = re.compile(r"^\d{8}T\d{6}Z$")
MANIFEST_SUFFIX = ".manifest.json"
DUMP_SUFFIX = ".dump"
DRILLS_FOLDER = "_drills"
MANIFEST_FORMAT = 1
# Published as RestoreDrillAgeDays when no successful drill report exists at all.
NO_DRILL_AGE_DAYS = 9999.0
# How many of the newest drill reports the backup reads looking for a successful one.
DRILL_REPORTS_SCANNED = 60
UPLOAD_WORKERS = 2
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
MAX_PARTS = 10000

# (metric name, value, CloudWatch unit)
MetricValue = Tuple[str, float, "StandardUnitType"]

# Exact row counts: the number of large objects on the first line, then one JSON object
# {"schema.table": rows} per user table. The counts are plain top-level queries run by
# psql's \gexec, so PostgreSQL may scan in parallel, and in the backup they run inside the
# transaction that exported pg_dump's snapshot, so both see the same data. Tables that
# belong to an extension are left out: CREATE EXTENSION recreates their contents.
ROW_COUNTS_SQL = """
SELECT count(*) FROM pg_largeobject_metadata;
SELECT format('SELECT json_build_object(%L, count(*)) FROM %I.%I',
              quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (
    SELECT 1 FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1 \\gexec
"""


# What a failed AWS call raises: a service error, a transport error, or a response that
# could not be parsed (not a BotoCoreError in botocore, e.g. an HTML error page).
AWS_ERRORS = (BotoCoreError, ClientError, ResponseParserError)


class Failure(Exception):
    """A reason the run failed, already phrased as the one line the operator reads."""


class ConfigError(Failure):
    """A missing or invalid environment variable; the message names it."""


class Interrupted(Failure):
    """SIGTERM (systemd stopping the unit): cleanup still runs, then the run fails."""


def one_line(text: str) -> str:
    return " ".join(text.split())


def describe_aws_error(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return one_line(f"{details.get('Code', 'error')}: {details.get('Message', str(error))}")
    return one_line(str(error)) or type(error).__name__


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def stamp(moment: datetime.datetime) -> str:
    return moment.strftime(STAMP_FORMAT)


def parse_stamp(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, STAMP_FORMAT).replace(tzinfo=datetime.timezone.utc)


def iso(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------------
# Configuration


def env_value(env: Mapping[str, str], name: str, default: Optional[str] = None) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if default is not None:
        return default
    raise ConfigError(f"{name} is not set")


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    text = env_value(env, name, str(default))
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {text!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, not {value}")
    return value


@dataclass(frozen=True)
class Connection:
    """A libpq connection URI without its password, and the password kept apart."""

    url: str
    password: Optional[str]
    database: str

    def child_env(self) -> Dict[str, str]:
        env = dict(os.environ)
        # PGPASSWORD only: a password in the URI would show in `ps`, a .pgpass is a file.
        env.pop("PGPASSWORD", None)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env

    @property
    def user(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.url).username or "")

    def with_user(self, user: str, password: str) -> Connection:
        parts = urllib.parse.urlsplit(self.url)
        host = parts.netloc.rsplit("@", 1)[-1]
        netloc = f"{urllib.parse.quote(user, safe='')}@{host}"
        return Connection(urllib.parse.urlunsplit(parts._replace(netloc=netloc)), password, self.database)

    def with_database(self, database: str) -> Connection:
        parts = urllib.parse.urlsplit(self.url)
        path = "/" + urllib.parse.quote(database, safe="")
        return Connection(urllib.parse.urlunsplit(parts._replace(path=path)), self.password, database)


def parse_database_url(name: str, url: str) -> Connection:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"{name} must be a postgresql:// URL")
    if not parts.hostname:
        raise ConfigError(f"{name} has no host")
    database = urllib.parse.unquote(parts.path.lstrip("/"))
    if not database:
        raise ConfigError(f"{name} has no database name")
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return Connection(urllib.parse.urlunsplit(parts._replace(netloc=netloc)), password, database)


def region_of_arn(arn: str) -> Optional[str]:
    fields = arn.split(":")
    return fields[3] if len(fields) > 5 and fields[0] == "arn" and fields[3] else None


@functools.lru_cache(maxsize=1)
def aws_session() -> boto3.session.Session:
    """One session for every client: each new session reloads botocore's service data."""
    return boto3.session.Session()


def client_config() -> Config:
    # Standard retries ride out a blip; a server that is gone fails within seconds. The
    # standard AWS_MAX_ATTEMPTS / AWS_RETRY_MODE, when set, win (botocore reads them).
    if os.environ.get("AWS_MAX_ATTEMPTS") or os.environ.get("AWS_RETRY_MODE"):
        return Config(connect_timeout=10, read_timeout=120)
    return Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=120)


@dataclass(frozen=True)
class Settings:
    env: Mapping[str, str]
    bucket: str
    prefix: str
    region: str
    bucket_region: str
    stack: str
    namespace: str
    bin_dir: Optional[str]

    @staticmethod
    def from_env(env: Mapping[str, str]) -> Settings:
        region = env_value(env, "AWS_REGION", env.get("AWS_DEFAULT_REGION", "").strip() or None)
        bin_dir = env.get("PG_BIN_DIR", "").strip() or None
        if bin_dir is not None and not os.path.isdir(bin_dir):
            raise ConfigError(f"PG_BIN_DIR {bin_dir!r} is not a directory")
        return Settings(
            env=env,
            bucket=env_value(env, "BACKUP_BUCKET"),
            prefix=env.get("BACKUP_PREFIX", "").strip().strip("/"),
            region=region,
            bucket_region=env_value(env, "BACKUP_BUCKET_REGION", region),
            stack=env_value(env, "STACK"),
            namespace=env_value(env, "METRICS_NAMESPACE", "Leanstack"),
            bin_dir=bin_dir,
        )

    def program(self, name: str) -> str:
        if self.bin_dir is not None:
            path = os.path.join(self.bin_dir, name)
            if not os.access(path, os.X_OK):
                raise ConfigError(f"PG_BIN_DIR has no {name}")
            return path
        found = shutil.which(name)
        if found is None:
            raise Failure(f"{name} is not installed (or set PG_BIN_DIR)")
        return found

    def s3(self, region: Optional[str] = None) -> S3Client:
        """The tool's one S3 client factory (the backup bucket's region unless `region`)."""
        client = aws_session().client("s3", region_name=region or self.bucket_region, config=client_config())
        create_only_if_absent(client)
        return client

    def cloudwatch(self) -> CloudWatchClient:
        return aws_session().client("cloudwatch", region_name=self.region, config=client_config())

    def key(self, *names: str) -> str:
        return "/".join(part for part in (self.prefix, *names) if part)

    def stack_key(self, stack: str, *names: str) -> str:
        """<prefix>/<stack>/...: each stack writes, and reads back, its own folder only."""
        return self.key(stack, *names)

    def database_name(self) -> str:
        """The source database's name, which names its backups' folder."""
        url = self.env.get("DATABASE_URL", "").strip()
        name = parse_database_url("DATABASE_URL", url).database if url else env_value(self.env, "DATABASE_NAME")
        if "/" in name:
            raise ConfigError("DATABASE_NAME must not contain '/'")
        return name

    def source_connection(self) -> Connection:
        """The application database; the password comes from DATABASE_URL or the secret."""
        url = self.env.get("DATABASE_URL", "").strip()
        if url:
            return parse_database_url("DATABASE_URL", url)
        arn = env_value(self.env, "DATABASE_SECRET_ARN")
        host = env_value(self.env, "DATABASE_HOST")
        port = env_int(self.env, "DATABASE_PORT", 5432, 1, 65535)
        sslmode = env_value(self.env, "DATABASE_SSLMODE", "require")
        database = self.database_name()
        secret = self.read_secret(arn)
        user = self.env.get("DATABASE_USER", "").strip() or secret.get("username", "")
        password = secret.get("password")
        if not user or not password:
            raise Failure("the secret in DATABASE_SECRET_ARN has no username or password")
        query = urllib.parse.urlencode({"sslmode": sslmode, "application_name": BACKUP_COMMAND})
        netloc = f"{urllib.parse.quote(user, safe='')}@{host}:{port}"
        path = "/" + urllib.parse.quote(database, safe="")
        return Connection(urllib.parse.urlunsplit(("postgresql", netloc, path, query, "")), password, database)

    def read_secret(self, arn: str) -> Dict[str, str]:
        client = aws_session().client(
            "secretsmanager", region_name=region_of_arn(arn) or self.region, config=client_config()
        )
        try:
            text = client.get_secret_value(SecretId=arn).get("SecretString", "")
        except AWS_ERRORS as error:
            raise Failure(f"cannot read the database secret: {describe_aws_error(error)}") from None
        try:
            secret = json.loads(text)
        except ValueError:
            raise Failure("the database secret is not JSON") from None
        if not isinstance(secret, dict):
            raise Failure("the database secret is not a JSON object")
        return {str(key): str(value) for key, value in secret.items()}


# ---------------------------------------------------------------------------------------
# Locking, metrics, child processes


def acquire_lock(env: Mapping[str, str], command: str) -> Optional[int]:
    """An exclusive flock on <lock dir>/<command>.lock; None when another run holds it."""
    runtime = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    lock_dir = env.get("LEANSTACK_LOCK_DIR", "").strip() or runtime or f"/run/{command}"
    path = os.path.join(lock_dir, f"{command}.lock")
    try:
        os.makedirs(lock_dir, mode=0o755, exist_ok=True)
        # Read-only is enough for flock, so a lock file left by root does not lock out the
        # unit's dynamic user.
        descriptor = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise ConfigError(f"cannot open lock file {path} (set LEANSTACK_LOCK_DIR): {error.strerror}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


class Metrics:
    """CloudWatch metrics in one namespace with the one dimension Stack; failures are warnings."""

    def __init__(self, settings: Settings, warnings: List[str]) -> None:
        self.settings = settings
        self.warnings = warnings

    def publish(self, values: List[MetricValue]) -> None:
        now = utc_now()
        data: List[MetricDatumTypeDef] = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "Stack", "Value": self.settings.stack}],
                "Timestamp": now,
                "Value": float(value),
                "Unit": unit,
            }
            for name, value, unit in values
        ]
        try:
            self.settings.cloudwatch().put_metric_data(Namespace=self.settings.namespace, MetricData=data)
        except Exception as error:  # whatever it is, metrics never fail the run itself
            names = ", ".join(name for name, _, _ in values)
            self.warnings.append(f"publishing metrics ({names}) failed: {describe_aws_error(error)}")


class StderrTail:
    """Drains a child's stderr in a thread (so it never blocks) and keeps the last lines."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: Deque[str] = collections.deque(maxlen=20)
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self.lines.append(line)

    def last(self, default: str) -> str:
        self._thread.join(timeout=5)
        # The first error line says why; pg_restore's last line is only a summary count.
        errors = [line for line in self.lines if "error" in line.lower() or "fatal" in line.lower()]
        chosen = errors[0] if errors else (self.lines[-1] if self.lines else default)
        return one_line(chosen)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


class PsqlSession:
    """One psql process held open over pipes, so that a transaction spans several queries."""

    SENTINEL = "--leanstack-end-of-result--"

    def __init__(self, settings: Settings, connection: Connection, what: str) -> None:
        self.what = what
        self.connection = connection
        self.process = subprocess.Popen(
            [
                settings.program("psql"),
                "--no-psqlrc",
                "--quiet",
                "--no-align",
                "--tuples-only",
                "--no-password",
                "--set=ON_ERROR_STOP=1",
                f"--dbname={connection.url}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=connection.child_env(),
        )
        assert self.process.stderr is not None
        self.stderr = StderrTail(self.process.stderr)

    def query(self, sql: str, what: Optional[str] = None) -> List[str]:
        """Run SQL; returns its output lines. psql stops at the first error (ON_ERROR_STOP).

        `what` names the step in the failure message (default: the session's)."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(f"{sql}\n\\echo {self.SENTINEL}\n".encode())
            stdin.flush()
        except BrokenPipeError:
            pass
        lines: List[str] = []
        for raw in stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line == self.SENTINEL:
                return lines
            lines.append(line)
        self.process.wait()
        raise Failure(f"{what or self.what}: {self.stderr.last('psql exited')}")

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop_process(self.process)


def run_psql(settings: Settings, connection: Connection, what: str, sql: str) -> List[str]:
    session = PsqlSession(settings, connection, what)
    try:
        return session.query(sql)
    finally:
        session.close()


def parse_row_counts(lines: List[str]) -> Dict[str, Any]:
    """{"tables": {name: rows}, "large_objects": n} from ROW_COUNTS_SQL's output."""
    try:
        large_objects = int(lines[0])
        tables: Dict[str, int] = {}
        for line in lines[1:]:
            if line.strip():
                tables.update({str(name): int(rows) for name, rows in json.loads(line).items()})
    except (IndexError, ValueError, AttributeError):
        raise Failure("unexpected row count output from psql") from None
    return {"tables": tables, "large_objects": large_objects}


# ---------------------------------------------------------------------------------------
# Upload


def create_only_if_absent(client: S3Client) -> None:
    """Every object this client creates carries `If-None-Match: *`: S3 refuses (412) a key
    that exists, so no dump, manifest or report is ever replaced by a new version.

    Sent as a header on every PutObject and CompleteMultipartUpload rather than through the
    IfNoneMatch parameter, which only botocore releases from late 2024 know: the backup
    bucket's policy denies a create without the header, so a host whose python3-boto3 predates
    the parameter must still send it, or every backup would be refused.
    """

    def add_header(request: Any, **_: Any) -> None:
        request.headers["If-None-Match"] = "*"

    for operation in ("PutObject", "CompleteMultipartUpload"):
        client.meta.events.register(f"before-sign.s3.{operation}", add_header)


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


class MultipartUpload:
    """Streams parts to S3 with two uploads in flight; completes with If-None-Match: *.

    The bucket has Object Lock, so every part carries its SHA-256 (S3 requires an
    integrity checksum on writes to such a bucket, and checks it). The completed object's
    composite checksum is compared with the one computed here. Nothing is visible as an
    object until `complete`; `abort` removes the parts on any failure.
    """

    def __init__(self, client: S3Client, bucket: str, key: str) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.upload_id: Optional[str] = None
        self.digests: List[bytes] = []
        self.completed: List[CompletedPartTypeDef] = []
        self.in_flight: Deque[Tuple[int, concurrent.futures.Future[CompletedPartTypeDef]]] = collections.deque()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=UPLOAD_WORKERS)

    def _start(self) -> str:
        try:
            created = self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                ChecksumAlgorithm="SHA256",
                ContentType="application/octet-stream",
            )
        except AWS_ERRORS as error:
            raise Failure(
                f"cannot start the upload to s3://{self.bucket}/{self.key}: {describe_aws_error(error)}"
            ) from None
        return created["UploadId"]

    def _upload(self, upload_id: str, number: int, data: bytes, digest: bytes) -> CompletedPartTypeDef:
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=b64(digest),
        )
        return {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": b64(digest)}

    def _collect_oldest(self) -> None:
        number, future = self.in_flight.popleft()
        try:
            self.completed.append(future.result())
        except AWS_ERRORS as error:
            raise Failure(f"upload of part {number} failed: {describe_aws_error(error)}") from None

    def add_part(self, data: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self._start()
        number = len(self.digests) + 1
        if number > MAX_PARTS:
            raise Failure(f"the dump needs more than {MAX_PARTS} parts: raise BACKUP_PART_SIZE_MIB")
        digest = hashlib.sha256(data).digest()
        self.digests.append(digest)
        # Bounded: memory stays at a few parts whatever the database's size.
        while len(self.in_flight) >= UPLOAD_WORKERS:
            self._collect_oldest()
        self.in_flight.append((number, self.pool.submit(self._upload, self.upload_id, number, data, digest)))

    def complete(self, size: int) -> None:
        while self.in_flight:
            self._collect_oldest()
        assert self.upload_id is not None
        self.completed.sort(key=lambda part: part["PartNumber"])
        try:
            # If-None-Match: * goes with it (create_only_if_absent): never a second version.
            done = self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.completed},
            )
        except AWS_ERRORS as error:
            raise Failure(f"cannot complete the upload: {describe_aws_error(error)}") from None
        self.upload_id = None
        expected = f"{b64(hashlib.sha256(b''.join(self.digests)).digest())}-{len(self.digests)}"
        stored = done.get("ChecksumSHA256")
        if stored is not None and stored != expected:
            raise Failure(f"checksum mismatch after upload: S3 has {stored}, expected {expected}")
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key)
        except AWS_ERRORS as error:
            raise Failure(f"cannot check the uploaded dump: {describe_aws_error(error)}") from None
        if head["ContentLength"] != size:
            raise Failure(f"size mismatch after upload: S3 has {head['ContentLength']} bytes, expected {size}")

    def abort(self) -> Optional[str]:
        """Abort after in-flight parts settle; returns why it could not be aborted, if so."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.upload_id is None:
            return None
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except AWS_ERRORS as error:
            return (
                f"the incomplete upload {self.upload_id} could not be aborted ({describe_aws_error(error)}); "
                "it is not an object and the bucket's lifecycle rule removes it"
            )
        return None


def put_json(client: S3Client, bucket: str, key: str, document: Mapping[str, Any]) -> None:
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document, indent=2, sort_keys=True).encode("utf-8") + b"\n",
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )


def read_exactly(stream: IO[bytes], size: int) -> bytes:
    chunks: List[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def list_keys(client: S3Client, bucket: str, prefix: str) -> List[str]:
    keys: List[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def newest_successful_drill_age_days(settings: Settings, client: S3Client) -> float:
    """Days since the newest successful drill of this stack. Reports dated in the future are
    passed over: a planted `_drills/29991231T000000Z.json` must not silence the stale-drill
    alarm. Reports in the layout before per-stack folders (<prefix>/_drills/) count when
    they name this stack."""
    latest_trusted = utc_now() + datetime.timedelta(seconds=CLOCK_SKEW_SECONDS)
    reports: List[Tuple[str, str]] = []
    for folder in (settings.stack_key(settings.stack, DRILLS_FOLDER) + "/", settings.key(DRILLS_FOLDER) + "/"):
        for key in list_keys(client, settings.bucket, folder):
            name = key[len(folder) :]
            if key.endswith(".json") and STAMP_PATTERN.match(name[:16]) and parse_stamp(name[:16]) <= latest_trusted:
                reports.append((name, key))
    for _, key in sorted(reports, reverse=True)[:DRILL_REPORTS_SCANNED]:
        body = client.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
        try:
            report = json.loads(body)
            if report.get("result") == "success" and report.get("stack", settings.stack) == settings.stack:
                finished = parse_iso(str(report["finished_at"]))
                if finished > latest_trusted:
                    continue
                return max(0.0, (utc_now() - finished).total_seconds() / 86400.0)
        except (ValueError, KeyError, AttributeError, TypeError):
            continue
    return NO_DRILL_AGE_DAYS


# ---------------------------------------------------------------------------------------
# leanstack-backup


def backup(settings: Settings, warnings: List[str]) -> str:
    part_size = env_int(settings.env, "BACKUP_PART_SIZE_MIB", 16, 5, 5120) * 1024 * 1024
    metrics = Metrics(settings, warnings)
    s3 = settings.s3()
    started = time.monotonic()
    try:
        database = settings.database_name()
        source = settings.source_connection()
        key = settings.stack_key(settings.stack, database, stamp(utc_now()) + DUMP_SUFFIX)
        manifest = dump_to_s3(settings, s3, source, key, part_size)
    except Failure:
        failure_metrics: List[MetricValue] = [("BackupFailure", 1, "Count")]
        with contextlib.suppress(*AWS_ERRORS):
            failure_metrics.append(("RestoreDrillAgeDays", newest_successful_drill_age_days(settings, s3), "None"))
        metrics.publish(failure_metrics)
        raise
    manifest_key = key[: -len(DUMP_SUFFIX)] + MANIFEST_SUFFIX
    manifest["duration_seconds"] = round(time.monotonic() - started, 3)
    try:
        put_json(s3, settings.bucket, manifest_key, manifest)
    except AWS_ERRORS as error:
        metrics.publish([("BackupFailure", 1, "Count")])
        raise Failure(
            "the dump was uploaded but its manifest was not, so it will never be used: " + describe_aws_error(error)
        ) from None
    duration = time.monotonic() - started
    try:
        drill_age_days = newest_successful_drill_age_days(settings, s3)
    except AWS_ERRORS as error:
        warnings.append(f"cannot read the drill reports: {describe_aws_error(error)}")
        drill_age_days = NO_DRILL_AGE_DAYS
    metrics.publish(
        [
            ("BackupSuccess", 1, "Count"),
            ("BackupDurationSeconds", duration, "Seconds"),
            ("BackupSizeBytes", float(manifest["size_bytes"]), "Bytes"),
            ("BackupLastSuccessTimestamp", time.time(), "None"),
            ("RestoreDrillAgeDays", drill_age_days, "None"),
        ]
    )
    return (
        f"backup ok: s3://{settings.bucket}/{key} ({manifest['size_bytes']} bytes, "
        f"{len(manifest['row_counts'])} tables) in {duration:.1f} s"
    )


def dump_to_s3(settings: Settings, s3: S3Client, source: Connection, key: str, part_size: int) -> Dict[str, Any]:
    started_at = utc_now()
    session = PsqlSession(settings, source, "cannot connect to the database")
    try:
        # A read-only REPEATABLE READ transaction exports its snapshot; pg_dump imports it,
        # and the row counts run in this transaction, so both see the same data.
        lines = session.query(
            "SET row_security = off;\n"
            # The counts run alongside pg_dump: one backend, not a parallel scan that
            # would take the CPU pg_dump needs (on RDS, the server's CPU).
            "SET max_parallel_workers_per_gather = 0;\n"
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n"
            "SELECT pg_export_snapshot() || '|' || current_setting('server_version') || '|' || "
            "pg_encoding_to_char(encoding) || '|' || pg_database_size(oid) "
            "FROM pg_database WHERE datname = current_database();"
        )
        snapshot, server_version, encoding, database_size = lines[0].split("|", 3)
        dump = subprocess.Popen(
            [
                settings.program("pg_dump"),
                "--format=custom",
                f"--snapshot={snapshot}",
                "--no-password",
                "--lock-wait-timeout=300s",
                f"--dbname={source.url}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=source.child_env(),
        )
        assert dump.stdout is not None and dump.stderr is not None
        dump_errors = StderrTail(dump.stderr)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as counter:
            # Counting overlaps the dump: both only read, in the same snapshot.
            counts = counter.submit(lambda: parse_row_counts(session.query(ROW_COUNTS_SQL, "counting rows failed")))
            upload = MultipartUpload(s3, settings.bucket, key)
            try:
                whole = hashlib.sha256()
                size = 0
                while True:
                    part = read_exactly(dump.stdout, part_size)
                    if not part:
                        break
                    whole.update(part)
                    size += len(part)
                    upload.add_part(part)
                if dump.wait() != 0:
                    raise Failure(f"pg_dump failed: {dump_errors.last('exit status %d' % dump.returncode)}")
                if size == 0:
                    raise Failure("pg_dump wrote nothing")
                counted = counts.result()
                upload.complete(size)
            except BaseException as error:
                stop_process(dump)
                # Ends a count still running in the other thread, so the pool can close.
                stop_process(session.process)
                abort_problem = upload.abort()
                if abort_problem is not None and isinstance(error, Failure):
                    raise Failure(f"{error}; {abort_problem}") from None
                raise
            upload.pool.shutdown(wait=True)
        session.query("COMMIT;", "the snapshot transaction failed")
    finally:
        session.close()
    finished_at = utc_now()
    return {
        "format": MANIFEST_FORMAT,
        "stack": settings.stack,
        "database": source.database,
        "dump_key": key,
        "sha256": whole.hexdigest(),
        "size_bytes": size,
        "server_version": server_version,
        "encoding": encoding,
        # What a restore needs on disk, roughly: the drill checks free space against it.
        "database_size_bytes": int(database_size),
        "pg_dump_version": pg_program_version(settings, "pg_dump"),
        "snapshot": snapshot,
        "started_at": iso(started_at),
        "finished_at": iso(finished_at),
        "row_counts": counted["tables"],
        "large_objects": counted["large_objects"],
        "host": socket.gethostname(),
    }


def pg_program_version(settings: Settings, name: str) -> str:
    done = subprocess.run([settings.program(name), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


# ---------------------------------------------------------------------------------------
# Choosing a backup

# A backup stamped later than now plus this is not trusted (planted, or written by a host
# whose clock is wrong): it is skipped and reported, never restored.
CLOCK_SKEW_SECONDS = 300
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
ENCODING_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")
MANIFEST_REQUIRED = ("stack", "sha256", "size_bytes", "row_counts", "started_at")
# A backup whose rows (all tables' rows and large objects) or size are below this share of the
# previous complete backup's is not restored unless named (--backup): an emptied database
# backed up by its nightly run, or the new, empty database of a recovery host.
FAR_BELOW_SHARE = 0.5


@dataclass(frozen=True)
class Backup:
    stamp: str
    dump_key: str
    manifest_key: str
    manifest: Dict[str, Any]

    @property
    def started_at(self) -> datetime.datetime:
        return parse_iso(str(self.manifest["started_at"]))

    @property
    def rows(self) -> int:
        return sum(int(rows) for rows in dict(self.manifest["row_counts"]).values()) + int(
            self.manifest.get("large_objects", 0)
        )

    @property
    def size_bytes(self) -> int:
        return int(self.manifest["size_bytes"])


def shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_manifest(key: str, manifest: Any, stack: str) -> Dict[str, Any]:
    """The manifest when every field the tools read has the right type and it names `stack`
    as the stack that wrote it; otherwise a Failure naming the field.
    A manifest is a file anyone with the host's role could have written."""

    def unusable(problem: str) -> Failure:
        return Failure(f"manifest {key} is unusable: {problem}")

    if not isinstance(manifest, dict):
        raise unusable("not a JSON object")
    missing = [name for name in MANIFEST_REQUIRED if name not in manifest]
    if missing:
        raise unusable(f"it lacks {', '.join(missing)}")
    if manifest["stack"] != stack:
        raise unusable(f"it was written by stack {shown(manifest['stack'])}, not {stack}")
    if not isinstance(manifest["sha256"], str) or not SHA256_PATTERN.match(manifest["sha256"]):
        raise unusable(f"sha256 is {shown(manifest['sha256'])}, not 64 hex digits")
    if not is_count(manifest["size_bytes"]) or manifest["size_bytes"] == 0:
        raise unusable(f"size_bytes is {shown(manifest['size_bytes'])}, not a positive integer")
    started = manifest["started_at"]
    try:
        moment = parse_iso(started) if isinstance(started, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise unusable(f"started_at is {shown(started)}, not a UTC time such as 2026-01-31T03:30:00Z")
    counts = manifest["row_counts"]
    if not isinstance(counts, dict) or not all(is_count(rows) for rows in counts.values()):
        raise unusable(f"row_counts is {shown(counts)}, not an object of table names and row counts")
    for name in ("large_objects", "database_size_bytes"):
        if name in manifest and not is_count(manifest[name]):
            raise unusable(f"{name} is {shown(manifest[name])}, not a count")
    if "encoding" in manifest and not (
        isinstance(manifest["encoding"], str) and ENCODING_PATTERN.match(manifest["encoding"])
    ):
        raise unusable(f"encoding is {shown(manifest['encoding'])}, not an encoding name")
    if "server_version" in manifest and not isinstance(manifest["server_version"], str):
        raise unusable(f"server_version is {shown(manifest['server_version'])}, not text")
    return manifest


def load_backup(settings: Settings, s3: S3Client, stack: str, keys: AbstractSet[str], candidate: Candidate) -> Backup:
    folder, backup_stamp = candidate.folder, candidate.stamp
    dump_key, manifest_key = folder + backup_stamp + DUMP_SUFFIX, folder + backup_stamp + MANIFEST_SUFFIX
    if dump_key not in keys:
        raise Failure(f"manifest {manifest_key} has no dump next to it")
    try:
        manifest = json.loads(s3.get_object(Bucket=settings.bucket, Key=manifest_key)["Body"].read())
    except AWS_ERRORS as error:
        raise Failure(f"cannot read {manifest_key}: {describe_aws_error(error)}") from None
    except ValueError:
        raise Failure(f"manifest {manifest_key} is unusable: not JSON") from None
    return Backup(backup_stamp, dump_key, manifest_key, check_manifest(manifest_key, manifest, stack))


@dataclass(frozen=True)
class Candidate:
    stamp: str
    folder: str


def backup_folders(settings: Settings, stack: str, database: str) -> Tuple[str, str]:
    """The stack's own folder, <prefix>/<stack>/<database>/, and the folder of the layout
    before per-stack folders, <prefix>/<database>/, read as a fallback: its manifests count
    only when they name `stack`, as every manifest since the first release does."""
    return settings.stack_key(stack, database) + "/", settings.key(database) + "/"


def list_candidates(settings: Settings, s3: S3Client, folders: Sequence[str]) -> Tuple[List[Candidate], Set[str]]:
    """Every manifest stamp in the folders, newest first (the stack's own folder first on a
    tie), and all keys found."""
    keys: Set[str] = set()
    candidates: List[Candidate] = []
    for folder in folders:
        try:
            found = list_keys(s3, settings.bucket, folder)
        except AWS_ERRORS as error:
            raise Failure(f"cannot list s3://{settings.bucket}/{folder}: {describe_aws_error(error)}") from None
        keys.update(found)
        for key in found:
            name = key[len(folder) : -len(MANIFEST_SUFFIX)]
            if key.endswith(MANIFEST_SUFFIX) and STAMP_PATTERN.match(name):
                candidates.append(Candidate(name, folder))
    order = {folder: rank for rank, folder in enumerate(folders)}
    candidates.sort(key=lambda candidate: (candidate.stamp, -order[candidate.folder]), reverse=True)
    return candidates, keys


def choose_backup(
    settings: Settings,
    s3: S3Client,
    database: str,
    skipped: List[str],
    wanted: Optional[str] = None,
    skip_unusable: bool = False,
    stack: Optional[str] = None,
) -> Backup:
    """The newest complete backup (a dump with its manifest) of `stack` (default: this host's),
    or the one stamped `wanted`.

    Backups dated in the future are skipped and listed in `skipped`: the host's role may
    write under its prefix, so a planted `29991231T000000Z` would otherwise win every time,
    and Object Lock keeps it there. A dump without a manifest is incomplete and ignored; a
    manifest written by another stack is unusable. The drill fails on an unusable newest
    manifest (it is what a restore would pick); the restore (`skip_unusable`) passes over it
    to the newest usable one and says so.
    """
    stack = stack or settings.stack
    folders = backup_folders(settings, stack, database)
    candidates, keys = list_candidates(settings, s3, folders)
    where = f"s3://{settings.bucket}/{folders[0]} (or {folders[1]})"
    if wanted is not None:
        named = [candidate for candidate in candidates if candidate.stamp == wanted]
        if not named:
            raise Failure(f"no backup {wanted} under {where} (a dump and its manifest)")
        return load_backup(settings, s3, stack, keys, named[0])
    latest_trusted = utc_now() + datetime.timedelta(seconds=CLOCK_SKEW_SECONDS)
    for candidate in candidates:
        if parse_stamp(candidate.stamp) > latest_trusted:
            skipped.append(f"skipped {candidate.folder}{candidate.stamp}: dated in the future (now {iso(utc_now())})")
            continue
        try:
            chosen = load_backup(settings, s3, stack, keys, candidate)
        except Failure as problem:
            if not skip_unusable:
                raise
            skipped.append(f"skipped {problem}")
            continue
        if chosen.started_at > latest_trusted:
            skipped.append(f"skipped {chosen.manifest_key}: its started_at is in the future")
            continue
        return chosen
    more = f" ({len(skipped)} skipped)" if skipped else ""
    raise Failure(f"no complete backup of stack {stack} under {where}{more}")


def previous_backup(settings: Settings, s3: S3Client, stack: str, database: str, chosen: Backup) -> Optional[Backup]:
    """The newest complete, usable backup of `stack` older than `chosen`, if any."""
    candidates, keys = list_candidates(settings, s3, backup_folders(settings, stack, database))
    for candidate in candidates:
        if candidate.stamp >= chosen.stamp:
            continue
        try:
            return load_backup(settings, s3, stack, keys, candidate)
        except Failure:
            continue
    return None


def check_not_far_below(chosen: Backup, previous: Optional[Backup], from_stack_hint: str) -> None:
    """Refuse a backup with no rows, or with rows or size far below the previous complete
    backup's: a nightly run after the data was lost, or a recovery host's empty database."""
    named = f"name it to restore it anyway: --backup {chosen.stamp}"
    if chosen.rows == 0:
        raise Failure(f"refusing {chosen.dump_key}: it holds no rows; {named}{from_stack_hint}")
    if previous is None:
        return
    if chosen.rows < previous.rows * FAR_BELOW_SHARE or chosen.size_bytes < previous.size_bytes * FAR_BELOW_SHARE:
        raise Failure(
            f"refusing {chosen.dump_key}: {chosen.rows} rows and {chosen.size_bytes} bytes, far below the previous "
            f"complete backup {previous.dump_key} ({previous.rows} rows, {previous.size_bytes} bytes); "
            f"restore that one with --backup {previous.stamp}, or {named}{from_stack_hint}"
        )


# ---------------------------------------------------------------------------------------
# Scratch and restored databases

# Every database the tools create starts with `leanstack_` (stack config refuses app
# database names that do), and carries one of these comments (COMMENT ON DATABASE). The
# drill drops only databases that match its name pattern AND carry its mark AND are not
# the source's: a look-alike name alone is never enough.
DRILL_MARK = "leanstack-restore-drill scratch database"
RESTORE_MARK = "leanstack-restore: "
SCRATCH_NAME_PATTERN = r"^leanstack_drill_[0-9]{8}t[0-9]{6}z_[0-9a-f]+$"
RESTORED_NAME_PATTERN = re.compile(r"^leanstack_[a-z0-9_]{1,53}$")
DATABASE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,63}$")
# One drill at a time per PostgreSQL server, whichever machine runs it: a session-level
# advisory lock, released by PostgreSQL when the drill's session ends, even on SIGKILL.
DRILL_LOCK_KEY = int.from_bytes(hashlib.sha256(b"leanstack-restore-drill").digest()[:8], "big", signed=True)
MAINTENANCE_DATABASE = "postgres"


class Busy(Exception):
    """Another run holds the lock: nothing was done, and that is not a failure."""


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def maintenance_connection(settings: Settings) -> Connection:
    """The source instance, connected to its maintenance database, never the app's: the
    tools must work when the app's database is gone."""
    name = env_value(settings.env, "DATABASE_MAINTENANCE_NAME", MAINTENANCE_DATABASE)
    return settings.source_connection().with_database(name)


def create_marked_database(
    settings: Settings, session: PsqlSession, name: str, encoding: str, mark: str, restorer: Restorer
) -> None:
    session.query(
        f"CREATE DATABASE {quote_identifier(name)}{restorer.owner_clause()} TEMPLATE template0 "
        f"ENCODING {quote_literal(encoding)};",
        f"cannot create the database {name}",
    )
    session.query(f"COMMENT ON DATABASE {quote_identifier(name)} IS {quote_literal(mark)};", f"cannot mark {name}")


def drop_leftover_scratch_databases(session: PsqlSession, source_name: str, warnings: List[str]) -> None:
    """Drop the scratch databases a killed drill (SIGKILL, reboot) left: full copies of
    production data. Only marked ones, never the source's name; the advisory lock means no
    other drill is using one."""
    listed = session.query(
        "SELECT d.datname || CASE WHEN shobj_description(d.oid, 'pg_database') = "
        f"{quote_literal(DRILL_MARK)} THEN '|marked' ELSE '|unmarked' END FROM pg_database d "
        f"WHERE d.datname ~ {quote_literal(SCRATCH_NAME_PATTERN)} ORDER BY 1;",
        "cannot list databases",
    )
    for line in (line.strip() for line in listed if line.strip()):
        name, _, marked = line.rpartition("|")
        if marked != "marked" or name == source_name:
            warnings.append(f"left {name} alone: its name looks like a drill's, but the drill did not mark it")
            continue
        session.query(
            f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE);",
            f"cannot drop the leftover scratch database {name}",
        )
        warnings.append(f"dropped the scratch database {name} an interrupted drill had left")


DOWNLOAD_HEADROOM_BYTES = 64 * 1024 * 1024


@contextlib.contextmanager
def verified_dump(settings: Settings, s3: S3Client, backup: Backup, work_dir: str) -> Iterator[str]:
    """The dump, downloaded to a private temporary file and checked against its manifest's
    sha256 and size, before any byte of it reaches pg_restore: a tampered dump runs nothing.
    Removed afterwards. Needs free disk of the dump's (compressed) size; checked first."""
    if not SAFE_PATH.match(work_dir):
        raise ConfigError(f"the work directory {work_dir!r} must be an absolute path of letters, digits and ._+@/-")
    os.makedirs(work_dir, mode=0o755, exist_ok=True)
    needed, free = backup.size_bytes + DOWNLOAD_HEADROOM_BYTES, shutil.disk_usage(work_dir).free
    if free < needed:
        raise Failure(
            f"not enough free disk to download {backup.dump_key}: {work_dir} has {free / GIB:.1f} GiB free, "
            f"the dump needs {needed / GIB:.1f} GiB; free some space (or set RESTORE_WORK_DIR)"
        )
    directory = tempfile.mkdtemp(prefix="leanstack-dump-", dir=work_dir)
    path = os.path.join(directory, "backup.dump")
    try:
        whole = hashlib.sha256()
        size = 0
        try:
            body = s3.get_object(Bucket=settings.bucket, Key=backup.dump_key)["Body"]
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
                for chunk in body.iter_chunks(DOWNLOAD_CHUNK_BYTES):
                    whole.update(chunk)
                    size += len(chunk)
                    if size > backup.size_bytes:
                        break
                    handle.write(chunk)
        except (*AWS_ERRORS, OSError) as error:
            raise Failure(f"download of {backup.dump_key} failed: {describe_aws_error(error)}") from None
        expected_sha = str(backup.manifest["sha256"])
        if whole.hexdigest() != expected_sha or size != backup.size_bytes:
            more = "+" if size > backup.size_bytes else ""
            raise Failure(
                f"checksum mismatch for {backup.dump_key}: sha256 {whole.hexdigest()} ({size}{more} bytes), "
                f"manifest says {expected_sha} ({backup.size_bytes} bytes); nothing was restored"
            )
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_pg_restore(settings: Settings, dump_path: str, into: Connection) -> None:
    """pg_restore of a verified dump file, connected as `into`'s role (restricted_role)."""
    # A file, unlike a pipe, lets pg_restore build indexes in parallel.
    jobs = max(1, min(4, os.cpu_count() or 1))
    done = subprocess.run(
        [
            settings.program("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--no-password",
            f"--jobs={jobs}",
            f"--dbname={into.url}",
            dump_path,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=into.child_env(),
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
        chosen = errors[0] if errors else (lines[-1] if lines else f"exit status {done.returncode}")
        raise Failure(f"pg_restore failed: {one_line(chosen)}")


# A role with any of these can run programs or read and write files as the database server's
# OS user (COPY ... TO PROGRAM), or make roles that can: a dump is never restored as one.
POWERFUL_ROLE_SQL = (
    "SELECT (r.rolsuper OR r.rolcreaterole"
    " OR pg_has_role(r.oid, 'pg_execute_server_program', 'MEMBER')"
    " OR pg_has_role(r.oid, 'pg_read_server_files', 'MEMBER')"
    " OR pg_has_role(r.oid, 'pg_write_server_files', 'MEMBER'))::text"
    " FROM pg_roles r WHERE r.rolname = current_user;"
)
RESTORER_PREFIX = "leanstack_restorer_"
RESTORER_MARK = "leanstack: the role one restore or drill restores as; dropped when it ends"
SCRAM_ITERATIONS = 4096


def scram_verifier(password: str) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores, computed here so that the password itself
    is in no statement the server could log."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


@dataclass(frozen=True)
class Restorer:
    """Who a dump is restored as: `role` (created for this run) or, when `role` is None, the
    session's own role, which has none of the powers in POWERFUL_ROLE_SQL."""

    role: Optional[str]
    connection: Connection

    def owner_clause(self) -> str:
        return f" OWNER {quote_identifier(self.role)}" if self.role else ""


def restricted_role(session: PsqlSession) -> Restorer:
    """A role to restore as that cannot run programs on the server, read or write its files,
    or create roles: the session's own role when it is such a role (the app's own role on an
    instance where it owns the objects); else a new LOGIN role with a random password and
    nothing else, made by the session's role (a superuser, or RDS's master with CREATEROLE)
    and granted to it, so that it can own and later drop what the new role made."""
    powerful = session.query(POWERFUL_ROLE_SQL, "cannot read the restoring role's attributes")
    if powerful[:1] == ["false"]:
        return Restorer(None, session.connection)
    name = f"{RESTORER_PREFIX}{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(24)
    session.query(
        f"CREATE ROLE {quote_identifier(name)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
        f"NOREPLICATION NOBYPASSRLS PASSWORD {quote_literal(scram_verifier(password))};\n"
        f"COMMENT ON ROLE {quote_identifier(name)} IS {quote_literal(RESTORER_MARK)};\n"
        f"GRANT {quote_identifier(name)} TO CURRENT_USER;",
        "cannot create the role to restore as",
    )
    return Restorer(name, session.connection.with_user(name, password))


def drop_restorer(session: PsqlSession, restorer: Restorer, warnings: List[str]) -> None:
    if restorer.role is None:
        return
    try:
        session.query(f"DROP ROLE IF EXISTS {quote_identifier(restorer.role)};", f"cannot drop {restorer.role}")
    except Failure as problem:
        warnings.append(str(problem))


def compare_row_counts(manifest: Mapping[str, Any], restored: Mapping[str, Any]) -> int:
    expected: Dict[str, int] = {str(k): int(v) for k, v in dict(manifest["row_counts"]).items()}
    found: Dict[str, int] = {str(k): int(v) for k, v in dict(restored["tables"]).items()}
    differences = [
        f"{name}: {expected.get(name, 'missing')} in the backup, {found.get(name, 'missing')} restored"
        for name in sorted(set(expected) | set(found))
        if expected.get(name) != found.get(name)
    ]
    expected_objects = int(manifest.get("large_objects", 0))
    if int(restored["large_objects"]) != expected_objects:
        differences.append(f"large objects: {expected_objects} in the backup, {restored['large_objects']} restored")
    if differences:
        more = f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""
        raise Failure("row counts differ: " + "; ".join(differences[:3]) + more)
    return sum(expected.values())


def restore_and_check(settings: Settings, dump_path: str, backup: Backup, into: Connection) -> Tuple[int, int]:
    """Restore a verified dump, then compare the row counts with the manifest: (tables, rows)."""
    run_pg_restore(settings, dump_path, into)
    restored = parse_row_counts(run_psql(settings, into, "cannot count rows", ROW_COUNTS_SQL))
    return len(restored["tables"]), compare_row_counts(backup.manifest, restored)


def run_verification(settings: Settings, scratch: Connection, path: str) -> int:
    """Run VERIFY_SQL_FILE; any error, no row, or a first column not true fails the drill."""
    rows = sql_file_rows(settings, scratch, path, "verification SQL")
    if not rows:
        raise Failure("verification SQL returned no rows")
    for number, row in enumerate(rows, start=1):
        if row.split("\x1f")[0].strip().lower() not in ("t", "true"):
            raise Failure(f"verification SQL row {number} is not true: {one_line(row)[:200]}")
    return len(rows)


def check_files(settings: Settings, scratch: Connection, options: DrillOptions) -> Dict[str, Any]:
    """The restored data's file references against the uploads' replica: a random sample of
    the keys FILES_SQL_FILE returns must exist there (HeadObject: read-only, no download)."""
    keys = sorted(
        {row.split("\x1f")[0] for row in sql_file_rows(settings, scratch, options.files_sql_path, "files SQL")}
    )
    keys = [key for key in keys if key]
    sample = random.sample(keys, min(options.files_sample, len(keys)))
    client = settings.s3(options.files_bucket_region)
    missing: List[str] = []
    for key in sample:
        try:
            client.head_object(Bucket=options.files_bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise Failure(f"files check: cannot read {options.files_bucket}: {describe_aws_error(error)}") from None
            missing.append(key)
    if missing:
        raise Failure(
            f"files check: {len(missing)} of {len(sample)} sampled files the restored data references are not "
            f"in {options.files_bucket}: {', '.join(sorted(missing)[:5])}"
        )
    return {"files_referenced": len(keys), "files_checked": len(sample), "files_bucket": options.files_bucket}


def sql_file_rows(settings: Settings, scratch: Connection, path: str, what: str) -> List[str]:
    """The non-empty rows a SQL file returns on the restored database, fields split by \\x1f."""
    done = subprocess.run(
        [
            settings.program("psql"),
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--field-separator=\x1f",
            "--no-password",
            "--set=ON_ERROR_STOP=1",
            f"--file={path}",
            f"--dbname={scratch.url}",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=scratch.child_env(),
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise Failure(f"{what} failed: {one_line(lines[0]) if lines else 'psql exited'}")
    return [line for line in done.stdout.decode("utf-8", "replace").splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------
# The drill's local PostgreSQL

SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+@/-]*$")
LOCAL_SUPERUSER = "leanstack_drill"
LOCAL_PORT = 5432
MIB = 1024 * 1024
GIB = 1024 * MIB


def major_version(text: str) -> Optional[int]:
    """17 from "17.2 (Debian ...)" or "postgres (PostgreSQL) 17.2"."""
    match = re.search(r"(?:^|\)\s)\s*(\d+)(?:\.\d+)?", text.strip())
    return int(match.group(1)) if match else None


def restore_space_needed(manifest: Mapping[str, Any]) -> int:
    """The disk a restore of this backup needs: the database's size when the backup
    recorded it, else a generous multiple of the compressed dump; plus WAL headroom."""
    headroom = GIB + 256 * MIB
    if "database_size_bytes" in manifest:
        return int(int(manifest["database_size_bytes"]) * 1.2) + headroom
    return int(manifest["size_bytes"]) * 5 + headroom


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


# ---------------------------------------------------------------------------------------
# The app: its config (written by leanstack-app's installer), health, and the drill's start

APP_CONFIG_PATH = "/etc/leanstack/app.json"
# A private, internal Docker network: the drill's app container reaches nothing but the
# drill's database socket (mounted), and the host reaches it at this fixed address.
DRILL_NETWORK = "leanstack-drill"
DRILL_NETWORK_SUBNET = "10.255.255.0/29"
DRILL_APP_ADDRESS = "10.255.255.2"
APP_DATABASE_VARIABLES = ("DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER", "DATABASE_PASSWORD")


@dataclass(frozen=True)
class App:
    image: str
    serving_image: Optional[str]
    serving_port: Optional[int]
    container_port: int
    health_path: str
    health_timeout_seconds: float
    env_file: str
    # Where leanstack-app reads the app's config in SSM (empty: the env file holds it).
    parameters_path: str = ""
    region: str = ""


def read_app(env: Mapping[str, str]) -> Optional[App]:
    """The app's config and its serving release (state_dir/current.json), or None when the
    host runs no app."""
    path = env.get("LEANSTACK_APP_CONFIG", "").strip() or APP_CONFIG_PATH
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise Failure(f"cannot read the app config {path}: {error}") from None

    def field(key: str, kind: type, default: Any = None) -> Any:
        value = raw.get(key, default) if isinstance(raw, dict) else None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise Failure(f"the app config {path}: {key} is {shown(value)}, not a {kind.__name__}")
        return value

    serving_image, serving_port = None, None
    current_path = os.path.join(str(field("state_dir", str)), "current.json")
    try:
        with open(current_path, encoding="utf-8") as handle:
            current = json.load(handle)
        serving_image, serving_port = str(current["image"]), int(current["port"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise Failure(f"cannot read the serving release from {current_path}: {error}") from None
    return App(
        image=field("image", str),
        serving_image=serving_image,
        serving_port=serving_port,
        container_port=field("container_port", int),
        health_path=field("health_path", str),
        health_timeout_seconds=float(field("health_timeout_seconds", float, 60.0)),
        env_file=field("env_file", str, ""),
        parameters_path=field("parameters_path", str, ""),
        region=field("region", str, ""),
    )


def app_plain_env(app: App, settings: Settings) -> Dict[str, str]:
    """The app's plain values, read as leanstack-app reads them: `<path>/config`'s "env", then
    `<path>/env/<NAME>` (set with `python -m leanstack config set`), which wins. Never the
    `<path>/secret/` values or the config's secret references: a drill copy must not act with
    production's keys."""
    if not app.parameters_path:
        return {}
    path = app.parameters_path.rstrip("/")
    client = aws_session().client("ssm", region_name=app.region or settings.region, config=client_config())
    found: Dict[str, str] = {}
    try:
        for page in client.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True):
            for parameter in page.get("Parameters", []):
                found[parameter["Name"]] = parameter.get("Value", "")
    except AWS_ERRORS as error:
        raise Failure(f"cannot read the app's config under {path}: {describe_aws_error(error)}") from None
    values: Dict[str, str] = {}
    raw = found.get(path + "/config")
    if raw is not None:
        try:
            config = json.loads(raw)
        except ValueError:
            raise Failure(f"the app's config {path}/config is not JSON") from None
        env = config.get("env", {}) if isinstance(config, dict) else None
        if not isinstance(env, dict):
            raise Failure(f"the app's config {path}/config: env is not a mapping")
        values.update({str(name): str(value) for name, value in env.items()})
    prefix = path + "/env/"
    values.update({name[len(prefix) :]: value for name, value in found.items() if name.startswith(prefix)})
    return values


def http_status(url: str, timeout: float) -> str:
    """ "200", another status, or why there was no answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(response.status)
    except urllib.error.HTTPError as error:
        return str(error.code)
    except (urllib.error.URLError, OSError) as error:
        return f"no answer ({one_line(str(getattr(error, 'reason', error)))})"


def wait_for_200(url: str, timeout: float, still_running: Callable[[], bool] = lambda: True) -> Optional[str]:
    """None once `url` answers 200 within `timeout` seconds; else the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = http_status(url, min(5.0, timeout))
        if answer == "200":
            return None
        if time.monotonic() >= deadline:
            return answer
        if not still_running():
            return f"{answer}, and the app exited"
        time.sleep(0.2)


def command_from(env: Mapping[str, str], variable: str, default: List[str], **values: str) -> List[str]:
    """A command the environment may replace (tests stand in processes for containers)."""
    template = env.get(variable, "").strip()
    if not template:
        return default
    quoted = {key: shlex.quote(value) for key, value in values.items()}
    try:
        return shlex.split(template.format(**quoted))
    except (KeyError, IndexError, ValueError) as error:
        raise ConfigError(f"{variable}: {template!r} is not a usable command ({error})") from None


def docker_drill_argv(app: App, image: str, name: str, socket_dir: str, names: Sequence[str] = ()) -> List[str]:
    argv = [
        "docker",
        "run",
        "--rm",
        "--name",
        name,
        "--pull",
        "never",
        "--init",
        "--network",
        DRILL_NETWORK,
        "--ip",
        DRILL_APP_ADDRESS,
        "--log-driver",
        "none",
        "--volume",
        f"{socket_dir}:{socket_dir}",
    ]
    if app.env_file and os.path.exists(app.env_file):
        argv += ["--env-file", app.env_file]
    # Names only: docker takes the values from its environment, so the password is in no argv.
    for variable in (*names, "LEANSTACK_DRILL", "PORT", *APP_DATABASE_VARIABLES):
        argv += ["--env", variable]
    return [*argv, image]


def drill_start_app(
    settings: Settings, local: LocalServer, scratch: Connection, drill_id: str, report: Dict[str, Any]
) -> float:
    """Start the serving release against the scratch database and wait for its health path.

    One command (DRILL_APP_START, default `docker run` on the internal network
    leanstack-drill, created when missing): the app gets LEANSTACK_DRILL=1, PORT and the
    DATABASE_* variables of the scratch database (the socket directory of the drill's
    PostgreSQL, mounted), its plain values (its env file, or its SSM config), but none of its
    secrets: a drill copy must not act with production's keys. Returns the seconds until the health path answered 200.
    """
    app = read_app(settings.env)
    if app is None or app.serving_image is None:
        raise Failure("backup.drillStartsApp is on, but no release of the app is deployed on this host")
    report["app_image"] = app.serving_image
    plain = app_plain_env(app, settings)
    name = f"leanstack-drill-{drill_id}"
    address = env_value(settings.env, "DRILL_APP_ADDRESS", DRILL_APP_ADDRESS)
    argv = command_from(
        settings.env,
        "DRILL_APP_START",
        docker_drill_argv(app, app.serving_image, name, local.socket_dir, sorted(plain)),
        image=app.serving_image,
        name=name,
        port=str(app.container_port),
        socket_dir=local.socket_dir,
    )
    if "DRILL_APP_START" not in settings.env:
        subprocess.run(
            ["docker", "network", "create", "--internal", "--subnet", DRILL_NETWORK_SUBNET, DRILL_NETWORK],
            capture_output=True,
            check=False,
        )
    values = {
        **plain,
        "LEANSTACK_DRILL": "1",
        "PORT": str(app.container_port),
        "DATABASE_HOST": local.socket_dir,
        "DATABASE_PORT": str(LOCAL_PORT),
        "DATABASE_NAME": scratch.database,
        # The role the drill restored as: no superuser, so no COPY ... TO PROGRAM on the host.
        "DATABASE_USER": scratch.user,
        "DATABASE_PASSWORD": scratch.password or "",
    }
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **values},
            start_new_session=True,
        )
    except OSError as error:
        raise Failure(f"cannot start the app for the drill ({argv[0]}): {error.strerror}") from None
    assert process.stderr is not None
    app_errors = StderrTail(process.stderr)
    try:
        url = f"http://{address}:{app.container_port}{app.health_path}"
        problem = wait_for_200(url, app.health_timeout_seconds, lambda: process.poll() is None)
        if problem is not None:
            said = app_errors.last("")
            raise Failure(
                f"the app ({app.serving_image}) did not answer 200 on {app.health_path} within "
                f"{app.health_timeout_seconds:g} s against the restored data: {problem}"
                + (f"; it said: {said}" if said else "")
            )
        return time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if "DRILL_APP_START" not in settings.env:
            subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)


# ---------------------------------------------------------------------------------------
# leanstack-restore-drill

DRILL_TARGETS = ("local", "instance", "url")


@dataclass(frozen=True)
class DrillOptions:
    target: str
    url: Optional[Connection]
    verify_path: str
    starts_app: bool
    work_dir: str
    files_sql_path: str = ""
    files_bucket: str = ""
    files_bucket_region: str = ""
    files_sample: int = 100

    @staticmethod
    def from_env(env: Mapping[str, str]) -> DrillOptions:
        drill_url = env.get("DRILL_DATABASE_URL", "").strip()
        # Without DRILL_TARGET, a DRILL_DATABASE_URL means "url" (as before there was a choice).
        target = env_value(env, "DRILL_TARGET", "url" if drill_url else "local")
        if target not in DRILL_TARGETS:
            raise ConfigError(f"DRILL_TARGET must be one of {', '.join(DRILL_TARGETS)}, not {target!r}")
        if target == "url" and not drill_url:
            raise ConfigError("DRILL_TARGET is url but DRILL_DATABASE_URL is not set")
        verify_path = env.get("VERIFY_SQL_FILE", "").strip()
        if verify_path and not os.access(verify_path, os.R_OK):
            raise ConfigError(f"VERIFY_SQL_FILE {verify_path!r} cannot be read")
        starts = env_value(env, "DRILL_STARTS_APP", "0")
        if starts not in ("0", "1"):
            raise ConfigError(f"DRILL_STARTS_APP must be 0 or 1, not {starts!r}")
        if starts == "1" and target != "local":
            raise ConfigError(
                "DRILL_STARTS_APP needs DRILL_TARGET local: the app's network reaches only the drill's server"
            )
        files_path = env.get("FILES_SQL_FILE", "").strip()
        if files_path and not os.access(files_path, os.R_OK):
            raise ConfigError(f"FILES_SQL_FILE {files_path!r} cannot be read")
        if files_path and not env.get("FILES_BUCKET", "").strip():
            raise ConfigError("FILES_SQL_FILE is set but FILES_BUCKET (the uploads' replica bucket) is not")
        return DrillOptions(
            target=target,
            url=parse_database_url("DRILL_DATABASE_URL", drill_url) if target == "url" else None,
            verify_path=verify_path,
            starts_app=starts == "1",
            work_dir=env_value(env, "DRILL_WORK_DIR", "/var/tmp"),
            files_sql_path=files_path,
            files_bucket=env.get("FILES_BUCKET", "").strip(),
            files_bucket_region=env.get("FILES_BUCKET_REGION", "").strip()
            or env_value(env, "BACKUP_BUCKET_REGION", env.get("AWS_REGION")),
            files_sample=env_int(env, "FILES_SAMPLE", 100, 1, 10000),
        )


@contextlib.contextmanager
def drill_server(
    settings: Settings, options: DrillOptions, backup: Backup, report: Dict[str, Any], warnings: List[str]
) -> Iterator[Tuple[PsqlSession, Optional[LocalServer]]]:
    """A maintenance session on the server the drill restores into, holding the drill lock."""
    local: Optional[LocalServer] = None
    if options.target == "local":
        local = LocalServer(settings, options.work_dir)
        try:
            connection = local.start(backup)
        except BaseException:
            local.stop(warnings)
            raise
        report["local_server_version"] = local.version
    elif options.url is not None:
        connection = options.url
    else:
        connection = maintenance_connection(settings)
    try:
        session = PsqlSession(settings, connection, "cannot connect to the drill's server")
        try:
            locked = session.query(f"SELECT pg_try_advisory_lock({DRILL_LOCK_KEY});", "cannot take the drill lock")
            if locked[:1] != ["t"]:
                raise Busy("another restore drill holds the lock on this database server; nothing to do")
            yield session, local
        finally:
            session.close()
    finally:
        if local is not None:
            local.stop(warnings)


def restore_drill(settings: Settings, warnings: List[str]) -> str:
    options = DrillOptions.from_env(settings.env)
    database = settings.database_name()
    metrics = Metrics(settings, warnings)
    s3 = settings.s3()
    started_at = utc_now()
    started = time.monotonic()
    drill_id = f"{stamp(started_at).lower()}_{secrets.token_hex(4)}"
    report: Dict[str, Any] = {
        "stack": settings.stack,
        "database": database,
        "target": options.target,
        "started_at": iso(started_at),
        "host": socket.gethostname(),
    }
    backup_age: Optional[float] = None
    app_seconds: Optional[float] = None
    try:
        try:
            skipped: List[str] = []
            try:
                chosen = choose_backup(settings, s3, database, skipped)
            finally:
                if skipped:
                    report["skipped"] = skipped
                    warnings.extend(skipped)
            backup_age = (started_at - chosen.started_at).total_seconds()
            report.update(backup_key=chosen.dump_key, backup_started_at=chosen.manifest["started_at"])
            report["backup_age_seconds"] = round(backup_age, 3)
            report["backup_size_bytes"] = chosen.manifest["size_bytes"]
            encoding = str(chosen.manifest.get("encoding", "UTF8"))
            scratch_name = f"leanstack_drill_{drill_id}"
            report["scratch_database"] = scratch_name
            download_started = time.monotonic()
            with (
                verified_dump(settings, s3, chosen, options.work_dir) as dump_path,
                drill_server(settings, options, chosen, report, warnings) as (session, local),
            ):
                report["download_seconds"] = round(time.monotonic() - download_started, 3)
                if local is None:
                    drop_leftover_scratch_databases(session, database, warnings)
                restore_started = time.monotonic()
                restorer = restricted_role(session)
                report["restored_as"] = restorer.connection.user
                restore_error: Optional[BaseException] = None
                try:
                    create_marked_database(settings, session, scratch_name, encoding, DRILL_MARK, restorer)
                    scratch = restorer.connection.with_database(scratch_name)
                    tables, rows = restore_and_check(settings, dump_path, chosen, scratch)
                    restore_seconds = time.monotonic() - restore_started
                    recovery_seconds = time.monotonic() - started
                    report.update(
                        restore_seconds=round(restore_seconds, 3),
                        recovery_seconds=round(recovery_seconds, 3),
                        tables_checked=tables,
                        rows_checked=rows,
                    )
                    if options.verify_path:
                        report["verification_rows"] = run_verification(settings, scratch, options.verify_path)
                    if options.files_sql_path:
                        report.update(check_files(settings, scratch, options))
                    if options.starts_app and local is not None:
                        app_seconds = drill_start_app(settings, local, scratch, drill_id, report)
                        report["app_start_seconds"] = round(app_seconds, 3)
                except BaseException as error:
                    restore_error = error
                    raise
                finally:
                    if local is None:
                        # Only the database this run created, by the name it created.
                        try:
                            session.query(
                                f"DROP DATABASE IF EXISTS {quote_identifier(scratch_name)} WITH (FORCE);",
                                f"cannot drop the scratch database {scratch_name}",
                            )
                        except Failure as drop_failure:
                            if restore_error is None:
                                raise
                            warnings.append(str(drop_failure))
                        drop_restorer(session, restorer, warnings)
        except Exception as error:
            if isinstance(error, (Failure, Busy)):
                raise
            # A bug in this tool still ends as a reported, alarmed drill failure.
            raise Failure(f"internal error: {type(error).__name__}: {one_line(str(error))}") from error
    except Failure as failure:
        report.update(result="failure", reason=str(failure))
        report_problem = finish_drill(settings, s3, report, started, drill_id)
        if report_problem is not None:
            warnings.append(report_problem)
        failure_metrics: List[MetricValue] = [("RestoreDrillFailure", 1, "Count")]
        if backup_age is not None:
            failure_metrics.append(("RestoreDrillBackupAgeSeconds", backup_age, "Seconds"))
        metrics.publish(failure_metrics)
        raise
    comparison = compare_with_other_target(settings, s3, options.target, restore_seconds, chosen)
    if comparison is not None:
        report["compared_with"] = comparison
    report["result"] = "success"
    report_problem = finish_drill(settings, s3, report, started, drill_id)
    if report_problem is not None:
        # The drill itself succeeded, but without its report the backup keeps publishing
        # a stale RestoreDrillAgeDays: that is a failure too.
        raise Failure(report_problem)
    values: List[MetricValue] = [
        ("RestoreDrillSuccess", 1, "Count"),
        ("RestoreDrillDurationSeconds", recovery_seconds, "Seconds"),
        ("RestoreDrillRestoreSeconds", restore_seconds, "Seconds"),
        ("RestoreDrillBackupAgeSeconds", float(backup_age or 0), "Seconds"),
        ("RestoreDrillAgeDays", 0, "None"),
    ]
    if app_seconds is not None:
        values.append(("RestoreDrillAppStartSeconds", app_seconds, "Seconds"))
    metrics.publish(values)
    summary = (
        f"restore drill ok: {chosen.dump_key} (recovery point {backup_age:.0f} s old) restored "
        f"({options.target} target) in {restore_seconds:.1f} s; {report['tables_checked']} tables, "
        f"{report['rows_checked']} rows checked"
    )
    if "files_checked" in report:
        summary += f"; {report['files_checked']} of {report['files_referenced']} referenced files found in the replica"
    if app_seconds is not None:
        summary += f"; the app answered its health path after {app_seconds:.1f} s"
    if comparison is not None:
        summary += (
            f"; the last {comparison['target']} drill restored {comparison['backup_size_bytes']} bytes "
            f"in {comparison['restore_seconds']:.1f} s"
        )
    return summary


def session_target(session: PsqlSession, database: str) -> Connection:
    return session.connection.with_database(database)


def compare_with_other_target(
    settings: Settings, s3: S3Client, target: str, restore_seconds: float, backup: Backup
) -> Optional[Dict[str, Any]]:
    """The newest successful drill into another target (the instance, for a local drill):
    the report then says how the two restore times compare. Best effort."""
    folder = settings.stack_key(settings.stack, DRILLS_FOLDER) + "/"
    try:
        reports = sorted(list_keys(s3, settings.bucket, folder), reverse=True)[:DRILL_REPORTS_SCANNED]
        for key in reports:
            other = json.loads(s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read())
            if (
                isinstance(other, dict)
                and other.get("result") == "success"
                and other.get("target", "url") != target
                and isinstance(other.get("restore_seconds"), (int, float))
                and is_count(other.get("backup_size_bytes"))
            ):
                return {
                    "target": str(other.get("target", "url")),
                    "report": key,
                    "restore_seconds": float(other["restore_seconds"]),
                    "backup_size_bytes": int(other["backup_size_bytes"]),
                    "this_restore_seconds": round(restore_seconds, 3),
                    "this_backup_size_bytes": int(backup.manifest["size_bytes"]),
                }
    except (*AWS_ERRORS, ValueError):
        return None
    return None


def finish_drill(
    settings: Settings, s3: S3Client, report: Dict[str, Any], started: float, drill_id: str
) -> Optional[str]:
    """Write the drill's report, the audit trail RestoreDrillAgeDays is computed from.

    The key is unique per drill (time and a random part), so two drills finishing in the
    same second cannot collide. Returns why it could not be written, if so.
    """
    finished_at = utc_now()
    report["finished_at"] = iso(finished_at)
    report["duration_seconds"] = round(time.monotonic() - started, 3)
    key = settings.stack_key(settings.stack, DRILLS_FOLDER, f"{stamp(finished_at)}-{drill_id.rsplit('_', 1)[-1]}.json")
    try:
        put_json(s3, settings.bucket, key, report)
    except AWS_ERRORS as error:
        return f"cannot write the drill report {key}: {describe_aws_error(error)}"
    return None


# ---------------------------------------------------------------------------------------
# leanstack-restore

MAINTENANCE_COMMAND = "leanstack-maintenance"
APP_RESTART_COMMAND = "leanstack-app restart"
SWAP_WAIT_SECONDS = 30.0


STACK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RESTORE_WORK_DIR = "/var/tmp"


@dataclass(frozen=True)
class RestoreOptions:
    backup: Optional[str] = None
    database: Optional[str] = None
    swap: bool = False
    use_restored: Optional[str] = None
    # Region down: the recovery stack restores the old stack's dumps, from its folder.
    from_stack: Optional[str] = None

    @staticmethod
    def parse(arguments: List[str]) -> RestoreOptions:
        values: Dict[str, Any] = {}
        rest = list(arguments)
        while rest:
            flag = rest.pop(0)
            if flag == "--swap":
                values["swap"] = True
                continue
            if flag not in ("--backup", "--database", "--use-restored", "--from-stack"):
                raise ConfigError(
                    f"unknown argument {flag!r}: allowed: --backup STAMP, --database NAME, --from-stack STACK, --swap, "
                    "--use-restored NAME"
                )
            if not rest:
                raise ConfigError(f"{flag} needs a value")
            values[flag[2:].replace("-", "_")] = rest.pop(0)
        options = RestoreOptions(**values)
        if options.backup is not None and not STAMP_PATTERN.match(options.backup):
            raise ConfigError(f"--backup {options.backup!r} is not a backup stamp such as 20260131T033000Z")
        if options.database is not None and not RESTORED_NAME_PATTERN.match(options.database):
            raise ConfigError(f"--database {options.database!r} must start with leanstack_ (then a-z, 0-9, _)")
        if options.from_stack is not None and not STACK_NAME_PATTERN.match(options.from_stack):
            raise ConfigError(f"--from-stack {options.from_stack!r} is not a stack name (letters, digits, ._-)")
        if options.use_restored is not None:
            if not DATABASE_NAME_PATTERN.match(options.use_restored):
                raise ConfigError(f"--use-restored {options.use_restored!r} is not a database name")
            if not options.swap or options.backup is not None or options.database is not None or options.from_stack:
                raise ConfigError("--use-restored goes with --swap only (it switches to a database already restored)")
        return options


def say(message: str) -> None:
    print(f"leanstack-restore: {message}", flush=True)


def restore(settings: Settings, warnings: List[str], options: RestoreOptions) -> str:
    """Restore a backup into a new database on the instance; with --swap, switch the app to it."""
    database = settings.database_name()
    maintenance = maintenance_connection(settings)
    fleet_page = options.swap and fleet_page_is_on(settings)
    lines: List[str] = []
    if options.use_restored is not None:
        restored = options.use_restored
    else:
        s3 = settings.s3()
        skipped: List[str] = []
        stack = options.from_stack or settings.stack
        try:
            chosen = choose_backup(settings, s3, database, skipped, options.backup, skip_unusable=True, stack=stack)
        finally:
            for line in skipped:
                say(f"warning: {line}")
        if options.backup is None:
            hint = (
                ""
                if options.from_stack
                else "; after a region-down recovery, restore the old stack's backups with --from-stack STACK"
            )
            check_not_far_below(chosen, previous_backup(settings, s3, stack, database, chosen), hint)
        restored = options.database or f"leanstack_restore_{chosen.stamp.lower()}_{secrets.token_hex(3)}"
        work_dir = env_value(settings.env, "RESTORE_WORK_DIR", RESTORE_WORK_DIR)
        with verified_dump(settings, s3, chosen, work_dir) as dump_path:
            say(f"restoring {chosen.dump_key} (recovery point {chosen.manifest['started_at']}) into {restored}")
            started = time.monotonic()
            tables, rows = restore_into_new_database(settings, maintenance, chosen, dump_path, restored, warnings)
        lines.append(
            f"restored {chosen.dump_key} into {restored} in {time.monotonic() - started:.1f} s: the checksum "
            f"matches, and so do the row counts of {tables} tables ({rows} rows)"
        )
        if not options.swap:
            lines += [
                f"the app still uses {database}; look at {restored} if you like, then switch the app to it "
                "(users see a maintenance page for the switch):",
                f"  sudo leanstack-restore --swap --use-restored {restored}",
            ]
            return "\n".join(lines)
    return "\n".join(lines + swap(settings, maintenance, database, restored, fleet_page))


def restore_into_new_database(
    settings: Settings, maintenance: Connection, chosen: Backup, dump_path: str, restored: str, warnings: List[str]
) -> Tuple[int, int]:
    """Create `restored`, restore the verified dump into it as a restricted role, check it, and
    hand its objects to the instance's own role (the app's). Nothing half-done on failure."""
    session = PsqlSession(settings, maintenance, "cannot connect to the instance")
    try:
        restorer = restricted_role(session)
        try:
            create_marked_database(
                settings,
                session,
                restored,
                str(chosen.manifest.get("encoding", "UTF8")),
                f"{RESTORE_MARK}restored from {chosen.dump_key}",
                restorer,
            )
            try:
                checked = restore_and_check(settings, dump_path, chosen, restorer.connection.with_database(restored))
                if restorer.role is not None:
                    role = quote_identifier(restorer.role)
                    run_psql(
                        settings,
                        maintenance.with_database(restored),
                        f"cannot hand {restored}'s objects to {maintenance.user}",
                        f"REASSIGN OWNED BY {role} TO CURRENT_USER;\nDROP OWNED BY {role};",
                    )
                    session.query(
                        f"ALTER DATABASE {quote_identifier(restored)} OWNER TO CURRENT_USER;",
                        f"cannot hand {restored} to {maintenance.user}",
                    )
            except BaseException:
                # The database this run created goes.
                with contextlib.suppress(Failure):
                    session.query(f"DROP DATABASE IF EXISTS {quote_identifier(restored)} WITH (FORCE);")
                raise
        finally:
            drop_restorer(session, restorer, warnings)
    finally:
        session.close()
    return checked


def run_step(env: Mapping[str, str], name: str, default: str, extra: List[str], timeout: float) -> Optional[str]:
    """Run a host command (LEANSTACK_MAINTENANCE, LEANSTACK_APP_RESTART); None, or why it failed."""
    argv = command_from(env, name, shlex.split(default)) + extra
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        return f"{argv[0]} is not installed"
    except subprocess.TimeoutExpired:
        return f"{' '.join(argv)} timed out after {timeout:.0f} s"
    if done.returncode == 0:
        return None
    said = [line for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()]
    return one_line(said[-1]) if said else f"exit status {done.returncode}"


BEFORE_RESTORE_INFIX = "_before_restore_"
# PostgreSQL keeps the first 63 bytes of a name and drops the rest without an error.
NAME_BYTES = 63


def before_restore_name(app_name: str, extra: str = "") -> str:
    """<app>_before_restore_<stamp>[_<extra>], the app's name cut so the whole stays within 63
    bytes: a longer name would be truncated by PostgreSQL, and the undo it printed refused."""
    tail = f"{BEFORE_RESTORE_INFIX}{stamp(utc_now()).lower()}" + (f"_{extra}" if extra else "")
    head = app_name.encode("utf-8")[: NAME_BYTES - len(tail.encode("utf-8"))].decode("utf-8", "ignore")
    return head + tail


def fleet_page_is_on(settings: Settings) -> bool:
    """False on a single host. Behind the load balancer (several hosts), the page must be on
    every host before the switch, and this host cannot reach the others: True when it is on
    here (the laptop's `maintenance STACK on` puts it on all of them), else a refusal that
    says what to run. Checked before anything is restored or switched."""
    if env_value(settings.env, "BEHIND_LOAD_BALANCER", "0") != "1":
        return False
    argv = [*command_from(settings.env, "LEANSTACK_MAINTENANCE", shlex.split(MAINTENANCE_COMMAND)), "status"]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Failure(f"cannot ask {argv[0]} whether the maintenance page is on: {error}") from None
    if done.returncode == 0 and done.stdout.strip() == "on":
        return True
    raise Failure(
        f"this stack's hosts sit behind a load balancer, and a switch needs the maintenance page on every one "
        f"of them, which this host cannot reach; first, from your laptop: python -m leanstack maintenance "
        f"{settings.stack} on; then run this again (the page stays on after the switch until you turn it off "
        "the same way); nothing was restored or switched"
    )


def swap(
    settings: Settings, maintenance: Connection, app_name: str, restored: str, fleet_page: bool = False
) -> List[str]:
    """Maintenance page on, rename (app -> app_before_restore_<stamp>, restored -> app) in
    one transaction, restart the app, check its health path, page off. With `fleet_page` the
    page is already on every host (fleet_page_is_on) and is left to the laptop's command."""
    env = settings.env

    def page_off() -> Optional[str]:
        if fleet_page:
            return None
        return run_step(env, "LEANSTACK_MAINTENANCE", MAINTENANCE_COMMAND, ["off"], 60)

    if restored == app_name:
        raise ConfigError(f"--use-restored {restored} is the app's database itself")
    before = before_restore_name(app_name)
    undo = f"sudo leanstack-restore --swap --use-restored {before}"
    session = PsqlSession(settings, maintenance, "cannot connect to the instance")
    try:
        listed = session.query(
            "SELECT datname || '|' || coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
            f"WHERE datname IN ({quote_literal(app_name)}, {quote_literal(restored)}, {quote_literal(before)});",
            "cannot list databases",
        )
        comments = dict(line.split("|", 1) for line in listed if "|" in line)
        if before in comments:
            # A second switch within the same second (an undo right after the switch).
            before = before_restore_name(app_name, secrets.token_hex(2))
            undo = f"sudo leanstack-restore --swap --use-restored {before}"
        if restored not in comments:
            raise Failure(f"there is no database {restored} on the instance")
        if not comments[restored].startswith(RESTORE_MARK):
            raise Failure(
                f"{restored} was not made by leanstack-restore (it carries no such comment); not switching to it"
            )
        app_exists = app_name in comments
        problem = (
            None
            if fleet_page
            else run_step(
                env,
                "LEANSTACK_MAINTENANCE",
                MAINTENANCE_COMMAND,
                ["on", "--message", "We are restoring data and will be back shortly."],
                60,
            )
        )
        if problem is not None:
            raise Failure(f"cannot show the maintenance page ({problem}); nothing was switched")
        say("maintenance page on" + (" (on every host, from the laptop)" if fleet_page else ""))
        app = quote_identifier(app_name)
        if app_exists:
            session.query(f"ALTER DATABASE {app} WITH ALLOW_CONNECTIONS false;", f"cannot close {app_name}")
            deadline = time.monotonic() + SWAP_WAIT_SECONDS
            while True:
                remaining = session.query(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    f"WHERE datname = {quote_literal(app_name)} AND pid <> pg_backend_pid();",
                    "cannot close the app's connections",
                )
                if remaining[:1] == ["0"]:
                    break
                if time.monotonic() >= deadline:
                    session.query(f"ALTER DATABASE {app} WITH ALLOW_CONNECTIONS true;")
                    page_off()
                    raise Failure(
                        f"connections to {app_name} did not end in {SWAP_WAIT_SECONDS:.0f} s; nothing was switched"
                    )
                time.sleep(0.2)
        renames = [
            f"ALTER DATABASE {quote_identifier(restored)} RENAME TO {app};",
            f"COMMENT ON DATABASE {app} IS NULL;",
        ]
        if app_exists:
            renames = [
                f"ALTER DATABASE {app} RENAME TO {quote_identifier(before)};",
                f"ALTER DATABASE {quote_identifier(before)} WITH ALLOW_CONNECTIONS true;",
                f"COMMENT ON DATABASE {quote_identifier(before)} IS "
                f"{quote_literal(RESTORE_MARK + 'the app database before the switch at ' + iso(utc_now()))};",
                *renames,
            ]
        # One transaction: either both names change or neither does.
        try:
            session.query("BEGIN;\n" + "\n".join(renames) + "\nCOMMIT;", "cannot rename the databases")
        except Failure as failure:
            # psql has exited with the transaction rolled back: reopen the app's database to
            # its connections and users, on a new session, then report.
            if app_exists:
                with contextlib.suppress(Failure):
                    run_psql(settings, maintenance, "reopen", f"ALTER DATABASE {app} WITH ALLOW_CONNECTIONS true;")
            off = page_off()
            still_on = "" if off is None else f"; the maintenance page is still on ({off})"
            raise Failure(f"{failure}; nothing was switched{still_on}") from None
    finally:
        session.close()
    lines = [
        f"switched: {app_name} now holds the restored data"
        + (f"; the previous database is kept as {before}" if app_exists else " (there was no app database)")
    ]
    say(lines[0])
    undo_hint = f"to undo: {undo}" if app_exists else ""
    problem = run_step(env, "LEANSTACK_APP_RESTART", APP_RESTART_COMMAND, [], 1800)
    if problem is not None:
        raise Failure(f"the app did not restart ({problem}); the maintenance page stays on; {undo_hint}")
    say("app restarted")
    app_config = read_app(env)
    if app_config is not None and app_config.serving_port is not None:
        url = f"http://127.0.0.1:{app_config.serving_port}{app_config.health_path}"
        problem = wait_for_200(url, app_config.health_timeout_seconds)
        if problem is not None:
            raise Failure(
                f"the app's health path {app_config.health_path} answers {problem}; the maintenance page stays on; "
                + undo_hint
            )
        lines.append(f"the app answers 200 on {app_config.health_path}")
    else:
        lines.append("no app is deployed on this host: its health was not checked")
    problem = page_off()
    if problem is not None:
        raise Failure(f"switched, but the maintenance page is still on ({problem}): sudo leanstack-maintenance off")
    if fleet_page:
        lines += [
            "the other hosts' apps reconnect to the restored database by its name; to restart them all as well: "
            f"python -m leanstack restart {settings.stack}",
            f"the maintenance page is still on every host; when the app looks right: "
            f"python -m leanstack maintenance {settings.stack} off",
        ]
    else:
        lines.append("maintenance page off: users are served again")
    if app_exists:
        lines += [
            f"to undo the switch: {undo}",
            f"when you no longer need {before}, drop it (it takes space on the instance)",
        ]
    return lines


# ---------------------------------------------------------------------------------------
# The environment file, for runs outside systemd (sudo leanstack-restore)

ENV_FILE = "/etc/leanstack/backup.env"
ENV_LINE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"$')


def with_env_file(env: Mapping[str, str]) -> Dict[str, str]:
    """The environment, completed from /etc/leanstack/backup.env when systemd did not
    provide it (a manual `sudo leanstack-restore`, which keeps no environment). Variables
    already set win."""
    merged = dict(env)
    if merged.get("BACKUP_BUCKET", "").strip():
        return merged
    path = merged.get("LEANSTACK_BACKUP_ENV", "").strip() or ENV_FILE
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return merged
    except OSError as error:
        raise ConfigError(
            f"BACKUP_BUCKET is not set and {path} cannot be read ({error.strerror}): run with sudo"
        ) from None
    for line in text.splitlines():
        match = ENV_LINE.match(line.strip())
        if match and not merged.get(match.group(1), "").strip():
            merged[match.group(1)] = re.sub(r"\\(.)", r"\1", match.group(2))
    return merged


# ---------------------------------------------------------------------------------------
# Entry point


def on_sigterm(signum: int, frame: object) -> None:
    raise Interrupted("interrupted by SIGTERM")


SUBCOMMANDS = {
    "backup": BACKUP_COMMAND,
    "restore-drill": DRILL_COMMAND,
    "drill": DRILL_COMMAND,
    "restore": RESTORE_COMMAND,
}


def main(argv: List[str]) -> int:
    program = os.path.basename(argv[0]) if argv else BACKUP_COMMAND
    arguments = argv[1:]
    if "-h" in arguments or "--help" in arguments:
        print(__doc__)
        return 0
    if arguments and arguments[0] in SUBCOMMANDS:
        command = SUBCOMMANDS[arguments[0]]
        arguments = arguments[1:]
    else:
        command = program if program in (DRILL_COMMAND, RESTORE_COMMAND) else BACKUP_COMMAND
    if arguments and command != RESTORE_COMMAND:
        print(f"{command}: unexpected arguments {' '.join(arguments)!r} (see --help)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_sigterm)
    warnings: List[str] = []
    try:
        options = RestoreOptions.parse(arguments) if command == RESTORE_COMMAND else None
        env = with_env_file(os.environ)
        settings = Settings.from_env(env)
        lock = acquire_lock(env, command)
        if lock is None:
            if command == RESTORE_COMMAND:
                raise Failure("another leanstack-restore is running on this host")
            print(f"{command}: another run is in progress; nothing to do")
            return 0
        if options is not None:
            summary = restore(settings, warnings, options)
        elif command == DRILL_COMMAND:
            summary = restore_drill(settings, warnings)
        else:
            summary = backup(settings, warnings)
    except ConfigError as error:
        print(f"{command}: configuration error: {error}", file=sys.stderr)
        return 2
    except Busy as busy:
        print(f"{command}: {busy}")
        return 0
    except Failure as error:
        extra = "".join(f"; warning: {warning}" for warning in warnings)
        print(f"{command}: failed: {one_line(str(error))}{one_line(extra)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{command}: failed: interrupted", file=sys.stderr)
        return 1
    except Exception as error:  # the one-line promise holds even for a bug in this tool
        print(
            f"{command}: failed: internal error: {type(error).__name__}: {one_line(str(error))}",
            file=sys.stderr,
        )
        return 1
    for warning in warnings:
        print(f"{command}: warning: {one_line(warning)}", file=sys.stderr)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/python3
"""leanstack-backup and leanstack-restore-drill: off-site PostgreSQL backups that restore.

    leanstack-backup                 stream pg_dump to S3, then write the manifest
    leanstack-backup restore-drill   restore the newest complete backup into a scratch
                                     database, check it, drop it (leanstack-restore-drill
                                     is a two-line wrapper that runs this)

Runs on Amazon Linux 2023's system Python (3.9) with only the standard library and boto3,
shelling out to pg_dump, pg_restore and psql. Configuration is by environment only:

    DATABASE_URL                postgresql://user:password@host:port/db?sslmode=...; or
    DATABASE_SECRET_ARN         the RDS-managed secret (JSON with username and password),
      + DATABASE_HOST           with DATABASE_PORT (5432), DATABASE_NAME, DATABASE_USER
                                (default: the secret's username), DATABASE_SSLMODE (require)
    BACKUP_BUCKET, BACKUP_PREFIX
    AWS_REGION                  Secrets Manager and CloudWatch (the stack's region)
    BACKUP_BUCKET_REGION        the bucket's region (default: AWS_REGION)
    AWS_ENDPOINT_URL            honoured by botocore itself from 1.31.57 on, as are
                                AWS_ENDPOINT_URL_S3 etc. (a local S3 for tests)
    DRILL_DATABASE_URL          where the drill creates its scratch database (a maintenance
                                connection, e.g. .../postgres); empty: the source instance
    VERIFY_SQL_FILE             optional SQL run against the restored database; every row's
                                first column must be true, and there must be a row
    STACK, METRICS_NAMESPACE    CloudWatch dimension Stack=$STACK in namespace (Leanstack)
    PG_BIN_DIR                  where pg_dump, pg_restore and psql are (default: PATH)
    BACKUP_PART_SIZE_MIB        multipart part size, at least 5 (default 16)
    LEANSTACK_LOCK_DIR          lock directory (default: $RUNTIME_DIRECTORY, else /run/<command>)

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
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Callable, Deque, Dict, List, Mapping, Optional, Tuple

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

    def s3(self) -> S3Client:
        return aws_session().client("s3", region_name=self.bucket_region, config=client_config())

    def cloudwatch(self) -> CloudWatchClient:
        return aws_session().client("cloudwatch", region_name=self.region, config=client_config())

    def key(self, *names: str) -> str:
        return "/".join(part for part in (self.prefix, *names) if part)

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


def supports(client: S3Client, operation: str, parameter: str) -> bool:
    """Whether this botocore knows a request parameter (AL2023's boto3 may predate it)."""
    shape = client.meta.service_model.operation_model(operation).input_shape
    return shape is not None and parameter in shape.members


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
        options: Dict[str, str] = {}
        if supports(self.client, "CompleteMultipartUpload", "IfNoneMatch"):
            # Never replace an object: with Object Lock a second PUT would add a version.
            options["IfNoneMatch"] = "*"
        try:
            done = self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.completed},
                **options,  # type: ignore[arg-type]
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
    options: Dict[str, str] = {}
    if supports(client, "PutObject", "IfNoneMatch"):
        options["IfNoneMatch"] = "*"
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document, indent=2, sort_keys=True).encode("utf-8") + b"\n",
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
        **options,  # type: ignore[arg-type]
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
    folder = settings.key(DRILLS_FOLDER) + "/"
    reports = sorted((key for key in list_keys(client, settings.bucket, folder) if key.endswith(".json")), reverse=True)
    for key in reports[:DRILL_REPORTS_SCANNED]:
        body = client.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
        try:
            report = json.loads(body)
            if report.get("result") == "success":
                finished = parse_iso(str(report["finished_at"]))
                return max(0.0, (utc_now() - finished).total_seconds() / 86400.0)
        except (ValueError, KeyError, AttributeError):
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
        key = settings.key(database, stamp(utc_now()) + DUMP_SUFFIX)
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
            "pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database();"
        )
        snapshot, server_version, encoding = lines[0].split("|", 2)
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
# leanstack-restore-drill


@dataclass(frozen=True)
class Backup:
    dump_key: str
    manifest_key: str
    manifest: Dict[str, Any]


def newest_complete_backup(settings: Settings, s3: S3Client, database: str) -> Backup:
    """The newest dump that has a manifest; a dump without one is incomplete and ignored."""
    folder = settings.key(database) + "/"
    try:
        keys = set(list_keys(s3, settings.bucket, folder))
    except AWS_ERRORS as error:
        raise Failure(f"cannot list s3://{settings.bucket}/{folder}: {describe_aws_error(error)}") from None
    stamps = sorted(
        (
            key[len(folder) : -len(MANIFEST_SUFFIX)]
            for key in keys
            if key.endswith(MANIFEST_SUFFIX) and STAMP_PATTERN.match(key[len(folder) : -len(MANIFEST_SUFFIX)])
        ),
        reverse=True,
    )
    if not stamps:
        raise Failure(f"no complete backup under s3://{settings.bucket}/{folder}")
    newest = stamps[0]
    dump_key, manifest_key = folder + newest + DUMP_SUFFIX, folder + newest + MANIFEST_SUFFIX
    if dump_key not in keys:
        raise Failure(f"manifest {manifest_key} has no dump next to it")
    try:
        manifest = json.loads(s3.get_object(Bucket=settings.bucket, Key=manifest_key)["Body"].read())
    except AWS_ERRORS as error:
        raise Failure(f"cannot read {manifest_key}: {describe_aws_error(error)}") from None
    except ValueError:
        raise Failure(f"manifest {manifest_key} is not JSON") from None
    missing = [name for name in ("sha256", "size_bytes", "row_counts", "started_at") if name not in manifest]
    if missing:
        raise Failure(f"manifest {manifest_key} lacks {', '.join(missing)}")
    return Backup(dump_key, manifest_key, manifest)


# Only names this tool makes: leanstack_drill_<stamp>_<pid>.
SCRATCH_NAME_PATTERN = r"^leanstack_drill_[0-9]{8}t[0-9]{6}z_[0-9]+$"


def drop_leftover_scratch_databases(settings: Settings, target: Connection, warnings: List[str]) -> None:
    """Drop scratch databases a killed drill (SIGKILL, reboot) left: they are full copies
    of production data. Safe because the lock lets one drill run at a time."""
    leftovers = run_psql(
        settings,
        target,
        "cannot list databases",
        f"SELECT datname FROM pg_database WHERE datname ~ '{SCRATCH_NAME_PATTERN}' ORDER BY 1;",
    )
    for name in (line.strip() for line in leftovers if line.strip()):
        run_psql(
            settings,
            target,
            f"cannot drop the leftover scratch database {name}",
            f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE);",
        )
        warnings.append(f"dropped the scratch database {name} an interrupted drill had left")


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stream_restore(settings: Settings, s3: S3Client, backup: Backup, scratch: Connection) -> None:
    """Stream the dump from S3 into pg_restore, hashing it on the way.

    Checksum while streaming, not before: a download-then-verify would need local disk
    as large as the dump and would serialise download and restore, which is most of the
    recovery time we are measuring. Restoring unverified bytes is harmless here because
    the target is a scratch database that is dropped whatever happens, and the drill fails
    on a mismatch even when pg_restore accepted the bytes. (A production restore should
    download, verify, then restore: see the runbook.) A pipe also rules out
    `pg_restore --jobs`, which needs a seekable file.
    """
    try:
        body = s3.get_object(Bucket=settings.bucket, Key=backup.dump_key)["Body"]
    except AWS_ERRORS as error:
        raise Failure(f"cannot download {backup.dump_key}: {describe_aws_error(error)}") from None
    restore = subprocess.Popen(
        [
            settings.program("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--no-password",
            f"--dbname={scratch.url}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=scratch.child_env(),
    )
    assert restore.stdin is not None and restore.stderr is not None
    restore_errors = StderrTail(restore.stderr)
    whole = hashlib.sha256()
    size = 0
    restore_reading = True
    try:
        for chunk in body.iter_chunks(DOWNLOAD_CHUNK_BYTES):
            whole.update(chunk)
            size += len(chunk)
            if restore_reading:
                try:
                    restore.stdin.write(chunk)
                except BrokenPipeError:
                    # pg_restore gave up; keep hashing, so that a tampered dump is reported
                    # as the checksum mismatch it is rather than as pg_restore's symptom.
                    restore_reading = False
        with contextlib.suppress(BrokenPipeError):
            restore.stdin.close()
        restore.wait()
    except (*AWS_ERRORS, OSError) as error:
        stop_process(restore)
        raise Failure(f"download of {backup.dump_key} failed: {describe_aws_error(error)}") from None
    except BaseException:
        stop_process(restore)
        raise
    expected_sha, expected_size = str(backup.manifest["sha256"]), int(backup.manifest["size_bytes"])
    if whole.hexdigest() != expected_sha or size != expected_size:
        raise Failure(
            f"checksum mismatch for {backup.dump_key}: sha256 {whole.hexdigest()} ({size} bytes), "
            f"manifest says {expected_sha} ({expected_size} bytes)"
        )
    if restore.returncode != 0:
        raise Failure(f"pg_restore failed: {restore_errors.last('exit status %d' % restore.returncode)}")


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


def run_verification(settings: Settings, scratch: Connection, path: str) -> int:
    """Run VERIFY_SQL_FILE; any error, no row, or a first column not true fails the drill."""
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
        raise Failure(f"verification SQL failed: {one_line(lines[0]) if lines else 'psql exited'}")
    rows = [line for line in done.stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    if not rows:
        raise Failure("verification SQL returned no rows")
    for number, row in enumerate(rows, start=1):
        if row.split("\x1f")[0].strip().lower() not in ("t", "true"):
            raise Failure(f"verification SQL row {number} is not true: {one_line(row)[:200]}")
    return len(rows)


def restore_drill(settings: Settings, warnings: List[str]) -> str:
    verify_path = settings.env.get("VERIFY_SQL_FILE", "").strip()
    if verify_path and not os.access(verify_path, os.R_OK):
        raise ConfigError(f"VERIFY_SQL_FILE {verify_path!r} cannot be read")
    database = settings.database_name()
    drill_url = settings.env.get("DRILL_DATABASE_URL", "").strip()
    # Checked now, so that a bad URL is a configuration error before any work is done.
    explicit_target = parse_database_url("DRILL_DATABASE_URL", drill_url) if drill_url else None
    metrics = Metrics(settings, warnings)
    s3 = settings.s3()
    started_at = utc_now()
    started = time.monotonic()
    report: Dict[str, Any] = {"stack": settings.stack, "database": database, "started_at": iso(started_at)}
    backup_age: Optional[float] = None
    try:
        chosen = newest_complete_backup(settings, s3, database)
        backup_age = (started_at - parse_iso(str(chosen.manifest["started_at"]))).total_seconds()
        report.update(backup_key=chosen.dump_key, backup_started_at=chosen.manifest["started_at"])
        report["backup_age_seconds"] = round(backup_age, 3)
        # No separate target: a throw-away database on the source instance, created from a
        # connection to the application database (CREATE DATABASE works from any database).
        target = explicit_target or settings.source_connection()
        scratch_name = f"leanstack_drill_{stamp(started_at).lower()}_{os.getpid()}"
        report["scratch_database"] = scratch_name
        encoding = str(chosen.manifest.get("encoding", "UTF8"))
        if not re.match(r"^[A-Za-z0-9_]+$", encoding):
            raise Failure(f"manifest {chosen.manifest_key} has an invalid encoding")
        drop_leftover_scratch_databases(settings, target, warnings)
        run_psql(
            settings,
            target,
            "cannot create the scratch database",
            f"CREATE DATABASE {quote_identifier(scratch_name)} TEMPLATE template0 ENCODING '{encoding}';",
        )
        restore_error: Optional[BaseException] = None
        try:
            scratch = target.with_database(scratch_name)
            stream_restore(settings, s3, chosen, scratch)
            recovery_seconds = time.monotonic() - started
            report["recovery_seconds"] = round(recovery_seconds, 3)
            restored = parse_row_counts(run_psql(settings, scratch, "cannot count rows", ROW_COUNTS_SQL))
            report["rows_checked"] = compare_row_counts(chosen.manifest, restored)
            report["tables_checked"] = len(restored["tables"])
            if verify_path:
                report["verification_rows"] = run_verification(settings, scratch, verify_path)
        except BaseException as error:
            restore_error = error
            raise
        finally:
            try:
                run_psql(
                    settings,
                    target,
                    f"cannot drop the scratch database {scratch_name}",
                    f"DROP DATABASE IF EXISTS {quote_identifier(scratch_name)} WITH (FORCE);",
                )
            except Failure as drop_failure:
                if restore_error is None:
                    raise
                warnings.append(str(drop_failure))
    except Failure as failure:
        report.update(result="failure", reason=str(failure))
        report_problem = finish_drill(settings, s3, report, started)
        if report_problem is not None:
            warnings.append(report_problem)
        failure_metrics: List[MetricValue] = [("RestoreDrillFailure", 1, "Count")]
        if backup_age is not None:
            failure_metrics.append(("RestoreDrillBackupAgeSeconds", backup_age, "Seconds"))
        metrics.publish(failure_metrics)
        raise
    report["result"] = "success"
    report_problem = finish_drill(settings, s3, report, started)
    if report_problem is not None:
        # The drill itself succeeded, but without its report the backup keeps publishing
        # a stale RestoreDrillAgeDays: that is a failure too.
        raise Failure(report_problem)
    metrics.publish(
        [
            ("RestoreDrillSuccess", 1, "Count"),
            ("RestoreDrillDurationSeconds", recovery_seconds, "Seconds"),
            ("RestoreDrillBackupAgeSeconds", backup_age, "Seconds"),
            ("RestoreDrillAgeDays", 0, "None"),
        ]
    )
    return (
        f"restore drill ok: {chosen.dump_key} (recovery point {backup_age:.0f} s old) restored in "
        f"{recovery_seconds:.1f} s; {report['tables_checked']} tables, {report['rows_checked']} rows checked"
    )


def finish_drill(settings: Settings, s3: S3Client, report: Dict[str, Any], started: float) -> Optional[str]:
    """Write the drill's report, the audit trail RestoreDrillAgeDays is computed from.

    Returns why it could not be written, if so.
    """
    finished_at = utc_now()
    report["finished_at"] = iso(finished_at)
    report["duration_seconds"] = round(time.monotonic() - started, 3)
    key = settings.key(DRILLS_FOLDER, stamp(finished_at) + ".json")
    try:
        put_json(s3, settings.bucket, key, report)
    except AWS_ERRORS as error:
        return f"cannot write the drill report {key}: {describe_aws_error(error)}"
    return None


# ---------------------------------------------------------------------------------------
# Entry point


def on_sigterm(signum: int, frame: object) -> None:
    raise Interrupted("interrupted by SIGTERM")


COMMANDS: Dict[str, Callable[[Settings, List[str]], str]] = {
    BACKUP_COMMAND: backup,
    DRILL_COMMAND: restore_drill,
}
SUBCOMMANDS = {"backup": BACKUP_COMMAND, "restore-drill": DRILL_COMMAND, "drill": DRILL_COMMAND}


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
        command = DRILL_COMMAND if program == DRILL_COMMAND else BACKUP_COMMAND
    if arguments:
        print(f"{command}: unexpected arguments {' '.join(arguments)!r} (see --help)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_sigterm)
    warnings: List[str] = []
    try:
        settings = Settings.from_env(os.environ)
        lock = acquire_lock(os.environ, command)
        if lock is None:
            print(f"{command}: another run is in progress; nothing to do")
            return 0
        summary = COMMANDS[command](settings, warnings)
    except ConfigError as error:
        print(f"{command}: configuration error: {error}", file=sys.stderr)
        return 2
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

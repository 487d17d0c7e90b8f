"""The backup, drill and restore's settings from the environment (or /etc/leanstack/backup.env),
the database connection, the run lock and the CloudWatch metrics they publish."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Dict,
    List,
    Mapping,
    Optional,
    Tuple,
)

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.literals import StandardUnitType
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef
    from mypy_boto3_s3 import S3Client

from . import contract
from .aws import AWS_ERRORS, aws_session, client_config, describe_aws_error, region_of_arn
from .common import ConfigError, Failure, create_only_if_absent, env_int, env_value, utc_now

BACKUP_COMMAND = contract.BACKUP_COMMAND.name
DRILL_COMMAND = "leanstack-restore-drill"
RESTORE_COMMAND = "leanstack-restore"

# (metric name, value, CloudWatch unit)
MetricValue = Tuple[str, float, "StandardUnitType"]


class Interrupted(Failure):
    """SIGTERM (systemd stopping the unit): cleanup still runs, then the run fails."""


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
            namespace=env_value(env, "METRICS_NAMESPACE", contract.METRICS_NAMESPACE_PREFIX),
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
        return "/".join((contract.stack_backup_prefix(self.prefix, stack), *names))

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


# ---------------------------------------------------------------------------------------
# The environment file, for runs outside systemd (sudo leanstack-restore)

ENV_FILE = contract.BACKUP_ENV_PATH
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


def with_database_location(env: Mapping[str, str]) -> Dict[str, str]:
    """DATABASE_HOST, DATABASE_PORT and DATABASE_SECRET_ARN read now from the SSM parameter
    DATABASE_PARAMETER names (written by `pulumi up`), so a restored instance with a new endpoint
    and secret reaches the tools without new user data. Without DATABASE_PARAMETER (or with
    DATABASE_URL) the environment is used as it is."""
    merged = dict(env)
    name = merged.get("DATABASE_PARAMETER", "").strip()
    if not name or merged.get("DATABASE_URL", "").strip():
        return merged
    region = env_value(merged, "AWS_REGION", merged.get("AWS_DEFAULT_REGION", "").strip() or None)
    client = aws_session().client("ssm", region_name=region, config=client_config())
    try:
        text = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except AWS_ERRORS as error:
        raise Failure(f"cannot read where the database is ({name}): {describe_aws_error(error)}") from None
    try:
        found = json.loads(text)
        host, port, arn = str(found["host"]), int(found["port"]), str(found["secret_arn"])
    except (ValueError, KeyError, TypeError):
        raise Failure(f"{name} is not the database's location (JSON with host, port, secret_arn)") from None
    merged.update(DATABASE_HOST=host, DATABASE_PORT=str(port), DATABASE_SECRET_ARN=arn)
    return merged

"""What every agent command shares: the one-line failures, the environment readers, the clock
and stamps, S3's create-only rule and SSM's path read. Standard library only (boto3 clients
are passed in), so the laptop side may import the agent's modules without boto3."""

from __future__ import annotations

import datetime
import shlex
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Union

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


class Failure(Exception):
    """A reason the run failed, already phrased as the one line the operator reads; `code` is
    the exit code (1 unless the command says what state the host is in)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class ConfigError(Failure):
    """A missing or invalid setting (environment variable, argument); the message names it. Exit 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 2)


def one_line(text: str) -> str:
    return " ".join(text.split())


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
    if not text.isdigit() or not minimum <= int(text) <= maximum:
        raise ConfigError(f"{name} must be a whole number from {minimum} to {maximum}, got {text!r}")
    return int(text)


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


def read_parameters(ssm: Any, path: str) -> List[Dict[str, Any]]:
    """Every parameter under `path`, recursive, decrypted, all pages, sorted by name: each as
    {"name", "type", "data_type", "value", "version"}."""
    found: List[Dict[str, Any]] = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True, WithDecryption=True):
        for parameter in page.get("Parameters", []):
            found.append(
                {
                    "name": parameter["Name"],
                    "type": parameter["Type"],
                    "data_type": parameter.get("DataType", "text"),
                    "value": parameter["Value"],
                    "version": int(parameter.get("Version", 0)),
                }
            )
    return sorted(found, key=lambda item: str(item["name"]))


def command_from(
    env: Mapping[str, str], variable: str, default: Union[str, Sequence[str]], **values: object
) -> List[str]:
    """A command the environment may replace (tests stand in processes for containers): the
    template in `variable`, else `default` (a template, or an argv used as it is), with each
    {value} filled in shell-quoted."""
    template = env.get(variable, "").strip()
    if not template:
        if not isinstance(default, str):
            return list(default)
        template = default
    quoted = {key: shlex.quote(str(value)) for key, value in values.items()}
    try:
        return shlex.split(template.format(**quoted))
    except (KeyError, IndexError, ValueError) as error:
        raise ConfigError(f"{variable}: {template!r} is not a usable command ({error})") from None


def http_status(url: str, timeout: float) -> str:
    """ "200", another status, or why there was no answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(response.status)
    except urllib.error.HTTPError as error:
        return str(error.code)
    except (urllib.error.URLError, OSError) as error:
        return f"no answer ({one_line(str(getattr(error, 'reason', error)))})"

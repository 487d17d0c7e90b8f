"""The backup, drill and restore's AWS plumbing: one boto3 session, retries and timeouts, and
the one-line description of whatever a failed call raised."""

from __future__ import annotations

import functools
import os
from typing import (
    TYPE_CHECKING,
    Optional,
)

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

if TYPE_CHECKING:
    pass

from .common import one_line

# What a failed AWS call raises: a service error, a transport error, or a response that
# could not be parsed (not a BotoCoreError in botocore, e.g. an HTML error page).
AWS_ERRORS = (BotoCoreError, ClientError, ResponseParserError)


def describe_aws_error(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return one_line(f"{details.get('Code', 'error')}: {details.get('Message', str(error))}")
    return one_line(str(error)) or type(error).__name__


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

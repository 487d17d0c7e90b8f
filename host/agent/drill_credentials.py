"""leanstack-backup drill-credentials PATH: the host role's short-lived credentials, as a shared
credentials file, for the restore drill's unit.

The drill unit may not reach the instance metadata service (IPAddressDeny=): its own PostgreSQL
runs restored, untrusted dumps as the unit's user, and whoever reaches the metadata service from
there takes the host role. So a separate unit, outside the drill's sandbox, runs this before each
drill: it takes the credentials boto3's default chain finds (on the host, the instance role's
from the metadata service), writes them to PATH (mode 0600, owned by the caller, root; written
beside it and renamed, so no half-written file is ever read), and prints when they expire. systemd
hands the file to the drill (LoadCredential=aws:PATH, AWS_SHARED_CREDENTIALS_FILE=%d/aws).

The file holds what the metadata service gave at that moment and is never refreshed: a drill that
outlives the credentials fails at its next AWS call (the report and metric come last).

Python 3.9, stdlib and boto3.
"""

from __future__ import annotations

import datetime
import os
import re
from typing import Any, Optional

from .aws import AWS_ERRORS, aws_session, describe_aws_error
from .common import ConfigError, Failure, iso

# A value that could break the file's INI lines (a newline would add a key of its own).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\[\]]")


def expiry_of(credentials: Any) -> Optional[datetime.datetime]:
    """When refreshable credentials (the metadata service's, a container endpoint's) expire;
    None for static keys. botocore keeps it in RefreshableCredentials._expiry_time."""
    expiry = getattr(credentials, "_expiry_time", None)
    return expiry if isinstance(expiry, datetime.datetime) else None


def render(
    access_key: Optional[str], secret_key: Optional[str], token: Optional[str], method: str, expiry: Optional[str]
) -> str:
    values = {"aws_access_key_id": access_key or "", "aws_secret_access_key": secret_key or ""}
    if token:
        values["aws_session_token"] = token
    for name, value in values.items():
        if not value or _UNSAFE.search(value) or value != value.strip():
            raise Failure(f"the credentials' {name} is empty or not one plain line; nothing written")
    lines = [
        "# leanstack-restore-drill's AWS credentials: the host role's, written before the drill,",
        f"# from {method}, {f'valid until {expiry}' if expiry else 'without an expiry (static keys)'}.",
        "[default]",
        *(f"{name} = {value}" for name, value in values.items()),
    ]
    return "\n".join(lines) + "\n"


def write_private(path: str, content: str) -> None:
    """`content` at `path`, 0600, through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_drill_credentials(path: str) -> str:
    """Write the default chain's credentials to `path`; the one line to print."""
    if not os.path.isabs(path):
        raise ConfigError(f"PATH must be an absolute path, got {path!r}")
    try:
        credentials = aws_session().get_credentials()
        if credentials is None:
            raise Failure("no AWS credentials: boto3's default chain found none (on EC2: the instance role)")
        frozen = credentials.get_frozen_credentials()
    except AWS_ERRORS as error:
        raise Failure(f"reading the host's AWS credentials: {describe_aws_error(error)}") from error
    expiry = expiry_of(credentials)
    when = iso(expiry.astimezone(datetime.timezone.utc)) if expiry else None
    method = getattr(credentials, "method", "") or "boto3's default chain"
    write_private(path, render(frozen.access_key, frozen.secret_key, frozen.token, method, when))
    return f"wrote {path} (0600): credentials from {method}, " + (
        f"valid until {when}" if when else "static keys without an expiry"
    )

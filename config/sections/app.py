"""`leanstack:app`: the application the hosts run, its variables, release command, jobs and workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leanstack.config.fields import (
    ENV_NAME_RE,
    SECRETS_MANAGER_ARN_RE,
    SSM_PARAMETER_MAX,
    SSM_PARAMETER_RE,
    URL_PATH_ALLOWED,
    URL_PATH_RE,
    Validated,
    setting,
)
from leanstack.config.sections.workers import ARGV_ITEM_RE, JOB_NAME_RE, PROCESS_NAME_RE, JobArgs, ProcessArgs


def _check_secret_source(value: Any) -> str | None:
    text = str(value)
    if not text.startswith("/"):
        return None
    if len(text) > SSM_PARAMETER_MAX:
        return f"an SSM parameter name of at most {SSM_PARAMETER_MAX} characters (AWS's limit)"
    if text[1:4].lower() in ("aws", "ssm"):
        return "an SSM parameter name not starting with aws or ssm (AWS reserves them)"
    return None


@dataclass(frozen=True)
class AppArgs(Validated):
    """The application the host runs (one container behind nginx) and how it is shipped."""

    port: int = setting(
        3000,
        doc="Port the app listens on inside its container; the host publishes it on 127.0.0.1:port and, "
        "during a deploy, port+1.",
        min=1024,
        max=65534,
    )
    health_path: str = setting(
        "/healthz",
        doc="Path nginx and the site-down check call; the app answers 200 when healthy.",
        pattern=URL_PATH_RE,
        allowed=URL_PATH_ALLOWED,
    )
    image: str = setting(
        "",
        doc="Image repository without a tag; empty means the stack's own ECR repository.",
        pattern=r"([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9._/-]+|",
        allowed="an image repository without a tag, such as ghcr.io/acme/web, or empty",
    )
    env: dict[str, str] = setting(
        doc="Plain environment variables for the app (name: value); never secrets.",
        key_pattern=ENV_NAME_RE,
        pattern=r"[^\x00-\x1f\x7f]*",
        allowed="a single-line value",
        default_factory=dict,
    )
    secrets: dict[str, str] = setting(
        doc="Secret environment variables: name -> SSM parameter name or Secrets Manager ARN, read at start. "
        "A name may be in env or in secrets, not both.",
        key_pattern=ENV_NAME_RE,
        pattern=f"{SSM_PARAMETER_RE}|{SECRETS_MANAGER_ARN_RE}",
        allowed="an SSM parameter name such as /leanstack/prod/app/stripe-key (up to 15 parts of letters, "
        "digits, '_', '.' and '-', each after one '/') or a Secrets Manager ARN",
        check=_check_secret_source,
        default_factory=dict,
    )
    registry_secret_arn: str = setting(
        "",
        doc="Secrets Manager secret ({username, password}) to pull an image from outside ECR.",
        pattern=f"({SECRETS_MANAGER_ARN_RE})?",
        allowed="a Secrets Manager ARN, or empty",
    )
    health_timeout_seconds: int = setting(
        60, doc="How long a new version may take to pass its health check during a deploy.", min=5, max=900
    )
    release_command: tuple[str, ...] = setting(
        (),
        doc="Runs once per deploy in a container of the new image, with the app's config, secrets and database "
        "credentials, before any traffic switches; a non-zero exit stops the deploy and the old version keeps "
        "serving. Migrations belong here and must be backward compatible. As Docker's CMD: a list is exec "
        'form (["bin/migrate"]), a string is shell form, run by /bin/sh -c ("bin/migrate --verbose").',
        pattern=ARGV_ITEM_RE,
        allowed="a list of non-empty arguments, or a string (run by /bin/sh -c)",
        unique=False,
        command=True,
    )
    jobs: dict[str, JobArgs] = setting(
        doc="Scheduled jobs: name -> {schedule, command}; each runs on one host (the jobs host when scaled out), "
        "never twice at once, and a failed run raises the job-failed alarm.",
        key_pattern=JOB_NAME_RE,
        allowed_key="a job name of 1-40 lower-case letters, digits and '-'",
        default_factory=dict,
    )
    processes: dict[str, ProcessArgs] = setting(
        doc="Long-running processes beside the web container (workers), like a Procfile: name -> {command, count, "
        "stopTimeoutSeconds}. Each runs the serving release's image with the app's config and secrets, no port, "
        "restarted when it exits; a deploy starts them after the release command and stops the old ones with "
        "SIGTERM and the timeout. They run on the jobs host when scaled out.",
        key_pattern=PROCESS_NAME_RE,
        allowed_key="a process name of 1-30 lower-case letters, digits and '-' (not web)",
        default_factory=dict,
    )
    keep_images: int = setting(
        30,
        doc="Newest images the ECR repository keeps; older ones expire unless a deploy marked them released "
        "(release-<tag>: never expired).",
        min=20,
        max=1000,
    )

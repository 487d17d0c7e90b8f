"""leanstack-app's plumbing: the commands it runs (each replaceable through the environment),
its progress lines, state files, secret reads through the `aws` CLI, and boto3 clients."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from .app_config import DEFAULT_COMMANDS, PROGRAM, Config
from .common import Failure, command_from

# ---------------------------------------------------------------------------------------
# Host state: which port serves, which image runs on each port


def _write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    """Write next to `path` and rename over it: readers see the old or the new file, whole."""
    directory = os.path.dirname(path) or "."
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".leanstack-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_current(config: Config) -> dict[str, Any] | None:
    """The serving port and image, or None before the first deploy."""
    path = os.path.join(config.state_dir, "current.json")
    try:
        with open(path, encoding="utf-8") as handle:
            current = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise Failure(f"cannot read {path}: {error}") from None
    if not isinstance(current, dict) or current.get("port") not in config.ports:
        raise Failure(f"{path} names no port of {list(config.ports)}; fix or remove it")
    return current


def image_path(config: Config, port: int) -> str:
    return os.path.join(config.state_dir, f"image-{port}")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------------------------------
# Commands the environment may replace


def _command(env: Mapping[str, str], name: str, **values: object) -> list[str]:
    return command_from(env, name, DEFAULT_COMMANDS[name], **values)


def _run(env: Mapping[str, str], name: str, timeout: float, **values: object) -> subprocess.CompletedProcess[str]:
    argv = _command(env, name, **values)
    try:
        return subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=dict(env), check=False
        )
    except FileNotFoundError:
        raise Failure(f"{name}: {argv[0]} not found") from None
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout:.0f} s")


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


_STARTED = time.monotonic()


def _say(message: str) -> None:
    print(f"{PROGRAM}: [{time.monotonic() - _STARTED:.1f} s] {message}", flush=True)


def publish_metric(config: Config, name: str, value: float, **dimensions: str) -> None:
    """One Count datum in the stack's namespace, by Stack (and `dimensions`); a failure only warns."""
    stack = [{"Name": "Stack", "Value": config.stack}]
    data: list[Any] = [{"MetricName": name, "Dimensions": stack, "Value": value, "Unit": "Count"}]
    if dimensions:
        extra = [*stack, *({"Name": key, "Value": text} for key, text in dimensions.items())]
        data.append({"MetricName": name, "Dimensions": extra, "Value": value, "Unit": "Count"})
    try:
        boto3_client("cloudwatch", config.region).put_metric_data(Namespace=config.metrics_namespace, MetricData=data)
    except Exception as error:  # a metric never changes what the command does
        _say(f"warning: publishing {name} failed: {' '.join(str(error).split())}")


# ---------------------------------------------------------------------------------------
# AWS reads through the `aws` CLI (the instance role; nothing stored on disk)


def _aws(region: str, arguments: Sequence[str], what: str) -> str:
    argv = ["aws", "--region", region, *arguments, "--output", "text"]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise Failure("the aws CLI is not installed") from None
    except subprocess.TimeoutExpired:
        raise Failure(f"reading {what} timed out after 60 s") from None
    if done.returncode != 0:
        raise Failure(f"cannot read {what}: {_last_line(done)}")
    # --output text ends the value with a newline.
    return done.stdout[:-1] if done.stdout.endswith("\n") else done.stdout


def read_secret(region: str, source: str) -> str:
    """An SSM parameter (decrypted) or a Secrets Manager secret's string."""
    if source.startswith("arn:"):
        return _aws(
            region,
            ["secretsmanager", "get-secret-value", "--secret-id", source, "--query", "SecretString"],
            source,
        )
    return _aws(
        region,
        ["ssm", "get-parameter", "--name", source, "--with-decryption", "--query", "Parameter.Value"],
        source,
    )


def _secret_json(region: str, arn: str, keys: Sequence[str]) -> dict[str, str]:
    try:
        value = json.loads(read_secret(region, arn))
    except ValueError:
        raise Failure(f"secret {arn} is not a JSON object") from None
    if not isinstance(value, dict) or not all(isinstance(value.get(key), str) for key in keys):
        raise Failure(f"secret {arn} lacks {' and '.join(keys)}")
    return {key: str(value[key]) for key in keys}


def boto3_client(service: str, region: str) -> Any:
    """A boto3 client; boto3 is imported here: only hosts whose app config is in SSM need it."""
    # A newer boto3 warns on stderr about Python 3.9 itself: errors stay one line.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import boto3
        except ImportError:
            raise Failure(f"{service} needs boto3 (python3-boto3)") from None
        return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _checked(env: Mapping[str, str], name: str, **values: object) -> None:
    done = _run(env, name, 120, **values)
    if done.returncode != 0:
        raise Failure(f"{' '.join(_command(env, name, **values))} failed: {_last_line(done)}")

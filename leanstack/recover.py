"""`python -m leanstack recover init STACK`: the stack's recovery stack, for when its region is gone.

Writes stacks/Pulumi.<STACK>-recovery.yaml: the stack's own config with `aws:region` set to
its backup region and the existing backup bucket (and uploads replica) named, so the recovery
stack reuses them as they are (`backup.existingBucket`, `storage.existingReplica`: nothing is
created, changed or deleted on them) and its host restores the newest off-site dump from them.
The file is validated before it is written; an existing one is kept unless `--force`.
The recovery sheet's "Region down" branch (`python -m leanstack runbook STACK`) walks the rest.
"""

from __future__ import annotations

import argparse
import copy
import re
from pathlib import Path
from typing import Any

from leanstack.config import ConfigError, load_stack_config
from leanstack.host.agent import contract
from leanstack.mocks import StackFileError, read_stack_config, stack_file
from leanstack.stack_edit import StackEditError, edit_stack_text

RECOVERY_SUFFIX = "-recovery"
# The random suffix Secrets Manager appends to a secret's name in its ARN.
ARN_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")

# How to find the two names when the region is down: the stack's outputs are in the Pulumi
# state, which lives outside the region (Pulumi Cloud or the state bucket), and S3 lists
# buckets from any region.
NAMES_HELP = (
    "the names are the stack's outputs: pulumi stack output --stack STACK backupBucket (and uploadsReplicaBucket), "
    "or aws s3api list-buckets --query \"Buckets[?contains(Name, 'STACK')].Name\""
)


class RecoverError(ValueError):
    """Bad input to `recover init`: one line, nothing written."""


def recovery_stack(stack: str) -> str:
    """The recovery stack's name: <stack>-recovery."""
    return f"{stack}{RECOVERY_SUFFIX}"


def rehomed_reference(ref: Any, own: str, moved_to: str, region: str) -> Any:
    """An app secret reference as the recovery stack's: an SSM name under the stack's path moves to the
    recovery stack's; a Secrets Manager ARN moves to the recovery region by name (its suffix is the old
    region's: the secret gets a new one there, which `secrets restore --into` writes back into the file)."""
    if not isinstance(ref, str):
        return ref
    if ref.startswith(own):
        return moved_to + ref[len(own) :]
    if ref.startswith("arn:") and ":secretsmanager:" in ref and ":secret:" in ref:
        head, name = ref.split(":secret:", 1)
        partition, service, _, account = head.split(":")[1:5]
        return f"arn:{partition}:{service}:{region}:{account}:secret:{ARN_SUFFIX.sub('', name)}"
    return ref


def recovery_config(raw: dict[str, Any], stack: str, backup_bucket: str, replica_bucket: str) -> dict[str, Any]:
    """The recovery stack's config: the stack's own, moved to its backup region, reusing its buckets."""
    if stack.endswith(RECOVERY_SUFFIX):
        raise RecoverError(f"recover init: {stack!r} is already a recovery stack; give the original stack")
    cfg = load_stack_config(raw, stack)
    if cfg.storage.enabled and not replica_bucket:
        raise RecoverError(f"recover init: --replica-bucket missing; stack {stack!r} has storage on ({NAMES_HELP})")
    if replica_bucket and not cfg.storage.enabled:
        raise RecoverError(f"recover init: --replica-bucket given; stack {stack!r} has storage off")
    config = copy.deepcopy(raw)
    config["aws:region"] = cfg.backup.region
    config["leanstack:backup"] = {**(config.get("leanstack:backup") or {}), "existingBucket": backup_bucket}
    if replica_bucket:
        config["leanstack:storage"] = {**(config.get("leanstack:storage") or {}), "existingReplica": replica_bucket}
    # The recovery host reads only /leanstack/<stack>-recovery/: the app's SSM secret references move
    # there, where `secrets restore STACK --into STACK-recovery` writes the sealed values.
    app = config.get("leanstack:app") or {}
    own, moved_to = contract.parameter_root(stack) + "/", contract.parameter_root(recovery_stack(stack)) + "/"
    if isinstance(app.get("secrets"), dict):
        secrets = {
            name: rehomed_reference(ref, own, moved_to, cfg.backup.region) for name, ref in app["secrets"].items()
        }
        app = {**app, "secrets": secrets}
    if app.get("registrySecretArn"):
        app = {
            **app,
            "registrySecretArn": rehomed_reference(app["registrySecretArn"], own, moved_to, cfg.backup.region),
        }
    if app:
        config["leanstack:app"] = app
    database = config.get("leanstack:database") or {}
    if database.get("crossRegionBackups"):
        # Its target would be this stack's own region; turn it back on when the old region returns.
        config["leanstack:database"] = {**database, "crossRegionBackups": False}
    try:
        load_stack_config(config, recovery_stack(stack))
    except ConfigError as error:
        raise RecoverError(f"recover init: the recovery stack would be invalid: {error}") from None
    return config


def write_recovery_file(
    stack: str, backup_bucket: str, replica_bucket: str = "", *, force: bool = False, repo: Path | None = None
) -> Path:
    """Write stacks/Pulumi.<stack>-recovery.yaml (validated first); return its path."""
    target = stack_file(recovery_stack(stack), repo)
    if target.exists() and not force:
        raise RecoverError(f"recover init: stacks/{target.name} exists; pass --force to overwrite it")
    source = stack_file(stack, repo)
    config = recovery_config(read_stack_config(stack, repo), stack, backup_bucket, replica_bucket)
    header = (
        f"# The recovery stack of {stack!r}, written by python -m leanstack recover init: its config in\n"
        f"# {config['aws:region']}, reusing its backup bucket (and uploads replica) as they are.\n"
        f"# The steps: python -m leanstack runbook {stack}, section 'Region down'.\n"
    )
    # The stack's own file edited (every comment kept), then read back and compared (leanstack/stack_edit.py).
    try:
        text = edit_stack_text(source.read_text(encoding="utf-8"), config, f"stacks/{target.name}", header)
    except StackEditError as error:
        raise RecoverError(f"recover init: {error}") from None
    target.write_text(text, encoding="utf-8")
    return target


def main(argv: list[str]) -> int:
    """`recover init STACK --backup-bucket NAME [--replica-bucket NAME] [--force]`; exit 2 on bad input."""
    import sys

    parser = argparse.ArgumentParser(prog="python -m leanstack recover", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("init",))
    parser.add_argument("stack", help="the stack whose region is down, such as prod")
    parser.add_argument("--backup-bucket", required=True, help=f"its backup bucket ({NAMES_HELP})")
    parser.add_argument("--replica-bucket", default="", help="its uploads replica bucket (storage on only)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing recovery file")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        path = write_recovery_file(args.stack, args.backup_bucket, args.replica_bucket, force=args.force)
    except (RecoverError, ConfigError, StackFileError) as error:
        print(f"leanstack: {error}", file=sys.stderr)
        return 2
    print(f"stacks/{path.name}: written and valid (next: python -m leanstack runbook {args.stack}, 'Region down')")
    return 0

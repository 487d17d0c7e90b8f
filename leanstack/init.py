"""`python -m leanstack init`: fill a fork's seven values into every stack file, keeping the comments.

The values: the domain, the Cloudflare zone id, the alert address, the owner, the AWS region,
the backup bucket's region and the second person of a recovery. Each stack file is edited through
a YAML round trip (leanstack/stack_edit.py: every comment and the file's indentation stay, the
result is read back and compared); a stack whose domain is a name under the old zone
(dev.example.com) keeps its label under the new one (dev.acme.io). Every edited file is validated
before any is written: either all stack files are filled and valid, or none changes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leanstack.config import ConfigError, guess_zone, load_stack_config
from leanstack.config.placeholders import Fill
from leanstack.config.stack_file import StackFileError, parse_stack_yaml
from leanstack.mocks import available_stacks, stack_file, stacks_dir
from leanstack.stack_edit import StackEditError, edit_stack_text

# The questions `init` asks when a flag is not given, in order: (field, flag, question).
QUESTIONS = (
    ("domain", "--domain", "Apex domain of the site, on Cloudflare (e.g. acme.io)"),
    ("zone_id", "--zone-id", "Cloudflare zone id of that domain (32 hex characters)"),
    ("alert_email", "--alert-email", "Address that receives every alarm"),
    ("owner", "--owner", "Who owns the stacks (a name, team or email)"),
    ("region", "--region", "AWS region of the stacks (e.g. eu-central-1)"),
    ("backup_region", "--backup-region", "AWS region of the off-site backups (another region)"),
    ("second_person", "--second-person", "Who approves and runs a recovery when the owner cannot (a name and email)"),
)


class InitError(ValueError):
    """Bad input or a stack file init cannot fill; `str()` is one line."""


def filled_config(raw: dict[str, Any], fill: Fill) -> dict[str, Any]:
    """A stack's `config:` map with the fork's values in place of the ones it ships with.

    A value is filled where the file has the key (dev has no recovery.secondPerson); a name under
    the old zone keeps its label under the new domain (dev.example.com -> dev.acme.io).
    """
    config = copy.deepcopy(raw)
    domain = config.get("leanstack:domain")
    cdn = config.get("leanstack:cdn")
    zone_name = cdn.get("zoneName", "") if isinstance(cdn, dict) else ""
    old_zone = zone_name or (guess_zone(domain) if isinstance(domain, str) and domain else "")

    def moved(name: Any) -> Any:
        if isinstance(name, str) and old_zone and (name == old_zone or name.endswith("." + old_zone)):
            return name[: len(name) - len(old_zone)] + fill.domain
        return name

    tops = {"aws:region": fill.region, "leanstack:alertEmail": fill.alert_email, "leanstack:owner": fill.owner}
    for key, value in tops.items():
        if key in config:
            config[key] = value
    if domain:
        config["leanstack:domain"] = moved(domain)
    if isinstance(cdn, dict):
        if "zoneId" in cdn:
            cdn["zoneId"] = fill.zone_id
        if zone_name:
            cdn["zoneName"] = moved(zone_name)
    backup = config.get("leanstack:backup")
    if isinstance(backup, dict) and "region" in backup:
        backup["region"] = fill.backup_region
    recovery = config.get("leanstack:recovery")
    if isinstance(recovery, dict) and "secondPerson" in recovery:
        recovery["secondPerson"] = fill.second_person
    if isinstance(config.get("leanstack:hostnames"), list):
        config["leanstack:hostnames"] = [moved(name) for name in config["leanstack:hostnames"]]
    return config


def fill_text(text: str, fill: Fill, name: str = "stack file") -> str:
    """The stack file `text` with the fork's values; comments, indentation and every other value as they were."""
    try:
        return edit_stack_text(text, filled_config(parse_stack_yaml(text, name), fill), name)
    except StackEditError as error:
        raise InitError(str(error)) from None


def ask(fill: dict[str, str | None], prompt: Callable[[str], str]) -> Fill:
    """The seven values: those given as flags, the others asked for with `prompt`."""
    values: dict[str, str] = {}
    for field, _flag, question in QUESTIONS:
        given = fill.get(field)
        values[field] = given if given is not None else prompt(f"{question}: ").strip()
    return Fill(**values)


def run_init(fill: Fill, repo: Path | None = None) -> list[str]:
    """Fill every stack file and validate it; write them all only when all are valid. Returns the files written."""
    if fill.backup_region == fill.region:
        raise InitError(f"--backup-region: got {fill.backup_region}; expected a region other than --region")
    stacks = available_stacks(repo)
    if not stacks:
        raise InitError(f"no stack files under {stacks_dir(repo)}")
    filled: dict[Path, str] = {}
    for stack in stacks:
        path = stack_file(stack, repo)
        name = f"stacks/{path.name}"
        try:
            text = fill_text(path.read_text(encoding="utf-8"), fill, name)
            load_stack_config(parse_stack_yaml(text, name), stack)
        except (ConfigError, StackFileError) as error:
            raise InitError(f"{name}: {error}") from None
        filled[path] = text
    for path, text in filled.items():
        path.write_text(text, encoding="utf-8")
    return [f"stacks/{path.name}" for path in filled]

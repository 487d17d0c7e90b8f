"""`python -m leanstack init`: fill a fork's seven values into every stack file, keeping the comments.

The values: the domain, the Cloudflare zone id, the alert address, the owner, the AWS region and
the backup bucket's region. Each stack file's lines are edited in place (no YAML round trip, so
every comment stays); a stack whose domain is a name under the old zone (dev.example.com) keeps
its label under the new one (dev.acme.io). Every edited file is validated before any is written:
either all stack files are filled and valid, or none changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from leanstack.config import ConfigError, guess_zone, load_stack_config
from leanstack.config.placeholders import Fill
from leanstack.config.stack_file import StackFileError, parse_stack_yaml
from leanstack.mocks import available_stacks, stack_file, stacks_dir

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

_TOP_KEY = re.compile(r"^  ([A-Za-z0-9_:.-]+):(.*)$")
_NESTED_KEY = re.compile(r"^    ([A-Za-z0-9_]+):(.*)$")
_LIST_ITEM = re.compile(r"^    - (.*)$")


class InitError(ValueError):
    """Bad input or a stack file init cannot fill; `str()` is one line."""


def _scalar(value: str) -> str:
    """A YAML plain scalar when that reads back as the same string, else a double-quoted one."""
    plain = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 .,'@_+()/-]*", value) and not value.endswith(" ")
    return value if plain else json.dumps(value)


def _value_and_comment(rest: str) -> tuple[str, str]:
    text = rest.strip()
    value, sep, comment = text.partition(" #")
    return value.strip().strip("\"'"), (f"  #{comment}" if sep else "")


def fill_text(text: str, fill: Fill) -> str:
    """The stack file `text` with the seven values of `fill`; comments and every other line as they were."""
    lines = text.split("\n")
    domain = ""
    zone_name = ""
    for line in lines:
        top = _TOP_KEY.match(line)
        if top and top.group(1) == "leanstack:domain":
            domain = _value_and_comment(top.group(2))[0]
    section = ""
    for line in lines:
        top = _TOP_KEY.match(line)
        if top:
            section = top.group(1)
        nested = _NESTED_KEY.match(line)
        if section == "leanstack:cdn" and nested and nested.group(1) == "zoneName":
            zone_name = _value_and_comment(nested.group(2))[0]
    old_zone = zone_name or (guess_zone(domain) if domain else "")

    def moved(name: str) -> str:
        """A name under the old zone, moved under the new domain (dev.example.com -> dev.acme.io)."""
        if old_zone and (name == old_zone or name.endswith("." + old_zone)):
            return name[: len(name) - len(old_zone)] + fill.domain
        return name

    out: list[str] = []
    section = ""
    for line in lines:
        top = _TOP_KEY.match(line)
        if top:
            section = top.group(1)
            key, rest = top.group(1), top.group(2)
            value, comment = _value_and_comment(rest)
            new = {
                "aws:region": fill.region,
                "leanstack:domain": moved(value) if value else value,
                "leanstack:alertEmail": fill.alert_email,
                "leanstack:owner": fill.owner,
            }.get(key)
            if new is not None and value:
                line = f"  {key}: {_scalar(new)}{comment}"
            out.append(line)
            continue
        nested = _NESTED_KEY.match(line)
        item = _LIST_ITEM.match(line)
        if nested and section == "leanstack:cdn" and nested.group(1) == "zoneId":
            line = f"    zoneId: {fill.zone_id}{_value_and_comment(nested.group(2))[1]}"
        elif nested and section == "leanstack:cdn" and nested.group(1) == "zoneName" and zone_name:
            line = f"    zoneName: {moved(zone_name)}{_value_and_comment(nested.group(2))[1]}"
        elif nested and section == "leanstack:recovery" and nested.group(1) == "secondPerson":
            line = f"    secondPerson: {_scalar(fill.second_person)}{_value_and_comment(nested.group(2))[1]}"
        elif nested and section == "leanstack:backup" and nested.group(1) == "region":
            line = f"    region: {fill.backup_region}{_value_and_comment(nested.group(2))[1]}"
        elif item and section == "leanstack:hostnames":
            value, comment = _value_and_comment(item.group(1))
            line = f"    - {moved(value)}{comment}"
        out.append(line)
    return "\n".join(out)


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
        text = fill_text(path.read_text(encoding="utf-8"), fill)
        try:
            load_stack_config(parse_stack_yaml(text, name), stack)
        except (ConfigError, StackFileError) as error:
            raise InitError(f"{name}: {error}") from None
        filled[path] = text
    for path, text in filled.items():
        path.write_text(text, encoding="utf-8")
    return [f"stacks/{path.name}" for path in filled]

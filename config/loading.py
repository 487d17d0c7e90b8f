"""Loading a stack's config: `load_stack_config(raw, stack)`, the one entry point from a stack file.

It takes the stack's config as Pulumi hands it over (keys like `leanstack:database`, values either
typed or the JSON strings the engine passes) and returns a `StackConfig`, or raises `ConfigError`
with one line naming the full key, the value given and what is allowed. Nothing here imports
Pulumi, so the tests (and `python -m leanstack`) can validate a stack file without the Pulumi
runtime. What each key may hold is its section's (`config.sections`); what one section's value
means for another's is `config.rules`; this module runs both, in that order.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from leanstack.config.fields import (
    LOADING,
    REGION_ALLOWED,
    REGION_RE,
    ConfigError,
    check_region,
    fields_by_key,
    parse_scalar,
    parse_section,
    parse_value,
    shown,
    unknown_key,
)
from leanstack.config.naming import PROJECT
from leanstack.config.rules import check_across, check_certificate_covers
from leanstack.config.sections.stack import REQUIRED_SECTIONS, SCALARS, SECTIONS, StackConfig


def _load(raw: Mapping[str, Any], stack: str) -> StackConfig:
    """The steps of `load_stack_config`, in the order their errors are reported."""
    ours = _our_keys(raw, stack)
    region = _region(raw)
    for name, spec in SCALARS.items():
        if spec["required"] and name not in ours:
            raise ConfigError(f"{PROJECT}:{name}", f"missing; expected {spec['allowed']}")
    domain = parse_scalar(f"{PROJECT}:domain", ours["domain"], str, SCALARS["domain"])
    given = parse_value(f"{PROJECT}:hostnames", ours.get("hostnames", []), tuple[str, ...], SCALARS["hostnames"])
    hostnames = given or (domain, f"www.{domain}")
    for i, name in enumerate(hostnames):
        if name != domain and not name.endswith("." + domain):
            raise ConfigError(f"{PROJECT}:hostnames[{i}]", f"got {shown(name)}; expected {domain} or a name under it")
    sections = _sections(ours)
    check_certificate_covers(domain, hostnames, bool(given), sections["cdn"])
    alert_email = parse_scalar(f"{PROJECT}:alertEmail", ours["alertEmail"], str, SCALARS["alertEmail"])
    owner = parse_scalar(f"{PROJECT}:owner", ours["owner"], str, SCALARS["owner"]) if "owner" in ours else ""
    config = StackConfig(
        stack=stack,
        region=region,
        domain=domain,
        hostnames=hostnames,
        alert_email=alert_email,
        owner=owner,
        **sections,
    )
    check_across(config)
    return config


def _our_keys(raw: Mapping[str, Any], stack: str) -> dict[str, Any]:
    """The `leanstack:` keys without their namespace, each a known one, for a stack of a valid name."""
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,20}", stack):
        raise ConfigError("stack", f"got {shown(stack)}; expected lower-case letters, digits and '-', at most 21")
    ours = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith(f"{PROJECT}:")}
    known = [*SCALARS, *SECTIONS]
    for name in ours:
        if name not in known:
            raise ConfigError(f"{PROJECT}:{name}", unknown_key(name, known))
    return ours


def _region(raw: Mapping[str, Any]) -> str:
    """The stack's AWS region (`aws:region`, the provider's key), one the provider knows."""
    region = raw.get("aws:region")
    if region is None:
        raise ConfigError("aws:region", "missing; expected the stack's AWS region such as us-east-1")
    parsed: str = parse_scalar(
        "aws:region", region, str, {"pattern": REGION_RE, "allowed": REGION_ALLOWED, "check": check_region}
    )
    return parsed


def _sections(ours: Mapping[str, Any]) -> dict[str, Any]:
    """Every section's Args, parsed from its key or built from its defaults; the required ones must be given."""
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        key = f"{PROJECT}:{name}"
        if name not in ours and name in REQUIRED_SECTIONS:
            missing = [k for k, f in fields_by_key(cls).items() if f.default is dataclasses.MISSING]
            raise ConfigError(key, f"missing; expected an object with at least {', '.join(missing)}")
        sections[name] = parse_section(key, ours.get(name), cls)
    return sections


def load_stack_config(raw: Mapping[str, Any], stack: str) -> StackConfig:
    """Validate a stack's config (the `config:` map of Pulumi.<stack>.yaml) into a StackConfig.

    Raises ConfigError for the first problem found, naming the full key: every section's fields
    first, then the rules across fields and sections (config.rules), in that order.
    """
    token = LOADING.set(True)
    try:
        return _load(raw, stack)
    finally:
        LOADING.reset(token)

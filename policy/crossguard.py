"""The adapter between leanstack's rules and Pulumi CrossGuard (`pulumi_policy`).

`policies()` wraps every `policy.rules.Rule` in a
`ResourceValidationPolicy` (rules judged one resource at a time) or a `StackValidationPolicy`
(rules that need the whole stack), translating what CrossGuard hands over into the rules'
`Subject`/`StackView`:

- props: CrossGuard wraps them in proxies that raise on values unknown during preview; the
  adapter unwraps them and turns each unknown into `rules.UNKNOWN`, so a rule decides what
  an unknown means (it passes, and CrossGuard runs again with known values during `up`);
- region: the resource's own `region` property (pulumi-aws 7 has one) or else its provider's;
- links: a stack resource's `property_dependencies` (which resources flow into which
  property), plus links by value (`rules.link_by_value`) in case the engine reports none;
- the stack's name from `pulumi.get_stack()` (CrossGuard sets it from PULUMI_STACK), its
  region from the `aws:region` config when CrossGuard passes it, else the database's region.

This module needs the Pulumi CLI to do anything real; the test suite drives its translation
functions with stand-in objects and checks the pack registers every rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi.runtime
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
)

from leanstack.policy.rules import RDS, RULES, UNKNOWN, Rule, StackView, Subject, link_by_value

_UNKNOWNS = {
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
}


def plain(value: Any) -> Any:
    """CrossGuard's unknown-checking proxies as plain dicts and lists, unknowns as `UNKNOWN`."""
    if isinstance(value, str):
        return UNKNOWN if value in _UNKNOWNS else value
    if isinstance(value, Mapping):
        raw = value["__target"] if type(value).__name__ == "_DictProxy" else value
        return {str(k): plain(v) for k, v in dict(raw).items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "_ListProxy":
        raw = value["__target"] if type(value).__name__ == "_ListProxy" else value
        return [plain(v) for v in raw]
    return value


def region_of(props: Mapping[str, Any], provider: Any) -> str:
    """The resource's own region, else its provider's ("" when neither is known)."""
    own = props.get("region")
    if isinstance(own, str) and own:
        return own
    provider_props = plain(getattr(provider, "props", None) or {})
    region = provider_props.get("region") if isinstance(provider_props, Mapping) else None
    return region if isinstance(region, str) else ""


def stack_name() -> str:
    try:
        return pulumi.get_stack()
    except Exception:  # outside a configured Pulumi runtime there is no stack name
        return ""


def configured_region() -> str:
    region = pulumi.runtime.get_config_env().get("aws:region", "")
    return region if isinstance(region, str) else ""


def subject_of(
    urn: str,
    type_: str,
    name: str,
    props: Any,
    protect: bool,
    provider: Any,
    links: Mapping[str, tuple[str, ...]] | None = None,
) -> Subject:
    values = plain(props)
    return Subject(
        urn=urn,
        type=type_,
        name=name,
        props=values,
        protect=bool(protect),
        region=region_of(values, provider),
        links=dict(links or {}),
    )


def view_of_stack(resources: list[PolicyResource], stack: str, region: str) -> StackView:
    subjects = [
        subject_of(
            r.urn,
            r.resource_type,
            r.name,
            r.props,
            r.opts.protect,
            r.provider,
            {prop: tuple(d.urn for d in deps) for prop, deps in r.property_dependencies.items()},
        )
        for r in resources
        if not r.resource_type.startswith("pulumi:")
    ]
    if not region:
        # No config passed: the stack's region is where its database lives.
        region = next((s.region for s in subjects if s.type == RDS and s.region), "")
    # Property dependencies first; values as well, for whatever the engine did not report
    # (a property set from a known value rather than another resource's output).
    return StackView(stack=stack, region=region, resources=link_by_value(subjects))


def resource_validation(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        subject = subject_of(args.urn, args.resource_type, args.name, args.props, args.opts.protect, args.provider)
        view = StackView(stack=stack_name(), region=configured_region() or subject.region, resources=(subject,))
        for violation in rule.evaluate(view):
            report_violation(violation.message, None)

    return validate


def stack_validation(rule: Rule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        view = view_of_stack(list(args.resources), stack_name(), configured_region())
        for violation in rule.evaluate(view):
            report_violation(violation.message, violation.urn)

    return validate


def policies(rules: tuple[Rule, ...] = RULES) -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """One CrossGuard policy per rule, all mandatory: a violation stops `pulumi up`."""
    found: list[ResourceValidationPolicy | StackValidationPolicy] = []
    for rule in rules:
        if rule.check_resource is not None:
            found.append(
                ResourceValidationPolicy(
                    name=rule.name,
                    description=rule.description,
                    validate=resource_validation(rule),
                    enforcement_level=EnforcementLevel.MANDATORY,
                )
            )
        else:
            found.append(
                StackValidationPolicy(
                    name=rule.name,
                    description=rule.description,
                    validate=stack_validation(rule),
                    enforcement_level=EnforcementLevel.MANDATORY,
                )
            )
    return found

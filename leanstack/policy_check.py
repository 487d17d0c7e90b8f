"""The policy rules run offline against a recorded run of the program (`leanstack.mocks`).

`view_of(run)` turns a `StackRun` into the `StackView` the rules read; `evaluate_policies(run)`
returns one `PolicyResult` per passed rule and one per violation, for the test suite and for
`python -m leanstack plan`.

The mocks record which resources a resource depends on, not which property carries which
dependency, so a property's links are found by value (`rules.link_by_value`): a property
refers to a resource when its value (or an item of it) is that resource's id, ARN, name or
bucket name, which is what the engine resolves it to.
"""

from __future__ import annotations

from dataclasses import dataclass

from leanstack.mocks import Resource, StackRun
from leanstack.policy.rules import RULES, Rule, StackView, Subject, evaluate, link_by_value


@dataclass(frozen=True)
class PolicyResult:
    """One line of the policy report: a rule that passed, or one violation of it."""

    name: str  # the rule
    resource: str  # the offending resource's name ("" when the rule passed)
    passed: bool
    message: str


def view_of(run: StackRun) -> StackView:
    """The rules' view of an offline run: every custom resource, linked by value."""
    custom = [r for r in run.resources if r.custom and not r.type.startswith("pulumi:providers:")]
    region = str(run.outputs.get("region") or _most_common_region(custom))
    subjects = [
        Subject(
            urn=r.urn,
            type=r.type,
            name=r.name,
            # Inputs plus what the provider reports back (a bucket's generated name), as
            # CrossGuard's stack validation sees a resource.
            props={**r.inputs, **r.outputs},
            protect=r.protect,
            region=r.region,
        )
        for r in custom
    ]
    ids = {r.urn: [r.id] for r in custom if r.id}
    return StackView(stack=run.stack, region=region, resources=link_by_value(subjects, ids))


def _most_common_region(resources: list[Resource]) -> str:
    counts: dict[str, int] = {}
    for r in resources:
        if r.region:
            counts[r.region] = counts.get(r.region, 0) + 1
    return max(sorted(counts), key=lambda region: counts[region]) if counts else ""


def evaluate_policies(run: StackRun, rules: tuple[Rule, ...] = RULES) -> list[PolicyResult]:
    """Every rule against the run: a passed result per clean rule, a failed one per violation."""
    results: list[PolicyResult] = []
    view = view_of(run)
    for rule in rules:
        violations = evaluate(view, (rule,))[rule.name]
        if not violations:
            results.append(PolicyResult(rule.name, "", True, rule.description))
        results += [PolicyResult(rule.name, v.resource, False, v.message) for v in violations]
    return results


def render_results(results: list[PolicyResult]) -> str:
    """The policy report as text lines, for a terminal."""
    failed = [r for r in results if not r.passed]
    rules = sorted({r.name for r in results})
    lines = [f"Policies: {len(rules) - len({r.name for r in failed})}/{len(rules)} rules pass"]
    for result in results:
        mark = "ok  " if result.passed else "FAIL"
        lines.append(f"  {mark} {result.name}: {result.message}")
    return "\n".join(lines) + "\n"

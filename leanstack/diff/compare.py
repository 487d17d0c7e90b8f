"""Two plans of one stack compared (`diff_plans`), and every stack of two sides (`diff_sources`).

The order of a comparison: match the resources (URN, then alias), collect what changed on each and
what a replacement drags along, then file the risks of each concern (what is replaced, deleted or
moved; what a change in place does; what is newly exposed; which policy rules newly fail), and
price both sides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leanstack.cost import estimate, money
from leanstack.diff.findings import RISK_ORDER, Findings
from leanstack.diff.match import (
    cascade_replacements,
    changed_resources,
    match_resources,
    renamed_without_alias,
)
from leanstack.diff.replacements import (
    moved_data_stores,
    removal_risk,
    replaced_vpcs,
    replacement_risk,
    unaliased_renames,
)
from leanstack.diff.safeguards import grants, in_place_risks, new_openings, policy_risks, refusals, safety_risks
from leanstack.diff.sides import Source, git_root, plan_both, refuse_mismatch
from leanstack.diff.values import brief


def diff_plans(stack: str, base: dict[str, Any] | None, head: dict[str, Any] | None) -> dict[str, Any]:
    """Compare one stack's two plans: matched by URN or alias, every change with its risks."""
    old = {r["urn"]: r for r in (base or {}).get("resources", [])}
    new = {r["urn"]: r for r in (head or {}).get("resources", [])}
    pairs, only_old, only_new = match_resources(old, new)
    f = Findings(stack)
    changed, renamed = changed_resources(old, new, pairs)
    existing = {b: new[b] for _, b in pairs}
    cascade_replacements(changed, existing)
    moved_data_stores(f, changed, existing)
    replaced_vpcs(f, changed)
    for c in changed:
        if c["replaced"]:
            why = "; ".join(brief(x) for x in c["replacedBy"])
            replacement_risk(f, c["old"], c["new"], why, head)
        in_place_risks(f, c, head, refusals(f, c["old"], c["new"]))
        safety_risks(f, c["old"], c["new"])
    removed = [old[u] for u in only_old]
    added = [new[u] for u in only_new]
    unaliased = renamed_without_alias(removed, added)
    # A renamed resource's successor has a new id: grants on it are not new grants.
    successor = {
        came["id"]: gone["id"]
        for gone, came in unaliased
        if came.get("id") and gone.get("id") and came["id"] != gone["id"]
    }
    for c in changed:
        grants(f, c["old"], c["new"], successor)
    renamed += unaliased_renames(f, unaliased, head)
    moved = {gone["urn"] for gone, _ in unaliased} | {came["urn"] for _, came in unaliased}
    for gone in removed:
        if gone["urn"] not in moved:
            removal_risk(f, gone, added)
    new_openings(f, base, head)
    policy_risks(f, base, head)
    result: dict[str, Any] = {"added": added, "removed": removed, "changed": changed, "renamed": renamed}
    result["cost"] = _cost(base, head, old, new, pairs)
    result["risks"] = f.sorted()
    result["notes"] = f.notes
    result["exists"] = {"base": base is not None, "head": head is not None}
    return result


def _cost(
    base: dict[str, Any] | None,
    head: dict[str, Any] | None,
    old: dict[str, dict[str, Any]],
    new: dict[str, dict[str, Any]],
    pairs: list[tuple[str, str]],
) -> dict[str, Any]:
    empty: dict[str, Any] = {"total": 0.0, "resources": {}}
    cost_old: dict[str, Any] = estimate(base) if base else empty
    cost_new: dict[str, Any] = estimate(head) if head else empty
    same = dict(pairs)
    rows = [(a, same.get(a)) for a in old] + [(None, b) for b in new if b not in same.values()]
    costs = []
    for a, b in sorted(rows, key=lambda x: str(x[1] or x[0])):
        before = cost_old["resources"].get(a, {}).get("monthly") if a else 0.0
        after = cost_new["resources"].get(b, {}).get("monthly") if b else 0.0
        if before != after:
            r = new[b] if b else old[str(a)]
            delta = None if before is None or after is None else money(after - before)
            costs.append(
                {
                    "urn": r["urn"],
                    "name": r["name"],
                    "type": r["type"],
                    "before": before,
                    "after": after,
                    "delta": delta,
                }
            )
    return {
        "before": cost_old["total"] if base else 0.0,
        "after": cost_new["total"] if head else 0.0,
        "delta": money(cost_new["total"] - cost_old["total"]),
        # Resources whose price the totals leave out: a total with any is partial.
        "notPriced": {"before": len(cost_old.get("notPriced", [])), "after": len(cost_new.get("notPriced", []))},
        "resources": costs,
    }


def diff_sources(
    base_spec: str, head_spec: str | None, stacks: list[str] | None = None, repo: Path | None = None
) -> dict[str, Any]:
    """Resolve both sides, plan them (each side in one process, both in parallel), diff every stack."""
    repo = repo or git_root(Path.cwd()) or Path.cwd()
    base, head = Source(base_spec, repo), Source(head_spec, repo)
    refuse_mismatch(base, head)
    names, planned = plan_both(base, head, stacks)
    per_stack = {}
    for stack in names:
        b, h = planned[0][stack], planned[1][stack]
        if b is None and h is None:
            continue
        per_stack[stack] = diff_plans(stack, b, h)
    changed = any(s["added"] or s["removed"] or s["changed"] or s["renamed"] for s in per_stack.values())
    order = list(RISK_ORDER)
    risks = sorted(
        (r for s in per_stack.values() for r in s["risks"]), key=lambda r: (order.index(r["kind"]), r["stack"])
    )
    return {"base": base.label, "head": head.label, "stacks": per_stack, "risks": risks, "changed": changed}

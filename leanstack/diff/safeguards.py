"""The risks of a change made in place: what it does to a running resource, what AWS refuses,
safeguards weakened, new exposure (IAM grants, ports open to the internet) and policy rules newly
failing."""

from __future__ import annotations

import re
from typing import Any

import leanstack.config.resource_types as resource_types
from leanstack.diff.findings import (
    DOWNTIME,
    ENCRYPTION_CONFIG_TYPES,
    EXPOSURE,
    HOST,
    LIFECYCLE_TYPES,
    OBJECT_LOCK_TYPES,
    POLICY,
    REFUSED,
    WEAKER,
    Findings,
    facts_of,
    holds_data,
    hosts_in,
    named,
)
from leanstack.diff.values import canon, parse_document, show
from leanstack.plan import POLICY_FAILED_EXIT, ingress_openings, source_kind
from leanstack.resource_facts import DOWNGRADE, SHRINK


def _get(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _version(text: Any) -> tuple[int, ...] | None:
    parts = re.findall(r"\d+", str(text or ""))
    return tuple(int(p) for p in parts) if parts else None


def _lock(r: dict[str, Any]) -> tuple[str, int]:
    rule = (r["inputs"].get("rule") or {}).get("defaultRetention") or {}
    return str(rule.get("mode") or ""), int(rule.get("days") or 0) + 365 * int(rule.get("years") or 0)


def _expiry_days(r: dict[str, Any]) -> int:
    days = [
        int((rule.get("expiration") or {}).get("days") or 0)
        for rule in r["inputs"].get("rules") or []
        if rule.get("status", "Enabled") == "Enabled"
    ]
    return min([d for d in days if d] or [0])


def _world_openings(resources: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (o["component"], o["name"], o["port"])
        for o in ingress_openings(resources)
        if o["cidrs"] and source_kind(o["cidrs"]) == "internet"
    }


def _allowed(document: Any) -> set[tuple[str, str]]:
    """(action, resource) pairs an IAM document allows, for what a change newly grants."""
    if not isinstance(document, dict):
        return set()
    statements = document.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    out: set[tuple[str, str]] = set()
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        actions = st.get("Action") or st.get("NotAction") or []
        resources = st.get("Resource") or st.get("NotResource") or ["*"]
        principal = st.get("Principal")
        for action in [actions] if isinstance(actions, str) else actions:
            for resource in [resources] if isinstance(resources, str) else resources:
                out.add((str(action), str(resource) + (f" for {canon(principal)}" if principal else "")))
    return out


def _aws_window(r: dict[str, Any]) -> str:
    window = r["inputs"].get("maintenanceWindow")
    return f"the maintenance window ({window} UTC)" if window else "the next maintenance window"


def in_place_risks(f: Findings, c: dict[str, Any], head: dict[str, Any] | None, refused: set[str]) -> None:
    new = c["new"]
    facts = facts_of(new)
    forced = {x["property"].split(".")[0] for x in c["replacedBy"]}
    changed = {x["property"].split(".")[0] for x in c["changes"]} - forced - refused
    deferred = bool(facts.deferred_by) and new["inputs"].get(facts.deferred_by) is False
    # A replaced resource is created anew with every new value: no in-place effect applies to it.
    for prop in sorted(changed & set(facts.in_place)) if not c["replaced"] else []:
        effect = facts.in_place[prop]
        if new["type"] == HOST and not c["replaced"]:
            only = len(hosts_in(head)) == 1
            f.risk(
                DOWNTIME,
                new,
                f"{'the only host' if only else 'host'} `{new['name']}`: `{prop}` changes: {effect}. Instead: apply it "
                f"in a quiet hour",
            )
        elif prop == "multiAz":
            f.note(new, f"`multiAz`: {effect}")
        elif prop == "parameters":
            f.note(new, f"`parameters`: {effect}")
        elif deferred:
            f.note(
                new,
                f"`{prop}` applies in {_aws_window(new)}, not at `pulumi up` ({facts.deferred_by} is false); "
                f"then: {effect}",
            )
        elif facts.deferred_by:
            f.risk(
                DOWNTIME,
                new,
                f"{named(new)}: `{prop}` changes at `pulumi up`: {effect}. Instead: set {facts.deferred_by} false so "
                f"it waits for the maintenance window",
            )
        else:
            f.note(new, f"`{prop}`: {effect}")
    if new["type"] == resource_types.EC2_LAUNCH_TEMPLATE.token and changed - {"tags", "tagSpecifications"}:
        groups = [
            r
            for r in (head or {}).get("resources", [])
            if r["type"] == resource_types.AUTOSCALING_GROUP.token
            and (r["inputs"].get("launchTemplate") or {}).get("id") == new.get("id")
        ]
        for g in groups:
            refresh = (g["inputs"].get("instanceRefresh") or {}).get("preferences") or {}
            healthy = refresh.get("minHealthyPercentage")
            if not g["inputs"].get("instanceRefresh"):
                f.risk(
                    DOWNTIME,
                    g,
                    f"{named(g)}: launch template `{new['name']}` changes but the group has no instance refresh: "
                    f"its hosts keep the old version until replaced by hand",
                )
            elif healthy is not None and int(healthy) >= 100:
                f.note(
                    g,
                    f"launch template `{new['name']}` changed: a rolling instance refresh launches each new host "
                    f"before terminating an old one (min healthy {healthy} %): no downtime expected",
                )
            else:
                f.risk(
                    DOWNTIME,
                    g,
                    f"{named(g)}: launch template `{new['name']}` changed: the instance refresh terminates hosts "
                    f"before their replacements are healthy (min healthy {healthy} %): the work they do pauses for "
                    f"minutes",
                )


def refusals(f: Findings, old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    """Flag the changes AWS refuses; return their properties."""
    facts = facts_of(new)
    refused: set[str] = set()
    for prop, rule in sorted(facts.refused.items()):
        before, after = _get(old["inputs"], prop), _get(new["inputs"], prop)
        if before is None or after is None or before == after:
            continue
        if rule == DOWNGRADE:
            a, b = _version(before), _version(after)
            if a is not None and b is not None and b < a[: len(b)]:
                refused.add(prop)
                f.risk(
                    REFUSED,
                    new,
                    f"{named(new)}: `{prop}` {before} → {after} is a downgrade, which AWS refuses: `pulumi up` will "
                    f"fail at this step (after applying the changes before it). Instead: keep {before}, or restore "
                    f"a dump into a new {after} instance and switch",
                )
        elif rule == SHRINK and isinstance(before, int | float) and isinstance(after, int | float) and after < before:
            refused.add(prop)
            f.risk(
                REFUSED,
                new,
                f"{named(new)}: `{prop}` {before} → {after} shrinks it, which AWS refuses: `pulumi up` will fail at "
                f"this step. Instead: keep {before}"
                + (", or restore a dump into a new, smaller instance" if facts.holds_data else ""),
            )
    return refused


def safety_risks(f: Findings, old: dict[str, Any], new: dict[str, Any]) -> None:
    facts = facts_of(new)
    o, n = old["inputs"], new["inputs"]
    for path in facts.safety:
        if _get(o, path) and not _get(n, path):
            extra = ""
            if path == "multiAz":
                extra = (
                    ": the standby is dropped; a host or AZ failure now means an outage until RDS recovers or a restore"
                )
            f.risk(WEAKER, new, f"{named(new)}: `{path}` true → {show(_get(n, path))}{extra}")
    for path in facts.unsafe_when_on:
        if not _get(o, path) and _get(n, path):
            f.risk(WEAKER, new, f"{named(new)}: `{path}` turned on")
    for path in facts.exposes_when_on:
        if not _get(o, path) and _get(n, path):
            f.risk(EXPOSURE, new, f"{named(new)}: `{path}` turned on: reachable from the internet")
    for path in facts.exposes_when_off:
        if _get(o, path) and not _get(n, path):
            what = "the CDN no longer proxies it: the origin's address is public" if path == "proxied" else "turned off"
            f.risk(EXPOSURE, new, f"{named(new)}: `{path}` {what}")
    for path in facts.retention:
        before, after = _get(o, path), _get(n, path)
        if not (isinstance(before, int) and isinstance(after, int)) or before == after:
            continue
        # A log group's retention of 0 means "never expire".
        never = path == "retentionInDays"
        shorter = (before == 0 and after > 0) if never else after < before
        if never and after == 0:
            shorter = False
        if shorter:
            f.risk(WEAKER, new, f"{named(new)}: `{path}` {before} → {after}: less history kept")
    if old["options"].get("protect") and not new["options"].get("protect"):
        f.risk(WEAKER, new, f"{named(new)}: Pulumi `protect` removed")
    if holds_data(new) and old["options"].get("retainOnDelete") and not new["options"].get("retainOnDelete"):
        f.risk(WEAKER, new, f"{named(new)}: `retainOnDelete` removed: deleting it from the program now deletes it")
    kind = new["type"]
    if kind in OBJECT_LOCK_TYPES:
        (m0, d0), (m1, d1) = _lock(old), _lock(new)
        if (m0 == "COMPLIANCE" and m1 != "COMPLIANCE") or (m0 and not m1):
            f.risk(WEAKER, new, f"{named(new)}: Object Lock mode {m0 or 'none'} → {m1 or 'none'} for new objects")
        if d1 < d0:
            f.risk(WEAKER, new, f"{named(new)}: Object Lock default retention {d0} → {d1} days for new objects")
    if kind in LIFECYCLE_TYPES:
        e0, e1 = _expiry_days(old), _expiry_days(new)
        if e0 and e1 and e1 < e0:
            f.risk(WEAKER, new, f"{named(new)}: objects now expire after {e1} days instead of {e0}")
    if kind in ENCRYPTION_CONFIG_TYPES and canon(o.get("rules")) != canon(n.get("rules")):
        algorithms = {str(_get(r, "applyServerSideEncryptionByDefault.sseAlgorithm")) for r in n.get("rules") or []}
        if not algorithms or algorithms <= {"None", ""}:
            f.risk(WEAKER, new, f"{named(new)}: default encryption removed")


def grants(f: Findings, old: dict[str, Any], new: dict[str, Any], successor: dict[str, str]) -> None:
    for prop in ("policy", "assumeRolePolicy"):
        text = new["inputs"].get(prop)
        for after, before in successor.items():
            text = text.replace(after, before) if isinstance(text, str) else text
        a, b = parse_document(old["inputs"].get(prop)), parse_document(text)
        if b is None:
            continue
        more = sorted(_allowed(b) - _allowed(a))
        if more:
            listed = "; ".join(f"{action} on {resource}" for action, resource in more)
            f.risk(EXPOSURE, new, f"{named(new)}: `{prop}` now also allows {listed}")


def policy_risks(f: Findings, base: dict[str, Any] | None, head: dict[str, Any] | None) -> None:
    before = {(p["name"], p["resource"]) for p in (base or {}).get("policies", []) if not p["passed"]}
    for p in (head or {}).get("policies", []):
        if p["passed"] or (p["name"], p["resource"]) in before:
            continue
        target = next((r for r in head["resources"] if r["name"] == p["resource"]), None) if head else None
        r = target or {"type": "policy", "name": p["resource"] or p["name"], "urn": ""}
        f.risk(
            POLICY,
            r,
            f"rule `{p['name']}` now fails: {p['message']}. `pulumi up` with the policy pack refuses the change, "
            f"and `plan` exits {POLICY_FAILED_EXIT}",
        )


def new_openings(f: Findings, base: dict[str, Any] | None, head: dict[str, Any] | None) -> None:
    """Ports that the head newly opens to the whole internet."""
    before = _world_openings(base["resources"]) if base else set()
    after = _world_openings(head["resources"]) if head else set()
    for owner, opened, port in sorted(after - before):
        hit = next((x for x in (head or {}).get("resources", []) if x["name"] == opened), None)
        if hit is not None:
            f.risk(EXPOSURE, hit, f"{named(hit)} ({owner}): {port} open to 0.0.0.0/0 or ::/0")

"""Which resource of one plan is which of the other, and what changed on it: matched by URN,
then by alias; the inputs and options that differ; which of them force a replacement, and what a
replacement drags along (whatever refers to the replaced resource)."""

from __future__ import annotations

from typing import Any

from leanstack.diff.findings import facts_of


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted paths; lists stay whole values (compared as a whole)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def property_changes(
    old: dict[str, Any], new: dict[str, Any], renamed: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Changed inputs (dotted paths) and options. `renamed` maps an aliased provider's new name
    to its old one: a resource whose provider was only renamed keeps its provider."""
    a, b = flatten(old["inputs"]), flatten(new["inputs"])
    changes = [
        {"property": key, "old": a.get(key), "new": b.get(key)}
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    ]
    for key in ("protect", "retainOnDelete", "provider", "region"):
        after = new["options"].get(key)
        if key == "provider" and renamed:
            after = renamed.get(str(after), after)
        if old["options"].get(key) != after:
            changes.append(
                {"property": f"options.{key}", "old": old["options"].get(key), "new": new["options"].get(key)}
            )
    return changes


def changed_resources(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]], pairs: list[tuple[str, str]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the matched resources that changed, each with its changes and what forces a replacement;
    the resources renamed with an alias)."""
    changed: list[dict[str, Any]] = []
    renamed: list[dict[str, Any]] = []
    aliased_names = {new[b]["name"]: old[a]["name"] for a, b in pairs if a != b}
    for a, b in pairs:
        changes = property_changes(old[a], new[b], aliased_names)
        if a != b:
            renamed.append({"from": a, "to": b, "name": new[b]["name"], "type": new[b]["type"], "aliased": True})
        if changes:
            forcing = forcing_changes(new[b], changes)
            changed.append(
                {
                    "urn": b,
                    "type": new[b]["type"],
                    "name": new[b]["name"],
                    "component": new[b]["component"],
                    "changes": changes,
                    "replaced": bool(forcing),
                    "replacedBy": forcing,
                    "old": old[a],
                    "new": new[b],
                }
            )
    return changed, renamed


def forcing_changes(r: dict[str, Any], changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes that make the provider replace `r` (its region included)."""
    facts = facts_of(r)
    out = []
    for c in changes:
        path = c["property"]
        top = path.split(".")[0]
        flag = facts.replaces_if.get(top)
        conditional = bool(flag) and bool(r["inputs"].get(flag))
        if path == "options.region" or top in facts.replaces or path in facts.replaces or conditional:
            out.append(c)
    return out


def _old_names(r: dict[str, Any]) -> set[str]:
    return set(r.get("aliases") or [])


def match_resources(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """(pairs of old URN, new URN for the same resource, URNs only old, URNs only new).
    A new resource is the old one when it has the same URN or lists the old URN in its aliases."""
    pairs = [(u, u) for u in sorted(set(old) & set(new))]
    only_old = set(old) - set(new)
    only_new = set(new) - set(old)
    for urn in sorted(only_new):
        hit = sorted(_old_names(new[urn]) & only_old)
        if hit:
            pairs.append((hit[0], urn))
            only_old.discard(hit[0])
            only_new.discard(urn)
    return pairs, sorted(only_old), sorted(only_new)


def component_name(r: dict[str, Any]) -> str:
    return str(r["name"]).split("-", 1)[0]


def renamed_without_alias(
    removed: list[dict[str, Any]], added: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Removed and added resources that are the same thing under a new name (same type, same
    component, and the same name after the component's own name)."""
    out = []
    taken: set[str] = set()
    for r in removed:
        rest = r["name"].split("-", 1)[1] if "-" in r["name"] else ""
        for a in added:
            if a["urn"] in taken or a["type"] != r["type"] or a["component"] != r["component"]:
                continue
            a_rest = a["name"].split("-", 1)[1] if "-" in a["name"] else ""
            if a["name"] == r["name"] or (rest and a_rest == rest):
                out.append((r, a))
                taken.add(a["urn"])
                break
    return out


def ids_of(r: dict[str, Any]) -> set[str]:
    return {v for v in (r.get("id"),) if isinstance(v, str) and len(v) > 6}


def _refers(value: Any, ident: str) -> bool:
    return value == ident or (isinstance(value, list) and ident in value)


def cascade_replacements(changed: list[dict[str, Any]], new: dict[str, dict[str, Any]]) -> None:
    """A replaced resource gets a new id: whatever refers to it in a property that forces
    replacement (a subnet's VPC, a host's subnet) is replaced too. The mocks keep ids stable,
    so this follows the references the plan shows."""
    by_urn = {c["urn"]: c for c in changed}
    replaced = {c["urn"] for c in changed if c["replaced"]}
    grew = True
    while grew:
        grew = False
        gone_ids = {i: new[u]["name"] for u in replaced for i in ids_of(new[u])}
        for urn, r in new.items():
            if urn in replaced:
                continue
            facts = facts_of(r)
            hits = [
                (prop, gone_ids[i])
                for prop in sorted(facts.replaces)
                for i in gone_ids
                if _refers(r["inputs"].get(prop), i)
            ]
            if not hits:
                continue
            reason = [{"property": f"`{p}` refers to `{name}`, which is replaced"} for p, name in hits]
            if urn in by_urn:
                by_urn[urn]["replaced"] = True
                by_urn[urn]["replacedBy"] = by_urn[urn]["replacedBy"] + reason
            else:
                entry = {
                    "urn": urn,
                    "type": r["type"],
                    "name": r["name"],
                    "component": r["component"],
                    "changes": [],
                    "replaced": True,
                    "replacedBy": reason,
                    "old": r,
                    "new": r,
                }
                changed.append(entry)
                by_urn[urn] = entry
            replaced.add(urn)
            grew = True
    # What is not replaced but names a replaced resource in another property is updated in place
    # to the new one (an internet gateway's VPC, an address's instance, a database's security groups).
    gone_ids = {i: new[u]["name"] for u in replaced for i in ids_of(new[u])}
    for urn, r in new.items():
        if urn in replaced:
            continue
        follows = [
            {"property": prop, "old": value, "new": f"{FOLLOWS}{gone_ids[i]}`, which is replaced)"}
            for prop, value in sorted(flatten(r["inputs"]).items())
            for i in gone_ids
            if _refers(value, i)
        ]
        if not follows:
            continue
        if urn in by_urn:
            known = {x["property"] for x in by_urn[urn]["changes"]}
            by_urn[urn]["changes"] += [x for x in follows if x["property"] not in known]
        else:
            entry = {
                "urn": urn,
                "type": r["type"],
                "name": r["name"],
                "component": r["component"],
                "changes": follows,
                "replaced": False,
                "replacedBy": [],
                "old": r,
                "new": r,
            }
            changed.append(entry)
            by_urn[urn] = entry
    changed.sort(key=lambda c: c["urn"])


FOLLOWS = "(the new id of `"


def follows_replaced(change: dict[str, Any]) -> bool:
    """A property updated in place only because it names a replaced resource."""
    return str(change.get("new", "")).startswith(FOLLOWS)

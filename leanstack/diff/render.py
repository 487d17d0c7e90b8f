"""A diff as text (the terminal), markdown (a pull request comment) or JSON."""

from __future__ import annotations

import json
import re
from typing import Any

from leanstack.cost import fmt_delta, fmt_money
from leanstack.diff.values import render_change


def _counts(s: dict[str, Any]) -> str:
    replaced = sum(1 for c in s["changed"] if c["replaced"])
    extra = f" ({replaced} replaced)" if replaced else ""
    moved = sum(1 for r in s["renamed"] if r["aliased"])
    aliased = f", {moved} renamed with an alias" if moved else ""
    return f"{len(s['added'])} added, {len(s['removed'])} removed, {len(s['changed'])} changed{extra}{aliased}"


def _cost_line(s: dict[str, Any]) -> str:
    c = s["cost"]
    line = f"{fmt_money(c['before'])} → {fmt_money(c['after'])} a month ({fmt_delta(c['delta'])})"
    unpriced = c.get("notPriced") or {}
    if unpriced.get("before") or unpriced.get("after"):
        line += f"; PARTIAL: {unpriced['before']} → {unpriced['after']} resources not priced, not in the totals"
    return line


def _change_lines(s: dict[str, Any]) -> list[str]:
    """Every change of one stack, as plain lines (the body of both renderers)."""
    lines: list[str] = []
    for c in s["changed"]:
        verb = "REPLACE" if c["replaced"] else "update"
        lines.append(f"~ {verb} {c['type']}  {c['name']}  ({c['component']})")
        for x in c["changes"]:
            lines += [f"    {line}" for line in render_change(x)]
        if c["replaced"]:
            forced = [x["property"] if "old" not in x else f"`{x['property']}`" for x in c["replacedBy"]]
            lines.append(f"    replaced because: {'; '.join(forced)}")
        for note in s["notes"].get(c["urn"], []):
            lines.append(f"    note: {note}")
    for r in s["renamed"]:
        if r["aliased"]:
            lines.append(f"= renamed {r['type']}  {r['from'].rsplit('::', 1)[-1]} → {r['name']}: aliased, no change")
    for r in s["added"]:
        lines.append(f"+ create {r['type']}  {r['name']}  ({r['component']})")
    for r in s["removed"]:
        verb = "forget (retainOnDelete: left in place)" if r["options"].get("retainOnDelete") else "delete"
        lines.append(f"- {verb} {r['type']}  {r['name']}  ({r['component']})")
    changed_urns = {c["urn"] for c in s["changed"]}
    for urn, notes in sorted(s["notes"].items()):
        if urn not in changed_urns:
            lines += [f"  note on {urn.rsplit('::', 1)[-1]}: {n}" for n in notes]
    return lines


FOOTER = (
    "Offline diff of `python -m leanstack plan` under mocks. What replaces, restarts or is refused comes from "
    "leanstack/resource_facts.py (the provider's schema and AWS's documentation); what AWS does at apply time "
    "cannot be checked offline: a `pulumi preview` with credentials is the final word. Prices are on-demand list "
    "prices from leanstack/pricing.json."
)


def mock_values(body: str) -> str:
    """One line naming the values in `body` the offline mocks made up (AWS assigns the real ones), or ""."""
    from leanstack.mocks import MOCK_ACCOUNT, MOCK_CACHE_ENDPOINT

    found = [f"the account id `{MOCK_ACCOUNT}`"] if MOCK_ACCOUNT in body else []
    endpoints = sorted(set(re.findall(MOCK_CACHE_ENDPOINT, body)))
    found += [f"the cache endpoint `{e}`" for e in endpoints]
    if not found:
        return ""
    return f"Mock values, made up offline and not your stack's (AWS assigns the real ones): {', '.join(found)}."


def render_markdown(result: dict[str, Any]) -> str:
    lines = [f"## leanstack diff: `{result['base']}` → `{result['head']}`", ""]
    risks = result["risks"]
    if risks:
        lines += [f"### ⚠️ Risk: {len(risks)} finding{'s' if len(risks) != 1 else ''}", ""]
        lines += [f"- **{r['stack']}** — **{r['kind']}**: {r['text']}" for r in risks]
    else:
        lines += ["### Risk: none found", "", "No data lost, no downtime, nothing refused by AWS, no new exposure, "
                  "no safeguard weakened, nothing orphaned, no policy rule newly failing."]  # fmt: skip
    lines += ["", "| Stack | Changes | Monthly cost |", "| --- | --- | --- |"]
    for stack, s in result["stacks"].items():
        lines.append(f"| {stack} | {_counts(s)} | {_cost_line(s)} |")
    for stack, s in result["stacks"].items():
        if not (s["added"] or s["removed"] or s["changed"] or s["renamed"]):
            continue
        lines += ["", f"### {stack}", ""]
        if not s["exists"]["base"]:
            lines.append("_New stack._")
        if not s["exists"]["head"]:
            lines.append("_Stack removed._")
        fence = "````" if any("```" in line for line in _change_lines(s)) else "```"
        lines += [f"{fence}diff", *_change_lines(s), fence]
        if s["cost"]["resources"]:
            lines += ["", "| Resource | Before | After | Delta |", "| --- | ---: | ---: | ---: |"]
            for c in s["cost"]["resources"]:
                delta = fmt_delta(c["delta"]) if c["delta"] is not None else "not priced"
                lines.append(f"| {c['name']} | {fmt_money(c['before'])} | {fmt_money(c['after'])} | {delta} |")
    if mocked := mock_values("\n".join(lines)):
        lines += ["", f"_{mocked}_"]
    lines += ["", f"_{FOOTER}_", ""]
    return "\n".join(lines)


def render_text(result: dict[str, Any]) -> str:
    lines = [f"leanstack diff: {result['base']} → {result['head']}", ""]
    if result["risks"]:
        lines.append(f"RISK: {len(result['risks'])} finding(s)")
        lines += [f"  ! [{r['stack']}] {r['kind']}: {r['text']}" for r in result["risks"]]
    else:
        lines.append("Risk: none found")
    for stack, s in result["stacks"].items():
        lines += ["", f"{stack}: {_counts(s)}; {_cost_line(s)}"]
        lines += [f"  {line}" for line in _change_lines(s)]
        for c in s["cost"]["resources"]:
            delta = fmt_delta(c["delta"]) if c["delta"] is not None else "not priced"
            lines.append(f"  $ {c['name']}: {fmt_money(c['before'])} → {fmt_money(c['after'])} ({delta})")
    if mocked := mock_values("\n".join(lines)):
        lines += ["", mocked]
    lines += ["", FOOTER]
    return "\n".join(lines) + "\n"


def render_json(result: dict[str, Any]) -> str:
    slim = json.loads(json.dumps(result))
    for s in slim["stacks"].values():
        for c in s["changed"]:
            c.pop("old", None)
            c.pop("new", None)
        s["added"] = [{"urn": r["urn"], "type": r["type"], "name": r["name"]} for r in s["added"]]
        s["removed"] = [{"urn": r["urn"], "type": r["type"], "name": r["name"]} for r in s["removed"]]
    return json.dumps(slim, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}

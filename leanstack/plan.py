"""The offline plan: every resource a stack would create, grouped by component, priced.

`build_plan(run)` turns a recorded offline run into a plain, JSON-ready dict that is
stable across runs and machines (sorted, no timestamps, secrets as "[secret]"). The
renderers print it for a terminal (`render_text`), a pull-request comment
(`render_markdown`, with a summary table and a Mermaid architecture diagram) or as a
snapshot (`render_json`). Everything but `build_plan` works on the plain dict, so a saved
JSON plan renders the same way, and none of it needs the Pulumi runtime.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from typing import TYPE_CHECKING, Any

from leanstack.config.resource_types import (
    ALARM,
    AUTOSCALING_GROUP,
    BUDGETS_BUDGET,
    CLOUDFLARE_DNS_RECORD,
    CLOUDWATCH_DASHBOARD,
    CLOUDWATCH_EVENT_TARGET,
    CLOUDWATCH_LOG_GROUP,
    EC2_EIP,
    EC2_INSTANCE,
    EC2_LAUNCH_TEMPLATE,
    EC2_SECURITY_GROUP,
    EC2_SECURITY_GROUP_RULE,
    ECR_REPOSITORY,
    ELASTICACHE_REPLICATION_GROUP,
    IAM_POLICY,
    IAM_ROLE_POLICY,
    LB_LOAD_BALANCER,
    RDS_INSTANCE,
    ROUTE53_HEALTH_CHECK,
    S3_BUCKET,
    S3_BUCKET_V2,
    SECRETSMANAGER_SECRET,
    SNS_TOPIC,
    SNS_TOPIC_SUBSCRIPTION,
    SSM_PARAMETER,
    TYPES,
    VPC_SECURITY_GROUP_INGRESS_RULE,
    tokens_in,
)
from leanstack.cost import estimate, fmt_money, fmt_total, load_pricing
from leanstack.resource_facts import facts_for

if TYPE_CHECKING:
    from leanstack.mocks import StackRun

# 2: every resource carries `aliases`, the URNs it answers to (a rename with an alias is no change).
PLAN_FORMAT_VERSION = 2

# The inputs worth a line in the text plan, per resource type (the table's); the JSON plan has them all.
KEY_INPUTS: dict[str, tuple[str, ...]] = {token: entry.key_inputs for token, entry in TYPES.items() if entry.key_inputs}
ALARM_TYPES = tokens_in(ALARM)
WORLD = frozenset({"0.0.0.0/0", "::/0"})


def build_plan(run: StackRun) -> dict[str, Any]:
    """A JSON-ready, deterministic description of everything the stack declares, with its cost."""
    from leanstack.mocks import redact

    components = {r.urn: r for r in run.components()}
    aliases = alias_urns(run)
    resources = []
    for r in run.resources:
        if r.urn in components:
            continue
        resources.append(
            {
                "component": r.component,
                "type": r.type,
                "name": r.name,
                "urn": r.urn,
                "id": r.id if r.custom else "",
                "inputs": redact(r.inputs),
                "aliases": aliases.get(r.urn, []),
                "options": {
                    "protect": r.protect,
                    "retainOnDelete": r.retain_on_delete,
                    "provider": r.provider.rsplit("::", 1)[-1] if r.provider else "default",
                    "region": r.region,
                },
            }
        )
    resources.sort(key=lambda item: (item["component"], item["type"], item["name"]))
    plan: dict[str, Any] = {
        "leanstackPlan": PLAN_FORMAT_VERSION,
        "stack": run.stack,
        "components": sorted({str(item["component"]) for item in resources}),
        "resources": resources,
        "outputs": redact(run.outputs),
    }
    plan["cost"] = estimate(plan)
    plan["summary"] = summarize(plan)
    plan["policies"] = policy_results(run)
    return plan


def _qualified_type(urn: str) -> str:
    return urn.split("::")[2]


def _urn(stack: str, project: str, parent: str, kind: str, name: str) -> str:
    """A resource's URN as the engine forms it: its type qualified by its parents' types."""
    chain = _qualified_type(parent) if parent else ""
    qualified = kind if not chain or chain == "pulumi:pulumi:Stack" else f"{chain}${kind}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def alias_urns(run: StackRun) -> dict[str, list[str]]:
    """Per resource, the earlier URNs its `aliases` (and its parents' aliases) make it answer to,
    resolved the way the engine resolves them: a child of an aliased component is aliased too,
    with the component's old name in place of the new one at the start of its name."""
    by_urn = {r.urn: r for r in run.resources}
    resolved: dict[str, list[str]] = {}

    def of(urn: str) -> list[str]:
        if urn in resolved or urn not in by_urn:
            return resolved.get(urn, [])
        r = by_urn[urn]
        head, project = urn.split("::")[:2]
        stack = head.rsplit(":", 1)[1]
        found: set[str] = set()
        for spec in r.alias_specs:
            if "urn" in spec:
                found.add(spec["urn"])
                continue
            parent = "" if spec.get("noParent") else spec.get("parentUrn") or r.parent
            found.add(
                _urn(
                    spec.get("stack") or stack,
                    spec.get("project") or project,
                    parent,
                    spec.get("type") or r.type,
                    spec.get("name") or r.name,
                )
            )
        parent_resource = by_urn.get(r.parent)
        for old_parent in of(r.parent):
            name = r.name
            if parent_resource is not None and name.startswith(parent_resource.name):
                name = old_parent.rsplit("::", 1)[1] + name[len(parent_resource.name) :]
            found.add(_urn(stack, project, old_parent, r.type, name))
        found.discard(urn)
        resolved[urn] = sorted(found)
        return resolved[urn]

    for r in run.resources:
        of(r.urn)
    return resolved


def policy_results(run: StackRun) -> list[dict[str, Any]]:
    """The policy pack's rules (policy/rules/) run against this plan, as plain dicts."""
    from leanstack.policy_check import evaluate_policies

    return [dataclasses.asdict(result) for result in evaluate_policies(run)]


# Exit code of `python -m leanstack plan` when a mandatory policy rule fails (every rule of the
# pack is mandatory): distinct from 1 (diff: changes) and 2 (bad input).
POLICY_FAILED_EXIT = 4


def failed_policies(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's failed policy results (every rule is mandatory)."""
    return [r for r in plan.get("policies", []) if not r["passed"]]


def _policy_lines(plan: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    results: list[dict[str, Any]] = plan.get("policies", [])
    rules = sorted({r["name"] for r in results})
    failed = [r for r in results if not r["passed"]]
    headline = f"{len(rules) - len({r['name'] for r in failed})}/{len(rules)} policy rules pass"
    return headline, failed


# --------------------------------------------------------------------------- exposure


def _cloudflare_ranges() -> frozenset[str]:
    from leanstack.mocks import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6

    return frozenset(CLOUDFLARE_IPV4) | frozenset(CLOUDFLARE_IPV6)


def _ports(low: Any, high: Any, protocol: Any) -> str:
    proto = str(protocol or "tcp")
    if proto in ("-1", "all"):
        return "all ports"
    lo, hi = int(low or 0), int(high or low or 0)
    return f"{lo}/{proto}" if lo == hi else f"{lo}-{hi}/{proto}"


def source_kind(cidrs: list[str], cloudflare: frozenset[str] | None = None) -> str:
    """'internet' for 0.0.0.0/0 or ::/0, 'cloudflare' for Cloudflare's ranges only, 'public' for
    other public ranges, 'private' for addresses inside private networks only."""
    if not cidrs:
        return "private"
    if any(c in WORLD for c in cidrs):
        return "internet"
    if cloudflare is not None and all(c in cloudflare for c in cidrs):
        return "cloudflare"
    try:
        if all(ipaddress.ip_network(c, strict=False).is_private for c in cidrs):
            return "private"
    except ValueError:
        return "public"
    return "public"


def ingress_openings(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every ingress opening declared by a security group or rule: port, CIDRs or source group."""
    found: list[dict[str, Any]] = []
    for r in resources:
        i, kind = r["inputs"], r["type"]
        entries: list[dict[str, Any]] = []
        if kind == EC2_SECURITY_GROUP.token:
            for e in i.get("ingress") or []:
                entries.append(
                    {
                        "port": _ports(e.get("fromPort"), e.get("toPort"), e.get("protocol")),
                        "cidrs": list(e.get("cidrBlocks") or []) + list(e.get("ipv6CidrBlocks") or []),
                        "groups": list(e.get("securityGroups") or []),
                        "target": r.get("id") or r["name"],
                    }
                )
        elif kind == VPC_SECURITY_GROUP_INGRESS_RULE.token:
            cidrs = [c for c in (i.get("cidrIpv4"), i.get("cidrIpv6")) if c]
            ref = i.get("referencedSecurityGroupId")
            entries.append(
                {
                    "port": _ports(i.get("fromPort"), i.get("toPort"), i.get("ipProtocol")),
                    "cidrs": cidrs,
                    "groups": [ref] if ref else [],
                    "target": i.get("securityGroupId", ""),
                }
            )
        elif kind == EC2_SECURITY_GROUP_RULE.token and i.get("type") == "ingress":
            ref = i.get("sourceSecurityGroupId")
            entries.append(
                {
                    "port": _ports(i.get("fromPort"), i.get("toPort"), i.get("protocol")),
                    "cidrs": list(i.get("cidrBlocks") or []) + list(i.get("ipv6CidrBlocks") or []),
                    "groups": [ref] if ref else [],
                    "target": i.get("securityGroupId", ""),
                }
            )
        for e in entries:
            found.append({**e, "component": r["component"], "name": r["name"], "type": kind})
    return found


def internet_exposure(plan: dict[str, Any]) -> dict[str, list[str]]:
    """Per component, what is reachable from outside AWS: ports and sources, as short lines."""
    cloudflare = _cloudflare_ranges()
    out: dict[str, set[str]] = {}
    for o in ingress_openings(plan["resources"]):
        kind = source_kind(o["cidrs"], cloudflare)
        if o["groups"] and not o["cidrs"]:
            continue
        label = {
            "internet": "anywhere (0.0.0.0/0 or ::/0)",
            "cloudflare": "Cloudflare's IP ranges only",
            "public": f"{len(o['cidrs'])} public CIDR(s)",
        }.get(kind)
        if label:
            out.setdefault(o["component"], set()).add(f"{o['port']} from {label}")
    for r in plan["resources"]:
        i = r["inputs"]
        if r["type"] == RDS_INSTANCE.token and i.get("publiclyAccessible"):
            out.setdefault(r["component"], set()).add(f"{i.get('port', 5432)}/tcp: database publicly accessible")
        if r["type"] == CLOUDFLARE_DNS_RECORD.token:
            if i.get("proxied"):
                out.setdefault(r["component"], set()).add(f"80,443/tcp at Cloudflare's edge: {i.get('name')}")
            else:
                out.setdefault(r["component"], set()).add(f"DNS {i.get('name')} points at the origin, not proxied")
    return {c: sorted(v) for c, v in sorted(out.items())}


def count_secrets(resources: list[dict[str, Any]]) -> dict[str, int]:
    """Secrets someone must protect, per component: Secrets Manager secrets (RDS-managed ones
    included) and SSM SecureString parameters."""
    out: dict[str, int] = {}
    for r in resources:
        kind, i = r["type"], r["inputs"]
        secret = (
            kind == SECRETSMANAGER_SECRET.token
            or (kind == RDS_INSTANCE.token and bool(i.get("manageMasterUserPassword")))
            or (kind == SSM_PARAMETER.token and i.get("type") == "SecureString")
        )
        if secret:
            out[r["component"]] = out.get(r["component"], 0) + 1
    return out


def summarize(plan: dict[str, Any]) -> dict[str, Any]:
    """Per component: resources, monthly cost, secrets, alarms and internet exposure."""
    cost = plan.get("cost") or estimate(plan)
    secrets = count_secrets(plan["resources"])
    exposure = internet_exposure(plan)
    rows: dict[str, Any] = {}
    for component in plan["components"]:
        members = [r for r in plan["resources"] if r["component"] == component]
        rows[component] = {
            "resources": len(members),
            "monthly": cost["components"][component]["monthly"],
            "notPriced": len(cost["components"][component]["notPriced"]),
            "secrets": secrets.get(component, 0),
            "alarms": sum(1 for r in members if r["type"] in ALARM_TYPES),
            "healthChecks": sum(1 for r in members if r["type"] == ROUTE53_HEALTH_CHECK.token),
            "internet": exposure.get(component, []),
        }
    return {
        "components": rows,
        "total": {
            "resources": len(plan["resources"]),
            "monthly": cost["total"],
            "notPriced": len(cost["notPriced"]),
            "secrets": sum(v["secrets"] for v in rows.values()),
            "alarms": sum(v["alarms"] for v in rows.values()),
        },
    }


# --------------------------------------------------------------------------- diagram

_NODE_IDS = {
    "Cdn": "cdn",
    "ProxyHost": "host",
    "Database": "db",
    "Cache": "cache",
    "BackupBucket": "backup",
    "Alerts": "alerts",
}
_NOT_DRAWN = frozenset({"Stack", "Network", "OriginCertificate"})


def _node_id(component: str) -> str:
    return _NODE_IDS.get(component) or "".join(ch for ch in component.lower() if ch.isalnum()) or "node"


def _label(text: str) -> str:
    return text.replace('"', "'")


def _hosts_label(resources: list[dict[str, Any]]) -> str:
    """The hosts in scale mode: Auto Scaling groups of launch-template hosts, by role."""
    templates = {r.get("id"): r["inputs"] for r in resources if r["type"] == EC2_LAUNCH_TEMPLATE.token}
    parts = []
    for g in sorted((r for r in resources if r["type"] == AUTOSCALING_GROUP.token), key=lambda r: str(r["name"])):
        i = g["inputs"]
        template = templates.get((i.get("launchTemplate") or {}).get("id"), {})
        low, high = i.get("minSize"), i.get("maxSize")
        size = f"{low}" if low == high else f"{low}-{high}"
        role = str(g["name"]).rsplit("-", 1)[-1]
        parts.append(f"{role}: {size} x EC2 {template.get('instanceType', '?')}")
    return "Auto Scaling " + ", ".join(parts) + ", nginx"


def _describe(component: str, members: list[dict[str, Any]], resources: list[dict[str, Any]]) -> str:
    by_type = {r["type"]: r for r in members}
    if EC2_INSTANCE.token in by_type:
        i = by_type[EC2_INSTANCE.token]["inputs"]
        eip = " + Elastic IP" if EC2_EIP.token in by_type else ""
        return f"EC2 {i.get('instanceType', '?')}{eip}, nginx"
    if component == "ProxyHost" and any(r["type"] == AUTOSCALING_GROUP.token for r in resources):
        return _hosts_label(resources)
    if LB_LOAD_BALANCER.token in by_type:
        lb = by_type[LB_LOAD_BALANCER.token]["inputs"]
        kind = "Application" if lb.get("loadBalancerType", "application") == "application" else "Network"
        return f"{kind} Load Balancer, HTTPS 443"
    databases = [r for r in members if r["type"] == RDS_INSTANCE.token]
    if databases:
        primary = next((r for r in databases if not r["inputs"].get("replicateSourceDb")), databases[0])
        i = primary["inputs"]
        az = "Multi-AZ" if i.get("multiAz") else "Single-AZ"
        replicas = len(databases) - 1
        extra = f" + {replicas} read replica{'s' if replicas != 1 else ''}" if replicas else ""
        return f"RDS PostgreSQL {i.get('engineVersion', '')} {i.get('instanceClass', '?')} {az}{extra}"
    if ELASTICACHE_REPLICATION_GROUP.token in by_type:
        i = by_type[ELASTICACHE_REPLICATION_GROUP.token]["inputs"]
        return f"ElastiCache {i.get('engine', '?')} {i.get('nodeType', '?')}"
    if ECR_REPOSITORY.token in by_type:
        return "ECR image repository, restart on password rotation"
    buckets = [r for r in members if r["type"] in (S3_BUCKET.token, S3_BUCKET_V2.token)]
    if buckets:
        return f"S3 in {buckets[0]['options'].get('region') or '?'}"
    if SNS_TOPIC.token in by_type:
        return "SNS topic"
    if any(r["type"].startswith("cloudflare:") for r in members):
        return "Cloudflare proxy, TLS strict"
    if ROUTE53_HEALTH_CHECK.token in by_type:
        return "Route 53 health check"
    return ", ".join(sorted({r["type"].rsplit(":", 1)[-1] for r in members})[:3])


def render_mermaid(plan: dict[str, Any]) -> str:
    """The architecture as a Mermaid flowchart: components and who reaches whom, on which port."""
    resources: list[dict[str, Any]] = plan["resources"]
    drawn = [c for c in plan["components"] if c not in _NOT_DRAWN]
    by_component = {c: [r for r in resources if r["component"] == c] for c in plan["components"]}
    sg_owner: dict[str, str] = {}
    for r in resources:
        if r["type"] == EC2_SECURITY_GROUP.token and r.get("id"):
            sg_owner[r["id"]] = r["component"]
    lines = ["flowchart LR", '  users(("Users"))']
    for c in drawn:
        desc = _label(_describe(c, by_component[c], resources))
        shape = '[("{}")]' if c in ("Database", "Cache", "BackupBucket") else '["{}"]'
        lines.append(f"  {_node_id(c)}{shape.format(f'{c}<br/>{desc}')}")
    edges: set[str] = set()
    cloudflare = _cloudflare_ranges()
    proxied = any(r["type"] == CLOUDFLARE_DNS_RECORD.token and r["inputs"].get("proxied") for r in resources)
    if proxied and "Cdn" in drawn:
        edges.add('  users -->|"HTTPS 443"| cdn')
    for o in ingress_openings(resources):
        target = sg_owner.get(o["target"], o["component"])
        if target not in drawn:
            continue
        kind = source_kind(o["cidrs"], cloudflare)
        if o["cidrs"] and kind == "cloudflare" and "Cdn" in drawn:
            edges.add(f'  cdn -->|"{o["port"]}"| {_node_id(target)}')
        elif o["cidrs"] and kind in ("internet", "public"):
            edges.add(f'  users -->|"{o["port"]} direct"| {_node_id(target)}')
        for group in o["groups"]:
            source = sg_owner.get(group)
            if source and source in drawn and source != target:
                edges.add(f'  {_node_id(source)} -->|"{o["port"]}"| {_node_id(target)}')
    buckets = [r for r in resources if r["type"] in (S3_BUCKET.token, S3_BUCKET_V2.token)]
    for policy in (r for r in resources if r["type"] in (IAM_ROLE_POLICY.token, IAM_POLICY.token)):
        text = json.dumps(policy["inputs"].get("policy", ""))
        for b in buckets:
            reaches = b.get("id") and b["id"] in text and b["component"] != policy["component"]
            if reaches and b["component"] in drawn and policy["component"] in drawn:
                edges.add(f'  {_node_id(policy["component"])} -->|"HTTPS 443, IAM"| {_node_id(b["component"])}')
    for policy in (r for r in resources if r["type"] in (IAM_ROLE_POLICY.token, IAM_POLICY.token)):
        text = str(policy["inputs"].get("policy", ""))
        for repo in (r for r in resources if r["type"] == ECR_REPOSITORY.token):
            pulls = f":repository/{repo.get('id') or repo['inputs'].get('name')}" in text
            if pulls and repo["component"] in drawn and policy["component"] in drawn:
                edges.add(
                    f'  {_node_id(policy["component"])} -->|"HTTPS 443, image pull"| {_node_id(repo["component"])}'
                )
    host_names = {
        str((r["inputs"].get("tags") or {}).get("Name"))
        for r in resources
        if r["type"] in (EC2_INSTANCE.token, EC2_LAUNCH_TEMPLATE.token)
    }
    for r in resources:
        if r["type"] != CLOUDWATCH_EVENT_TARGET.token or r["component"] not in drawn:
            continue
        targets = {v for t in r["inputs"].get("runCommandTargets") or [] for v in t.get("values") or []}
        if "ProxyHost" in drawn and (targets & host_names or any(t.endswith("-host") for t in targets)):
            edges.add(f'  {_node_id(r["component"])} -.->|"restart on password rotation"| host')
    topics = {
        str(r["inputs"].get("name") or r["name"]): r["component"] for r in resources if r["type"] == SNS_TOPIC.token
    }
    alarms: dict[tuple[str, str], int] = {}
    for r in resources:
        if r["type"] not in ALARM_TYPES or r["component"] not in drawn:
            continue
        for action in r["inputs"].get("alarmActions") or []:
            for topic, owner in topics.items():
                if str(action).endswith(f":{topic}") and owner in drawn:
                    alarms[(r["component"], owner)] = alarms.get((r["component"], owner), 0) + 1
    for (source, owner), n in alarms.items():
        edges.add(f'  {_node_id(source)} -.->|"{n} alarm{"s" if n != 1 else ""}"| {_node_id(owner)}')
    for r in resources:
        if r["type"] == SNS_TOPIC_SUBSCRIPTION.token and r["component"] in drawn:
            lines.append(f'  inbox(["{_label(str(r["inputs"].get("protocol", "?")))} inbox"])')
            edges.add(f"  {_node_id(r['component'])} --> inbox")
        if r["type"] == ROUTE53_HEALTH_CHECK.token and r["component"] in drawn:
            target = "cdn" if "Cdn" in drawn and r["inputs"].get("fqdn") else "host" if "ProxyHost" in drawn else ""
            if target:
                edges.add(f'  {_node_id(r["component"])} -.->|"health check"| {target}')
    for r in resources:
        emails = any(n.get("subscriberEmailAddresses") for n in r["inputs"].get("notifications") or [])
        if r["type"] == BUDGETS_BUDGET.token and r["component"] in drawn and emails:
            lines.append('  inbox(["email inbox"])')
            edges.add(f'  {_node_id(r["component"])} -.->|"spend over budget"| inbox')
    for board in (r for r in resources if r["type"] == CLOUDWATCH_DASHBOARD.token):
        body = str(board["inputs"].get("dashboardBody", ""))
        for r in resources:
            shown = r["type"] in (RDS_INSTANCE.token, CLOUDWATCH_LOG_GROUP.token)
            name = str(r["inputs"].get("identifier") or r["inputs"].get("name") or "")
            if shown and name and f'"{name}"' in body and {board["component"], r["component"]} <= set(drawn):
                edges.add(f'  {_node_id(board["component"])} -.->|"shows"| {_node_id(r["component"])}')
    nodes = sorted(set(lines[2:]))
    return "\n".join(lines[:2] + nodes + sorted(edges)) + "\n"


# --------------------------------------------------------------------------- renderers


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 100 else text[:97] + "..."


def _cost_of(plan: dict[str, Any]) -> dict[str, Any]:
    return plan.get("cost") or estimate(plan)


def _summary_of(plan: dict[str, Any]) -> dict[str, Any]:
    return plan.get("summary") or summarize({**plan, "cost": _cost_of(plan)})


def render_text(plan: dict[str, Any]) -> str:
    resources: list[dict[str, Any]] = plan["resources"]
    cost, summary = _cost_of(plan), _summary_of(plan)
    lines = [
        f"leanstack plan — stack {plan['stack']}: {len(resources)} resources in "
        f"{len(plan['components'])} components (offline, under mocks)",
        "",
        f"Summary: {fmt_total(cost['total'], len(cost['notPriced']), len(resources))} at on-demand list prices "
        f"taken {cost['pricesTaken']}",
    ]
    width = max((len(c) for c in plan["components"]), default=10)
    for component, row in summary["components"].items():
        exposure = "; ".join(row["internet"]) or "not reachable from the internet"
        lines.append(
            f"  {component:<{width}}  {fmt_money(row['monthly']):>9}/mo  {row['secrets']} secret(s)  "
            f"{row['alarms']} alarm(s)  {exposure}"
        )
    if "policies" in plan:
        headline, failed = _policy_lines(plan)
        lines += ["", f"Policies: {headline}" + (":" if failed else "")]
        lines += [f"  FAIL {r['name']}: {r['message']}" for r in failed]
    for component in plan["components"]:
        members = [r for r in resources if r["component"] == component]
        lines += ["", f"{component} ({len(members)})"]
        for r in members:
            flags = _flags(r)
            region = f" @{r['options']['region']}" if r["options"]["region"] else ""
            price = cost["resources"].get(r["urn"], {})
            money_note = ""
            if price.get("status") == "priced":
                money_note = f"  {fmt_money(price['monthly'])}/mo"
            elif price.get("status") == "not priced":
                money_note = "  not priced"
            lines.append(
                f"  + {r['type']}  {r['name']}{region}{'  [' + ', '.join(flags) + ']' if flags else ''}{money_note}"
            )
            for key in KEY_INPUTS.get(r["type"], ()):
                if key in r["inputs"]:
                    lines.append(f"      {key} = {_short(r['inputs'][key])}")
    if cost["notPriced"]:
        lines += ["", "Not priced (not counted in the total)"]
        lines += [f"  {n['type']}  {n['name']}: {n['why']}" for n in cost["notPriced"]]
    lines += ["", "Cost assumptions"] + [f"  - {a}" for a in cost["assumptions"]]
    if plan["outputs"]:
        lines += ["", "Outputs"]
        lines += [f"  {key} = {_short(value)}" for key, value in sorted(plan["outputs"].items())]
    return "\n".join(lines) + "\n"


def _flags(r: dict[str, Any]) -> list[str]:
    """Options worth a reviewer's eye, and whether replacing or deleting it loses data
    (leanstack.resource_facts; a read replica holds only its source's copy)."""
    facts = facts_for(r["type"])
    holds = facts is not None and bool(facts.holds_data) and not r["inputs"].get("replicateSourceDb")
    return [f for f in ("protect", "retainOnDelete") if r["options"][f]] + (["holds data"] if holds else [])


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: dict[str, Any]) -> str:
    resources: list[dict[str, Any]] = plan["resources"]
    cost, summary = _cost_of(plan), _summary_of(plan)
    pricing = load_pricing()
    lines = [
        f"## leanstack plan: `{plan['stack']}`",
        "",
        f"**{fmt_total(cost['total'], len(cost['notPriced']), len(resources))}** for {len(resources)} resources "
        f"in {len(plan['components'])} "
        f"components, at AWS on-demand list prices taken {cost['pricesTaken']} "
        f"(hand-transcribed, see `leanstack/pricing.json`). Offline plan under mocks: a real "
        f"`pulumi preview` is still the final word.",
        "",
        "| Component | Resources | Monthly | Secrets | Alarms | Reachable from the internet |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for component, row in summary["components"].items():
        monthly = fmt_money(row["monthly"]) + (f" + {row['notPriced']} not priced" if row["notPriced"] else "")
        exposure = "<br>".join(_md(e) for e in row["internet"]) or "—"
        lines.append(
            f"| {component} | {row['resources']} | {monthly} | {row['secrets']} | {row['alarms']} | {exposure} |"
        )
    t = summary["total"]
    total = fmt_money(t["monthly"]) + (f" + {t['notPriced']} not priced" if t["notPriced"] else "")
    lines.append(f"| **Total** | {t['resources']} | **{total}** | {t['secrets']} | {t['alarms']} | |")
    if "policies" in plan:
        headline, failed = _policy_lines(plan)
        lines += ["", f"**Policies:** {headline}" + ("" if failed else " ✅")]
        lines += [f"- ❌ `{r['name']}`: {_md(r['message'])}" for r in failed]
    lines += ["", "### Architecture", "", "```mermaid", render_mermaid(plan).rstrip("\n"), "```", ""]
    if cost["notPriced"]:
        lines += ["### Not priced (not counted in the total)", ""]
        lines += [f"- `{n['type']}` `{n['name']}`: {_md(n['why'])}" for n in cost["notPriced"]]
        lines.append("")
    lines += ["### Cost assumptions", ""] + [f"- {_md(a)}" for a in cost["assumptions"]]
    lines += ["", f"Prices: {', '.join(sorted(pricing['sources']))} pages, taken {pricing['takenOn']}.", ""]
    lines += [
        f"<details><summary>All {len(resources)} resources</summary>",
        "",
        "| Component | Type | Name | Region | Options | Monthly | Key settings |",
        "| --- | --- | --- | --- | --- | ---: | --- |",
    ]
    for r in resources:
        flags = ", ".join(_flags(r))
        price = cost["resources"].get(r["urn"], {})
        monthly = fmt_money(price.get("monthly")) if price.get("status") != "free" else "—"
        settings = "<br>".join(
            f"`{key}` = `{_md(_short(r['inputs'][key]))}`"
            for key in KEY_INPUTS.get(r["type"], ())
            if key in r["inputs"]
        )
        lines.append(
            f"| {r['component']} | `{r['type']}` | {r['name']} | {r['options']['region'] or '—'} | "
            f"{flags or '—'} | {monthly} | {settings or '—'} |"
        )
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def render_json(plan: dict[str, Any]) -> str:
    return json.dumps(plan, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}

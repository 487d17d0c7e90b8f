"""The CrossGuard side: the pack registers every rule, and the adapter feeds them what CrossGuard hands over.

The real policy runtime needs the Pulumi CLI (not available here); these tests drive the
adapter with pulumi_policy's own argument classes and unknown-checking proxies instead.
"""

from __future__ import annotations

import runpy
import tomllib
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from leanstack.policy import crossguard
from leanstack.policy.rules import RULES, UNKNOWN, evaluate

PACK = Path(__file__).resolve().parents[2] / "policy" / "__main__.py"


def options(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def provider(region: str) -> PolicyProviderResource:
    return PolicyProviderResource(
        "pulumi:providers:aws", unknown_checking_proxy({"region": region}), "urn:provider", "aws"
    )


def test_the_pack_registers_every_rule_as_a_mandatory_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: dict[str, Any] = {}

    def record(**kwargs: Any) -> None:
        registered.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", record)
    runpy.run_path(str(PACK), run_name="__main__")
    assert registered["name"] == "leanstack-guardrails"
    assert registered["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY
    by_name = {p.name: p for p in registered["policies"]}
    assert list(by_name) == [rule.name for rule in RULES]
    for rule in RULES:
        expected = ResourceValidationPolicy if rule.check_resource is not None else StackValidationPolicy
        assert isinstance(by_name[rule.name], expected), rule.name
        assert by_name[rule.name].description == rule.description


def test_the_pack_file_declares_a_python_runtime() -> None:
    text = (PACK.parent / "PulumiPolicy.yaml").read_text()
    assert "name: python" in text and "virtualenv: ../.venv" in text and "toolchain: uv" in text
    # pulumi-policy comes from the project's lock (its policy group), with the runtime's protobuf.
    groups = tomllib.loads((PACK.parent.parent / "pyproject.toml").read_text())["dependency-groups"]
    assert [p for p in groups["policy"] if p.startswith("pulumi-policy==")] == groups["policy"]


def test_unknowns_from_a_preview_become_unknown_and_proxies_become_plain() -> None:
    proxied = unknown_checking_proxy(
        {"policy": UNKNOWN_STRING_VALUE, "tags": {"a": "b"}, "ids": ["x", UNKNOWN_STRING_VALUE]}
    )
    assert crossguard.plain(proxied) == {"policy": UNKNOWN, "tags": {"a": "b"}, "ids": ["x", UNKNOWN]}


def test_a_resource_policy_reports_an_unsafe_database() -> None:
    policy = crossguard.policies()[[r.name for r in RULES].index("rds-storage-encrypted")]
    assert isinstance(policy, ResourceValidationPolicy)
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    args = ResourceValidationArgs(
        "aws:rds/instance:Instance",
        unknown_checking_proxy({"storageEncrypted": False, "identifier": "x"}),
        "urn:pulumi:prod::leanstack::aws:rds/instance:Instance::db",
        "db",
        options(),
        provider("us-east-1"),
    )
    policy.validate(args, report)
    assert reported == [
        "db stores data unencrypted; set storage_encrypted=True (forces a new database: restore into it)"
    ]
    # Unknown during preview: no verdict (CrossGuard checks again during `pulumi up`).
    reported.clear()
    unknown = ResourceValidationArgs(
        args.resource_type, unknown_checking_proxy({"storageEncrypted": UNKNOWN_STRING_VALUE}), args.urn, "db",
        options(), None,
    )  # fmt: skip
    policy.validate(unknown, report)
    assert reported == []


def _resource(
    type_: str, name: str, props: dict[str, Any], region: str, deps: dict[str, list[PolicyResource]]
) -> PolicyResource:
    urn = f"urn:pulumi:prod::leanstack::{type_}::{name}"
    return PolicyResource(type_, unknown_checking_proxy(props), urn, name, options(), provider(region), None, [], deps)


def test_a_stack_policy_links_resources_by_property_dependencies_and_reads_provider_regions() -> None:
    database = _resource("aws:rds/instance:Instance", "db", {"storageEncrypted": True}, "us-east-1", {})
    bucket = _resource("aws:s3/bucket:Bucket", "backups-bucket", {"objectLockEnabled": True}, "us-east-1", {})
    versioning = _resource(
        "aws:s3/bucketVersioning:BucketVersioning", "v", {"versioningConfiguration": {"status": "Enabled"}},
        "us-east-1", {"bucket": [bucket]},
    )  # fmt: skip
    view = crossguard.view_of_stack([database, bucket, versioning], "prod", "")
    assert view.region == "us-east-1"  # no config: the database's region
    assert [r.name for r in view.linked(view.resources[2], "bucket")] == ["backups-bucket"]

    def violations(rule: str) -> list[tuple[str, str | None]]:
        policy = crossguard.policies()[[r.name for r in RULES].index(rule)]
        assert isinstance(policy, StackValidationPolicy)
        found: list[tuple[str, str | None]] = []

        def report(message: str, urn: str | None = None) -> None:
            found.append((message, urn))

        args = StackValidationArgs([database, bucket, versioning])
        policy.validate(args, report)
        return found

    assert violations("s3-versioned") == []
    off_site = violations("backup-bucket-off-site")
    assert len(off_site) == 1 and off_site[0][1] == bucket.urn and "us-east-1" in off_site[0][0]


def test_the_region_comes_from_the_resource_then_its_provider() -> None:
    assert crossguard.region_of({"region": "eu-west-1"}, provider("us-east-1")) == "eu-west-1"
    assert crossguard.region_of({}, provider("us-west-2")) == "us-west-2"
    assert crossguard.region_of({}, None) == ""


def test_the_pack_imports_nothing_from_pulumi_policy_in_the_rules() -> None:
    modules = sorted((PACK.parent / "rules").glob("*.py"))
    assert len(modules) > 5
    for module in modules:
        rules_source = module.read_text()
        assert "pulumi_policy" not in rules_source.split('"""', 2)[2], module.name
        assert "import pulumi" not in rules_source, module.name


def test_without_property_dependencies_links_are_found_by_value() -> None:
    # If the engine reports no property dependencies, a lock-down is still tied to its bucket
    # by the bucket's name, so a locked-down bucket is not reported as unprotected.
    bucket = _resource("aws:s3/bucket:Bucket", "files", {"bucket": "files-123"}, "us-east-1", {})
    versioning = _resource(
        "aws:s3/bucketVersioning:BucketVersioning", "v", {"bucket": "files-123",
                                                          "versioningConfiguration": {"status": "Enabled"}},
        "us-east-1", {},
    )  # fmt: skip
    view = crossguard.view_of_stack([bucket, versioning], "dev", "us-east-1")
    assert [r.name for r in view.linked(view.resources[1], "bucket")] == ["files"]
    assert evaluate(view)["s3-versioned"] == []
